"""The one table of how an exception becomes an HTTP answer.

Every layer raises its own specific exception carrying the bad value (a malformed path, an
unknown project, an upstream that failed); only here does one become a status code and a
one-line reason (`proxy.server.responses`). The middleware in `proxy.server.app` asks
`error_answer` for every exception a handler raises; None means "not an expected failure":
it propagates (aiohttp's own HTTP exceptions, and bugs).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from proxy.pipeline import FileNotListed
from proxy.server.responses import error_response
from proxy.simple.api import UnknownFormat
from proxy.store.errors import DownloadFailed, InvalidKeyError
from proxy.upstreams.offline import NotInMirror
from proxy.upstreams.projects import ProjectNotFound
from proxy.upstreams.source import UpstreamError, UpstreamNotFound
from proxy.urls.paths import BadPath
from proxy.variants.fingerprint import FingerprintError
from proxy.variants.properties import PropertyError


class BadRequest(Exception):
    """Malformed client input; answered 400 with the message."""


# Malformed client input of every kind: answered 400 with the one-line reason.
CLIENT_ERRORS = (
    BadRequest,
    BadPath,
    FingerprintError,
    PropertyError,
    InvalidKeyError,
    UnknownFormat,
)


def _upstream_failed(exc: BaseException) -> int:
    return 504 if isinstance(exc, UpstreamError) and exc.timed_out else 502


def _status(status: int) -> Callable[[BaseException], int]:
    return lambda _: status


# In order, first match wins: (exception types, status, one-line reason).
_TABLE: tuple[
    tuple[
        tuple[type[BaseException], ...],
        Callable[[BaseException], int],
        Callable[[BaseException], str],
    ],
    ...,
] = (
    (CLIENT_ERRORS, _status(400), str),
    ((ProjectNotFound,), _status(404), lambda exc: f"no upstream has project {exc}"),
    ((FileNotListed,), _status(404), str),
    ((UpstreamNotFound,), _status(404), lambda _: "not found upstream"),
    ((NotInMirror,), _status(404), str),  # before UpstreamError, its base
    ((UpstreamError,), _upstream_failed, str),
    ((DownloadFailed,), _status(502), str),
)


def error_answer(exc: BaseException) -> web.Response | None:
    """The answer to a handler's exception, or None when it is not an expected failure."""
    for types, status, reason in _TABLE:
        if isinstance(exc, types):
            return error_response(status(exc), reason(exc))
    return None
