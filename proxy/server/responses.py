"""Plain-text error answers: one line naming the problem, the same everywhere.

The line echoes at most `MAX_ECHO` characters of any quoted input (a 20 KB header item is
cut, not sent back whole), and is never longer than `MAX_LINE`.
"""

from __future__ import annotations

import re

from aiohttp import web

MAX_ECHO = 200
MAX_LINE = 1000
_LONG_QUOTED = re.compile(rf"""(['"])([^'"]{{{MAX_ECHO + 1},}})\1""")


def one_line_reason(message: str) -> str:
    """The first line of `message`, quoted parts cut to `MAX_ECHO` characters."""
    line = message.splitlines()[0] if message else ""
    line = _LONG_QUOTED.sub(lambda m: f"{m[1]}{m[2][: MAX_ECHO - 3]}...{m[1]}", line)
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."


def error_response(status: int, message: str) -> web.Response:
    """`status` with the one-line reason as the body; the access line carries it too."""
    line = one_line_reason(message) or "error"
    response = web.Response(status=status, text=line + "\n")
    response["reason"] = line
    return response
