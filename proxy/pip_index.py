"""The index the local pip is configured to use: the embedded default upstream."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping

_PIP_CONFIG_LINE = re.compile(r"^([\w.-]+)='(.*)'$", re.MULTILINE)


def pip_index_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The index the local pip uses: PIP_INDEX_URL, pip's config, pip's built-in default
    (None when pip is not importable)."""
    env = os.environ if environ is None else environ
    from_env = env.get("PIP_INDEX_URL", "").split()
    if from_env:
        return from_env[0]
    # `pip config list` is pip's stable interface to its configuration (its Python API is not).
    try:
        listing = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ),
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        listing = ""
    values: dict[str, str] = dict(_PIP_CONFIG_LINE.findall(listing))
    for key in ("install.index-url", "global.index-url"):
        configured = values.get(key, "").split()
        if configured:
            return configured[0]
    try:
        from pip._internal.models.index import PyPI
    except ImportError:  # pragma: no cover - pip is always in a venv made by `venv`
        return None
    return str(PyPI.simple_url)
