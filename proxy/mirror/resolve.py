"""Resolving one target with uv against the proxy's own pages (shell).

`uv pip compile --format pylock.toml` with the target's `--python-version` and
`--python-platform` evaluates every marker for the target (one pip run per target would
evaluate them for the Python running pip) and names each chosen file with its proxy URL.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass

from proxy.mirror.targets import LockError, PinnedFile, Target, files_of_lock

RESOLVE_TIMEOUT_S = 600.0
# The box-drawing and cross marks uv puts in front of its error lines.
_DECORATION = re.compile(r"^[\s\u00d7\u2570\u2500\u25b6\u2502]+")


@dataclass(frozen=True)
class Resolution:
    target: Target
    files: tuple[PinnedFile, ...] = ()
    error: str | None = None


def uv_binary() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def _uv_command(target: Target, index_url: str) -> list[str]:
    command = [
        uv_binary(),
        "pip",
        "compile",
        "-",
        "--format",
        "pylock.toml",
        "--no-header",
        "--quiet",
        "--no-config",
        "--no-cache",
        "--python-version",
        target.python,
        "--index-url",
        index_url,
    ]
    if target.platform is not None:
        command += ["--python-platform", target.platform]
    return command


def _uv_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env.update(UV_NO_PROGRESS="1", UV_PYTHON_DOWNLOADS="never", NO_COLOR="1")
    return env


def uv_failure(stderr: str) -> str:
    """The one line of uv's error output that says why (at most 300 characters)."""
    lines = [_DECORATION.sub("", line).strip() for line in stderr.splitlines()]
    useful = [line for line in lines if line and not line.startswith("hint:")]
    reason = " ".join(useful[:3]) if useful else "uv failed without a message"
    return reason[:300]


async def resolve_target(target: Target, base_url: str, requirements: str) -> Resolution:
    """The files uv chooses for `target` through the proxy at `base_url`."""
    index_url = base_url.rstrip("/") + target.fingerprint.index_path
    process = await asyncio.create_subprocess_exec(
        *_uv_command(target, index_url),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_uv_environment(),
    )
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            stdout, stderr = await process.communicate(requirements.encode())
    except TimeoutError:
        process.kill()
        await process.wait()
        return Resolution(target, error=f"uv took longer than {RESOLVE_TIMEOUT_S:.0f} s")
    if process.returncode != 0:
        return Resolution(target, error=uv_failure(stderr.decode(errors="replace")))
    try:
        return Resolution(target, tuple(files_of_lock(stdout.decode())))
    except LockError as exc:
        return Resolution(target, error=str(exc))
