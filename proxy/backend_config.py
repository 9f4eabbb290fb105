"""`[[backends]]`: per-build indexes (PyTorch's `whl/cu128/` and the like) whose files the
proxy shows as variants. Each entry takes the keys of an `[[upstreams]]` entry (url, ttl,
timeout, credentials) plus `properties` (omitted: the built-in table of
`proxy.variants.pytorch_builds`; `[]`: the null variant) and `projects`. Errors name the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from proxy.config_values import ConfigError
from proxy.config_values import expect as _expect
from proxy.simple.names import NormalizedName, normalize_name
from proxy.upstream_config import UpstreamSettings, upstream_settings
from proxy.variants.properties import PropertyError, VariantProperty
from proxy.variants.pytorch_builds import BUILTIN_BACKENDS

DEFAULT_BACKEND_PROJECTS = (
    "torch",
    "torchvision",
    "torchaudio",
    "triton",
    "pytorch-triton",
    "torchao",
    "torchcodec",
    "torchtext",
    "torchdata",
    "torchrec",
    "fbgemm-gpu",
    "xformers",
)


@dataclass(frozen=True)
class BackendSettings:
    """One `[[backends]]` entry: a per-build index whose files stand for one variant."""

    name: str  # the variant label it stands for
    index: UpstreamSettings  # how to reach it (url, ttl, timeout, credentials)
    properties: tuple[str, ...]  # `ns :: feature :: value`; empty = the null variant
    projects: tuple[NormalizedName, ...]


_LABEL_RE = re.compile(r"^[0-9a-z_.]+$")


def _string_list(value: Any, key: str) -> tuple[str, ...]:
    _expect(value, list, key)
    return tuple(_expect(item, str, f"{key}[{i}]") for i, item in enumerate(value))


def _backend(table: Any, index: int, page_ttl: float) -> BackendSettings:
    """One `[[backends]]` entry: the keys of an upstream plus `properties` and `projects`."""
    where = f"backends[{index}]"
    _expect(table, dict, where)
    name = _expect(table.get("name"), str, f"{where}.name")
    if not _LABEL_RE.fullmatch(name) or name == "null":
        raise ConfigError(
            f"{where}.name: {name[:80]!r} is not a variant label (lowercase letters, digits, "
            "'_', '.'; not 'null')"
        )
    index_settings = upstream_settings(
        table, index, page_ttl, where, frozenset({"properties", "projects"})
    )
    if "properties" in table:
        properties = _string_list(table["properties"], f"{where}.properties")
    elif name in BUILTIN_BACKENDS:
        properties = BUILTIN_BACKENDS[name]
    else:
        raise ConfigError(
            f"{where}.properties: missing, and {name!r} is not a built-in PyTorch backend "
            f"({', '.join(BUILTIN_BACKENDS)})"
        )
    for position, text in enumerate(properties):
        try:
            VariantProperty.parse(text)
        except PropertyError as exc:
            raise ConfigError(f"{where}.properties[{position}]: {exc}") from None
    projects = _string_list(
        table.get("projects", list(DEFAULT_BACKEND_PROJECTS)), f"{where}.projects"
    )
    # Named apart from every `[[upstreams]]` name (those cannot hold ':'), for cache keys.
    index_settings = replace(index_settings, name=f"backend:{name}")
    return BackendSettings(
        name, index_settings, properties, tuple(dict.fromkeys(normalize_name(p) for p in projects))
    )


def parse_backends(tables: Any, page_ttl: float) -> tuple[BackendSettings, ...]:
    _expect(tables, list, "backends")
    backends = tuple(_backend(table, i, page_ttl) for i, table in enumerate(tables))
    names = [backend.name for backend in backends]
    if len(set(names)) != len(names):
        raise ConfigError(f"backends: duplicate backend names in {names}")
    null = [backend.name for backend in backends if not backend.properties]
    if len(null) > 1:
        raise ConfigError(
            f"backends: only one backend can be the null variant (properties = []): {null}"
        )
    return backends
