"""Errors the commands report as one readable line (exit 2), never as a traceback."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """Something the user can fix (a missing file, an unreachable server): one line, exit 2.

    It lives outside ``streams.cli`` so library code (the worker, the offline tools) can raise it
    without importing the command dispatcher.
    """
