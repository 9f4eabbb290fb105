"""Plain-text error answers: one line naming the problem, the same everywhere."""

from __future__ import annotations

from aiohttp import web


def error_response(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message.splitlines()[0] + "\n")
