"""Log records of the HTTP libraries, without credentials or session tokens.

The JOC backend speaks HTTP through httpx. At DEBUG level httpcore logs the headers of every
answer, among them the ``X-Access-Token`` of JOC's login answer: the session token. js7certctl
configures no logging itself, but a program that embeds it, or anybody who turns DEBUG logging on,
would see the token in the log. A filter on those loggers masks the values of credential headers
and every secret a live :class:`~js7certctl.keystore.joc.JocKeystore` knows (its password, its
Basic credentials and its tokens, in its ``_secrets``).
"""

from __future__ import annotations

import logging
import re
import weakref
from typing import Any

_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
# httpcore prints headers as Python tuples: (b'X-Access-Token', b'...').
_HEADER = re.compile(
    r"""(\(b?['"](?:x-access-token|authorization|proxy-authorization|cookie|set-cookie)['"],"""
    r"""\s*b?['"])[^'"]*(['"])""",
    re.IGNORECASE,
)
_sources: weakref.WeakSet[Any] = weakref.WeakSet()


class _Scrub(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging system's business, not ours
            return True
        scrubbed = _HEADER.sub(r"\1***\2", message)
        for source in list(_sources):
            for secret in sorted(getattr(source, "_secrets", ()), key=len, reverse=True):
                if secret and secret in scrubbed:
                    scrubbed = scrubbed.replace(secret, "***")
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


_FILTER = _Scrub()


def watch(source: Any) -> None:
    """Mask ``source._secrets`` (and credential headers) in the HTTP libraries' log records for
    as long as ``source`` lives."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    _sources.add(source)
