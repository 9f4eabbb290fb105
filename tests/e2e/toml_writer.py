"""Render a config dict as TOML text (the standard library reads TOML but cannot write it).

Supports what proxy configs use: tables, arrays of tables, strings, integers, floats,
booleans and lists of scalars. The output is checked by reading it back with `tomllib`.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class TomlWriteError(TypeError):
    """A value has no TOML form here; the message names its key."""


def _key(text: str) -> str:
    return text if _BARE_KEY.match(text) else json.dumps(text)


def _scalar(path: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Sequence) and not any(isinstance(v, Mapping) for v in value):
        return "[" + ", ".join(_scalar(path, item) for item in value) + "]"
    raise TomlWriteError(f"cannot write {path!r} = {value!r} as TOML")


def _is_table_array(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and bool(value)
        and all(isinstance(item, Mapping) for item in value)
    )


def _table(lines: list[str], header: list[str], table: Mapping[str, Any]) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    scalars = [(k, v) for k, v in scalars if not _is_table_array(v)]
    for key, value in scalars:
        lines.append(f"{_key(key)} = {_scalar('.'.join([*header, key]), value)}")
    for key, value in table.items():
        path = [*header, key]
        dotted = ".".join(_key(part) for part in path)
        if isinstance(value, Mapping):
            lines += ["", f"[{dotted}]"]
            _table(lines, path, value)
        elif _is_table_array(value):
            for item in value:
                lines += ["", f"[[{dotted}]]"]
                _table(lines, path, item)


def dumps(document: Mapping[str, Any]) -> str:
    """TOML text for `document`; raises TomlWriteError for values TOML cannot hold here."""
    lines: list[str] = []
    _table(lines, [], document)
    text = "\n".join(lines).lstrip("\n") + "\n"
    if tomllib.loads(text) != json.loads(json.dumps(document)):
        raise TomlWriteError(f"TOML round trip changed the document: {text!r}")
    return text
