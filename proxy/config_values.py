"""The configuration's error and its value checkers (`proxy.config` and the sections parsed
in their own modules use them): each names the key it checks."""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from typing import Any
from urllib.parse import urlsplit

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def parse_size(text: object, key: str) -> int:
    """`"50GiB"` -> bytes. Plain integers are bytes; 0 means unbounded."""
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise ConfigError(f"{key}: expected a size such as '50GiB', got {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ConfigError(f"{key}: size must not be negative")
        return text
    match = _SIZE_RE.fullmatch(text)
    if not match:
        raise ConfigError(f"{key}: expected a size such as '500MiB' or '50GiB', got {text!r}")
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[(unit or "b").lower()])


def expect(value: Any, kind: type | tuple[type, ...], key: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{key}: expected {names}, got {value!r}")
    return value


def check_unknown(table: Mapping[str, Any], known: Set[str], where: str) -> None:
    for key in table:
        if key not in known:
            prefix = f"{where}." if where else ""
            raise ConfigError(f"{prefix}{key}: unknown setting")


def env_name(value: Any, key: str) -> str | None:
    if value is None:
        return None
    text = expect(value, str, key)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise ConfigError(f"{key}: {text!r} is not an environment variable name")
    return str(text)


def seconds(value: Any, key: str) -> float:
    seconds = float(expect(value, (int, float), key))
    if seconds < 0:
        raise ConfigError(f"{key}: must not be negative, got {value!r}")
    return seconds


def check_url(url: Any, key: str) -> str:
    text = str(expect(url, str, key))
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: expected an http(s) URL, got {text!r}")
    if parts.username or parts.password:
        raise ConfigError(
            f"{key}: credentials in the URL are not allowed; use username_env/"
            "password_env or token_env"
        )
    return text if text.endswith("/") else text + "/"


def check_name(value: Any, key: str) -> str:
    """An upstream's name: it appears in URLs, cache keys and logs."""
    name = str(expect(value, str, key))
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(f"{key}: {name!r} must be letters, digits, '.', '_' or '-'")
    return name


def is_name(text: str) -> bool:
    return _NAME_RE.fullmatch(text) is not None
