"""Logs: one line per event with a UTC timestamp, as JSON objects or as readable text.

Two kinds of lines go to one stream (stderr):
- events (start-up, upstream failures, stale answers, download progress, shutdown), written
  through the `logging` module under the `variant_proxy` logger, formatted here;
- access lines, one per request, written by `AccessLog` after the response is sent (so the
  status is the one sent, 206 included, and the byte count is what went out). They skip the
  `logging` machinery, are built with plain string formatting, and are written in batches
  (at most `FLUSH_LINES` lines, at most `FLUSH_AFTER_S` late; flushed at shutdown): under
  load many lines go out in one write. `bench/access_log.py` measures what they cost.

Extra fields of an event go in `extra={"fields": {...}}`; both formats print them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import IO, Any, NamedTuple

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import BaseRequest

LOGGER_NAME = "variant_proxy"
MAX_REASON_CHARS = 200
# Access lines are written in batches: at most this many, at most this late.
FLUSH_LINES = 256
FLUSH_AFTER_S = 0.02
_encode = json.encoder.encode_basestring


class _Clock:
    """`2026-01-31T12:34:56.789Z`, formatting the seconds part once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self, at: float | None = None) -> str:
        at = time.time() if at is None else at
        second = int(at)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((at - second) * 1000):03d}Z"


CLOCK = _Clock()


def one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """The first line of `text`, at most `limit` characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _text_value(value: object) -> str:
    text = str(value)
    return _encode(text) if (not text or " " in text or '"' in text or "=" in text) else text


class TextFormatter(logging.Formatter):
    """`TIMESTAMP LEVEL logger message key=value ...` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        parts = [CLOCK.now(record.created), record.levelname, _short(record.name), _message(record)]
        parts.extend(f"{key}={_text_value(value)}" for key, value in fields.items())
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        document = {
            "ts": CLOCK.now(record.created),
            "level": record.levelname.lower(),
            "logger": _short(record.name),
            "msg": _message(record),
            **fields,
        }
        return json.dumps(document, separators=(",", ":"), default=str)


def _short(name: str) -> str:
    return name.removeprefix(LOGGER_NAME + ".") if name != LOGGER_NAME else "proxy"


def _message(record: logging.LogRecord) -> str:
    message = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        # A real bug: keep the traceback, but inside the one line (JSON) or after it (text).
        message += "\n" + logging.Formatter().formatException(record.exc_info)
    return message


class _ClientMistakes(logging.Filter):
    """Drops aiohttp's traceback for a malformed request or a client that left: the access
    line of that request already says what happened, in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, HttpProcessingError | ConnectionError)


def configure_logging(
    log_format: str, stream: IO[str] | None = None, *, access_log: bool = True
) -> AccessLog:
    """Route the proxy's and aiohttp's server logs to `stream` in `log_format`; access lines
    only with `access_log`."""
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    for name in (LOGGER_NAME, "aiohttp.server", "aiohttp.web"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    logging.getLogger("aiohttp.server").filters[:] = [_ClientMistakes()]
    return AccessLog(stream, log_format, enabled=access_log)


class AccessFields(NamedTuple):
    """What one access line says."""

    method: str
    path: str
    status: int
    route: str
    client: str
    ms: float
    size: int
    cache: str
    fingerprint: str
    reason: str | None
    client_left: bool


def json_line(f: AccessFields) -> str:
    line = (
        # method (an HTTP token), route, client (an address), cache and fingerprint (our own
        # words) need no escaping; the path does.
        f'{{"ts":"{CLOCK.now()}","level":"info","logger":"access","method":"{f.method}",'
        f'"path":{_encode(f.path)},"status":{f.status},"route":"{f.route}",'
        f'"client":"{f.client}","ms":{f.ms:.2f},"bytes":{f.size},"cache":"{f.cache}",'
        f'"fingerprint":"{f.fingerprint}"'
    )
    if f.reason is not None:
        line += f',"reason":{_encode(f.reason)}'
    if f.client_left:
        line += ',"client_left":true'
    return line + "}"


def text_line(f: AccessFields) -> str:
    line = (
        f"{CLOCK.now()} INFO access {f.client} {f.method} {_encode(f.path)[1:-1]} {f.status}"
        f" {f.size}B {f.ms:.1f}ms route={f.route}"
    )
    if f.cache:
        line += f" cache={f.cache}"
    if f.fingerprint:
        line += f" fingerprint={f.fingerprint}"
    if f.client_left:
        line += " client_left"
    if f.reason is not None:
        line += f" reason={_encode(f.reason)}"
    return line


class AccessLog:
    """Access lines, written to one stream in batches."""

    def __init__(self, stream: IO[str], log_format: str, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._stream = stream
        self._json = log_format == "json"
        self._pending: list[str] = []
        self._flush_scheduled = False

    def write(
        self,
        request: BaseRequest,
        response: web.StreamResponse,
        seconds: float,
        route: str,
    ) -> None:
        if not self.enabled:
            return
        status = response.status
        headers = response.headers
        # Only errors and stale answers carry a reason (a mapping lookup that misses costs an
        # exception, so the common answer skips it).
        reason = response.get("reason") if status >= 400 or "Warning" in headers else None
        if reason is None and route == "malformed" and isinstance(response, web.Response):
            reason = _error_page_reason(response.text or "")
        transport = request.transport
        client_left = transport is None or transport.is_closing()
        length = response.content_length
        size = length if length is not None and not client_left else response.body_length
        fields = AccessFields(
            request.method,
            request.path,
            status,
            route,
            request.remote or "",
            seconds * 1000,
            size,
            headers.get("X-Cache", ""),
            headers.get("Variant-Fingerprint-Source", ""),
            reason,
            client_left,
        )
        self._queue(json_line(fields) if self._json else text_line(fields))

    def _queue(self, line: str) -> None:
        """Keep a line for the next batched write (written at once when the batch is full)."""
        self._pending.append(line)
        if len(self._pending) >= FLUSH_LINES:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_AFTER_S, self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending:
            return
        text = "\n".join(self._pending) + "\n"
        self._pending.clear()
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stderr must not stop the proxy


def access_logger_class(sink: AccessLog, on_request: Any = None) -> type[AbstractAccessLogger]:
    """An aiohttp access-logger class bound to `sink` (aiohttp makes one per connection).

    `on_request(request, response, route)` is called for every request too (metrics).
    """

    class _AccessLogger(AbstractAccessLogger):
        @property
        def enabled(self) -> bool:
            return True

        def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
            route = _route_of(request)
            if on_request is not None:
                on_request(request, response, route)
            sink.write(request, response, time, route)

    return _AccessLogger


def _route_of(request: BaseRequest) -> str:
    # A request aiohttp could not parse never reached routing: it has no match info.
    if not isinstance(request, web.Request):
        return "malformed"
    try:
        match_info: Any = request.match_info
    except AssertionError:  # aiohttp asserts that routing happened
        return "malformed"
    return "malformed" if match_info is None else (match_info.route.name or "unmatched")


def _error_page_reason(text: str) -> str:
    """The reason of aiohttp's own 400 page ("400 Bad Request\n\nReason...")."""
    lines = [line.strip() for line in text.splitlines()[1:] if line.strip()]
    return one_line(lines[0]) if lines else "malformed request"
