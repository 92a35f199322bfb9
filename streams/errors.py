"""Errors the commands report as one readable line (exit 2), never as a traceback."""

from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["UserError", "redis_reached"]


class UserError(Exception):
    """Something the user can fix (a missing file, an unreachable server): one line, exit 2.

    It lives outside ``streams.cli`` so library code (the worker, the offline tools) can raise it
    without importing the command dispatcher.
    """


@contextlib.contextmanager
def redis_reached(url: str) -> Iterator[None]:
    """A command's Redis calls, their connection failures and refusals as the one line every command
    gives: "cannot reach Redis at <url, password masked>: ..." / "Redis at <url> refused: ...".
    Wrap only Redis work: a broker's ``ConnectionError`` is an ``OSError`` too."""
    from redis.exceptions import ConnectionError as RedisConnectionError, ResponseError, TimeoutError as RedisTimeoutError

    from streams.settings import redact_url

    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise UserError(f"cannot reach Redis at {redact_url(url)}: {exc}") from None
    except ResponseError as exc:  # e.g. a database number the server does not have (redis://host/99)
        raise UserError(f"Redis at {redact_url(url)} refused: {exc}") from None
