"""Helpers for the local-index e2e tests: real `twine upload` and `uv publish` runs, a raw
multipart upload for what those tools refuse to send, and the variant builds uploaded."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .builders import BuiltDist, build_sdist, build_wheel
from .clients import TOOL_TIMEOUT_S, HttpResponse, ToolResult, http_request, run_uv, uv_binary

TOKEN_ENV = "VP_E2E_UPLOAD_TOKEN"
TOKEN = "e2e-" + "5ecret"
NAMESPACES = ("x86_64",)
LEVELS = {"x86_64_v3": "v3", "x86_64_v2": "v2"}


def variant_builds(dest: Path, project: str, version: str = "1.0") -> dict[str, BuiltDist]:
    """The v3, v2, null and plain wheels and the sdist of one release, by label."""
    builds = {
        label: build_wheel(
            dest,
            project,
            version,
            variant_label=label,
            variant_properties=[f"x86_64 :: level :: {level}"],
            namespace_priorities=NAMESPACES,
        )
        for label, level in LEVELS.items()
    }
    builds["null"] = build_wheel(
        dest, project, version, variant_label="null", namespace_priorities=NAMESPACES
    )
    builds["plain"] = build_wheel(dest, project, version)
    builds["sdist"] = build_sdist(dest, project, version)
    return builds


def run_tool(args: Sequence[str], env: dict[str, str]) -> ToolResult:
    """Run a tool to its end; the result is returned, not checked."""
    completed = subprocess.run(
        list(args),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        check=False,
    )
    return ToolResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)


def _tool_environment() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "TWINE_")) and k != TOKEN_ENV
    }
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    return env


def _twine_args(upload_url: str, files: Sequence[Path], password: str, user: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "twine",
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--repository-url",
        upload_url,
        "-u",
        user,
        "-p",
        password,
        *map(str, files),
    ]


def twine_upload(
    upload_url: str, files: Sequence[Path], password: str = TOKEN, *, user: str = "__token__"
) -> ToolResult:
    """`twine upload` of `files`, never interactive; the result is returned, not checked."""
    return run_tool(_twine_args(upload_url, files, password, user), _tool_environment())


def twine_process(upload_url: str, file: Path) -> subprocess.Popen[str]:
    """A `twine upload` of one file, started and left running (for concurrent uploads)."""
    return _started(_twine_args(upload_url, [file], TOKEN, "__token__"), _tool_environment())


def _started(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def uv_publish_process(upload_url: str, file: Path) -> subprocess.Popen[str]:
    """A `uv publish` of one file, started and left running (for concurrent uploads)."""
    env = _tool_environment()
    env.update(UV_NO_CONFIG="1", UV_NO_PROGRESS="1", UV_PYTHON_DOWNLOADS="never")
    return _started(
        [uv_binary(), "publish", "--publish-url", upload_url, "--token", TOKEN, str(file)], env
    )


def uv_publish_supported() -> bool:
    return run_uv(["publish", "--help"], check=False).returncode == 0


def uv_publish(upload_url: str, files: Sequence[Path], token: str = TOKEN) -> ToolResult:
    return run_uv(
        ["publish", "--publish-url", upload_url, "--token", token, *map(str, files)],
        check=False,
    )


def _form_up_to_content(boundary: str, fields: Sequence[tuple[str, str]], filename: str) -> bytes:
    """The text fields and the head of the `content` part (the file's bytes come next)."""
    body = bytearray()
    for key, value in fields:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
        body += value.encode() + b"\r\n"
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    return bytes(body)


def _closing(boundary: str) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode()


def multipart_upload(
    upload_url: str,
    filename: str,
    data: bytes,
    *,
    name: str,
    version: str,
    token: str | None = TOKEN,
) -> HttpResponse:
    """A legacy-API upload sent by hand (for files twine would refuse to send)."""
    boundary = "vp-" + secrets.token_hex(12)
    fields = [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("name", name),
        ("version", version),
        ("sha256_digest", hashlib.sha256(data).hexdigest()),
    ]
    body = _form_up_to_content(boundary, fields, filename) + data + _closing(boundary)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http_request(upload_url, method="POST", headers=headers, data=body)


def multipart_head(
    host: str, port: int, filename: str, size: int, *, name: str, version: str
) -> tuple[bytes, bytes]:
    """(request head + form fields + file part head, closing boundary) of an upload of a
    `size`-byte file, for a client that sends the file itself slowly or not at all."""
    boundary = "vp-" + secrets.token_hex(12)
    fields = [(":action", "file_upload"), ("name", name), ("version", version)]
    body = _form_up_to_content(boundary, fields, filename)
    tail = _closing(boundary)
    head = (
        f"POST /upload/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body) + size + len(tail)}\r\n\r\n"
    ).encode()
    return head + body, tail
