"""Secrets out of log output: every handler's text has the configured passwords replaced by ``***``.

Why a formatter and not care at each call site: libraries log secrets we never pass to a logger
ourselves. kafka-python's ``KafkaAdminClient`` logs its whole configuration, SASL password
included, at DEBUG (measured: ``churnwatch worker`` at ``CHURNWATCH_LOG_LEVEL=DEBUG`` printed it
while creating topics). Replacing the known secret values in the final text also covers arguments,
exception messages and tracebacks, whichever logger they come from.
"""

from __future__ import annotations

import logging
from dataclasses import fields
from urllib.parse import unquote, urlsplit

from streams.settings import Settings

__all__ = ["MASK", "secret_values", "RedactingFormatter", "install"]

MASK = "***"


def secret_values(settings: Settings) -> list[str]:
    """The secret strings of ``settings``: fields hidden from ``repr`` and a password in ``redis_url``
    (as written and percent-decoded), longest first so a secret containing another is masked whole.

    >>> secret_values(Settings(redis_url="redis://:p%40ss@h:6379/0", kafka_sasl_password="k1"))
    ['p%40ss', 'p@ss', 'k1']
    """
    found = {str(getattr(settings, f.name)) for f in fields(settings) if not f.repr}
    try:
        password = urlsplit(settings.redis_url).password
    except ValueError:  # an unparsable URL holds no password we could find; Redis will refuse it anyway
        password = None
    if password:
        found |= {password, unquote(password)}
    return sorted((s for s in found if s), key=lambda s: (-len(s), s))


class RedactingFormatter(logging.Formatter):
    """Formats with ``inner`` (or the default), then masks every secret in the result."""

    def __init__(self, inner: logging.Formatter | None, secrets: list[str]) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


def install(settings: Settings, logger: logging.Logger | None = None) -> None:
    """Wrap the formatter of every handler of ``logger`` (the root logger by default)."""
    secrets = secret_values(settings)
    if not secrets:
        return
    for handler in (logger or logging.getLogger()).handlers:
        current = handler.formatter
        if isinstance(current, RedactingFormatter):
            current.secrets = sorted(set(current.secrets) | set(secrets), key=lambda s: (-len(s), s))
        else:
            handler.setFormatter(RedactingFormatter(current, secrets))
