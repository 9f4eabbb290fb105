"""The clients the e2e tests drive: real pip and uv in isolated environments, and plain HTTP.

pip and uv run as subprocesses with every inherited `PIP_*`/`UV_*` setting and config file
switched off (this machine's own pip config points at local wheel folders that would hide
what the index under test serves), no cache, and a timeout. Installs go into `--target`
folders; `installed_versions` and `build_marker` read back what landed there.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from .builders import escaped_name, normalize

TOOL_TIMEOUT_S = 180.0
HTTP_TIMEOUT_S = 30.0
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"


class ToolFailed(AssertionError):
    """pip or uv exited non-zero where success was required; carries its output."""


@dataclass(frozen=True)
class ToolResult:
    """One finished pip or uv run."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        return f"$ {' '.join(self.args)}\n-> exit {self.returncode}\n{self.output}"


def _clean_environment() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "UV_")) and key not in {"VIRTUAL_ENV", "PYTHONHOME"}
    }


def pip_environment() -> dict[str, str]:
    """The environment every pip run gets: no config file, no inherited PIP_*, no cache."""
    env = _clean_environment()
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_CACHE_DIR="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_PROGRESS_BAR="off",
    )
    return env


def _run(args: Sequence[str], env: Mapping[str, str], timeout: float, check: bool) -> ToolResult:
    try:
        completed = subprocess.run(
            list(args),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as timed_out:
        raise ToolFailed(f"$ {' '.join(args)}\ntimed out after {timeout} s") from timed_out
    result = ToolResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)
    if check and result.returncode != 0:
        raise ToolFailed(result.describe())
    return result


def run_pip(
    args: Sequence[str], *, timeout: float = TOOL_TIMEOUT_S, check: bool = True
) -> ToolResult:
    """`python -m pip ARGS` with the isolated pip environment."""
    return _run([sys.executable, "-m", "pip", *args], pip_environment(), timeout, check)


def uv_binary() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent))
    if found is None:
        raise FileNotFoundError(f"no uv next to {sys.executable}")
    return found


def run_uv(
    args: Sequence[str], *, timeout: float = TOOL_TIMEOUT_S, check: bool = True
) -> ToolResult:
    """`uv ARGS` with no config files, no inherited UV_*, a throwaway cache, no downloads."""
    with tempfile.TemporaryDirectory(prefix="uv-cache-") as cache_dir:
        env = _clean_environment()
        env.update(
            UV_NO_CONFIG="1",
            UV_CACHE_DIR=cache_dir,
            UV_PYTHON_DOWNLOADS="never",
            UV_NO_PROGRESS="1",
            UV_LINK_MODE="copy",
        )
        return _run([uv_binary(), *args], env, timeout, check)


def pip_install(
    index_url: str, requirements: Sequence[str], target: Path, *, check: bool = True
) -> ToolResult:
    return run_pip(
        [
            "install",
            "--index-url",
            index_url,
            "--target",
            str(target),
            "--no-compile",
            "--retries",
            "0",
            *requirements,
        ],
        check=check,
    )


def pip_download(
    index_url: str, requirements: Sequence[str], dest: Path, *, check: bool = True
) -> ToolResult:
    return run_pip(
        [
            "download",
            "--retries",
            "0",
            "--index-url",
            index_url,
            "--dest",
            str(dest),
            *requirements,
        ],
        check=check,
    )


def uv_install(
    index_url: str, requirements: Sequence[str], target: Path, *, check: bool = True
) -> ToolResult:
    return run_uv(
        [
            "pip",
            "install",
            "--no-cache",
            "--python",
            sys.executable,
            "--index-url",
            index_url,
            "--target",
            str(target),
            *requirements,
        ],
        check=check,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def installed_versions(target: Path) -> dict[str, str]:
    """Normalised project name -> version, for every `*.dist-info` folder in `target`."""
    found: dict[str, str] = {}
    for dist_info in target.glob("*.dist-info"):
        name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
        found[normalize(name)] = version
    return found


def build_marker(target: Path, project: str) -> str:
    """The `BUILD` constant of the installed test package, telling which file was installed."""
    source = (target / escaped_name(project) / "__init__.py").read_text()
    match = re.search(r"^BUILD = '([^']*)'$", source, re.MULTILINE)
    if match is None:
        raise AssertionError(f"no BUILD marker in {project}'s __init__.py:\n{source}")
    return match.group(1)


# ---- HTTP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpResponse:
    """A finished HTTP exchange; error statuses are answers here, not exceptions."""

    url: str
    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http_request(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
    follow_redirects: bool = False,
    timeout: float = HTTP_TIMEOUT_S,
) -> HttpResponse:
    """One request with the standard library; 3xx are returned unless `follow_redirects`."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if not follow_redirects:
        handlers.append(_NoRedirect())
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with opener.open(request, timeout=timeout) as answer:
            return HttpResponse(answer.geturl(), answer.status, answer.headers, answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return HttpResponse(url, error.code, error.headers, error.read())


def http_get(url: str, **kwargs: Any) -> HttpResponse:
    return http_request(url, **kwargs)


def fetch_outcome(url: str, timeout: float = HTTP_TIMEOUT_S) -> HttpResponse | Exception:
    """GET `url`; a broken transfer (reset, short body) is returned as the exception."""
    try:
        return http_get(url, timeout=timeout)
    except (OSError, http.client.HTTPException) as failure:
        return failure


def read_then_disconnect(url: str, nbytes: int, timeout: float = HTTP_TIMEOUT_S) -> bytes:
    """Send a GET, read about `nbytes` of the answer (head included), then drop the
    connection with a reset. Returns what was read."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    received = bytearray()
    with socket.create_connection((host, port), timeout=timeout) as connection:
        request = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
        connection.sendall(request.encode())
        while len(received) < nbytes:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        # Linger 0: close() sends RST, like a client killed mid-download.
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return bytes(received)


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str], str]] = []
        self._open: dict[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = {name: value or "" for name, value in attrs}
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append((self._open, "".join(self._text).strip()))
            self._open = None


def _html_files(page_url: str, body: str) -> list[dict[str, Any]]:
    """PEP 503 anchors -> PEP 691-shaped file entries (the fields the tests look at)."""
    parser = _AnchorParser()
    parser.feed(body)
    files: list[dict[str, Any]] = []
    for attributes, text in parser.anchors:
        url, _, fragment = urljoin(page_url, attributes.get("href", "")).partition("#")
        algorithm, _, digest = fragment.partition("=")
        entry: dict[str, Any] = {
            "filename": text,
            "url": url,
            "hashes": {algorithm: digest} if digest else {},
            "yanked": attributes.get("data-yanked", False),
        }
        if "data-requires-python" in attributes:
            entry["requires-python"] = attributes["data-requires-python"]
        metadata = attributes.get("data-core-metadata", attributes.get("data-dist-info-metadata"))
        if metadata is not None:
            name, _, value = metadata.partition("=")
            entry["core-metadata"] = {name: value} if value else True
        files.append(entry)
    return files


def read_page(page_url: str, *, accept: str = JSON_ACCEPT) -> dict[str, Any]:
    """A project page as a PEP 691-shaped dict with absolute file URLs, read from JSON or
    (when the server only speaks HTML) from PEP 503 anchors."""
    response = http_get(page_url, headers={"Accept": accept}, follow_redirects=True)
    if response.status != 200:
        raise AssertionError(f"GET {page_url} -> {response.status}: {response.text[:500]}")
    content_type = response.header("Content-Type") or ""
    if "json" in content_type:
        document: dict[str, Any] = response.json()
        for entry in document.get("files", []):
            entry["url"] = urljoin(response.url, entry["url"])
        return document
    return {"files": _html_files(response.url, response.text)}


def file_urls(page_url: str) -> dict[str, str]:
    """Filename -> absolute URL of every file a simple-API page lists."""
    return {entry["filename"]: entry["url"] for entry in read_page(page_url)["files"]}
