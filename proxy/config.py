"""Settings: the TOML config file and command-line overrides -> validated, frozen settings.

Every error names the offending key (`upstreams[1].url: ...`). Credentials are never read
from the file itself, only the names of the environment variables that hold them.

Sections with a module of their own: `[[upstreams]]` and `[pins]` (`proxy.upstream_config`),
`[[backends]]` (`proxy.backend_config`), `[cache.s3]` and `[cluster]`
(`proxy.cluster.settings`); the value checkers and `ConfigError` are in
`proxy.config_values`. Every public name stays importable from here.
"""

from __future__ import annotations

import ipaddress
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from proxy.config_values import ConfigError as ConfigError
from proxy.config_values import check_unknown, env_name, expect, seconds
from proxy.config_values import is_name as _is_name
from proxy.config_values import parse_size as parse_size
from proxy.pip_index import pip_index_url as pip_index_url
from proxy.upstream_config import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from proxy.upstream_config import DirectorySettings as DirectorySettings
from proxy.upstream_config import UpstreamConfig as UpstreamConfig
from proxy.upstream_config import UpstreamSettings as UpstreamSettings
from proxy.upstream_config import upstream_list, upstream_pins
from proxy.variants.sources import ClientRule as ClientRule

if TYPE_CHECKING:
    from proxy.backend_config import BackendSettings
    from proxy.cluster.settings import ClusterSettings, S3Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_PAGE_TTL = 600
DEFAULT_INDEX_TTL = 3600
DEFAULT_MAX_SIZE = 50 * 1024**3
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024


@dataclass(frozen=True)
class ProfileSettings:
    name: str
    hw: str | None
    properties: tuple[str, ...] | None


@dataclass(frozen=True)
class Settings:
    upstreams: tuple[UpstreamConfig, ...]
    cache_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    admin_token_env: str | None = None
    log_format: str = "json"
    access_log: bool = True
    max_size: int = DEFAULT_MAX_SIZE
    page_ttl: float = DEFAULT_PAGE_TTL
    index_ttl: float = DEFAULT_INDEX_TTL
    serve_stale: bool = True
    pins: Mapping[str, str] = field(default_factory=dict)
    default_profile: str | None = None
    detect_local: bool = False
    build_missing_variants_json: bool = False
    profiles: Mapping[str, ProfileSettings] = field(default_factory=dict)
    clients: tuple[ClientRule, ...] = ()
    s3: S3Settings | None = None
    cluster: ClusterSettings | None = None
    # Serve only what the cache holds; never open a connection to an upstream.
    offline: bool = False
    backends: tuple[BackendSettings, ...] = ()
    # Pages last asked about before this time are stale whatever their TTL. Never from the
    # config file: `mirror` sets it to its start, so each page is revalidated once a run.
    pages_checked_since: float = -math.inf

    def upstream(self, name: str) -> UpstreamConfig:
        for upstream in self.upstreams:
            if upstream.name == name:
                return upstream
        raise KeyError(name)


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("variant-proxy"))


def _cache_dir(value: Any) -> Path:
    if value is None:
        return default_cache_dir()
    if isinstance(value, Path):
        return value
    return Path(expect(value, str, "cache.dir")).expanduser()


def _profiles(table: Any) -> dict[str, ProfileSettings]:
    expect(table, dict, "profiles")
    profiles: dict[str, ProfileSettings] = {}
    for name, body in table.items():
        where = f"profiles.{name}"
        if not _is_name(name):
            raise ConfigError(
                f"profiles.{name if name.isprintable() else repr(name)}: profile names are "
                "letters, digits, '.', '_' or '-'"
            )
        expect(body, dict, where)
        check_unknown(body, {"hw", "properties"}, where)
        hw = body.get("hw")
        props = body.get("properties")
        if (hw is None) == (props is None):
            raise ConfigError(f"{where}: give exactly one of 'hw' or 'properties'")
        if hw is not None:
            expect(hw, str, f"{where}.hw")
        if props is not None:
            expect(props, list, f"{where}.properties")
            for position, item in enumerate(props):
                expect(item, str, f"{where}.properties[{position}]")
        profiles[name] = ProfileSettings(name, hw, tuple(props) if props is not None else None)
    return profiles


def _clients(rules: Any, profiles: Mapping[str, ProfileSettings]) -> tuple[ClientRule, ...]:
    expect(rules, list, "clients")
    result = []
    for index, rule in enumerate(rules):
        where = f"clients[{index}]"
        expect(rule, dict, where)
        check_unknown(rule, {"network", "profile"}, where)
        try:
            network = ipaddress.ip_network(
                expect(rule.get("network"), str, f"{where}.network"), strict=False
            )
        except ValueError as exc:
            raise ConfigError(f"{where}.network: {exc}") from None
        profile = expect(rule.get("profile"), str, f"{where}.profile")
        if profile not in profiles:
            raise ConfigError(f"{where}.profile: unknown profile {profile!r}")
        result.append(ClientRule(network, profile))
    return tuple(result)


def _server_section(
    server: Mapping[str, Any], host: str | None, port: int | None
) -> dict[str, Any]:
    """`[server]` with the command line's `--host` and `--port` over it."""
    log_format = expect(server.get("log_format", "json"), str, "server.log_format")
    if log_format not in ("json", "text"):
        raise ConfigError("server.log_format: expected 'json' or 'text'")
    if port is None:
        port = expect(server.get("port", DEFAULT_PORT), int, "server.port")
    if not 0 <= port <= 65535:
        raise ConfigError(f"server.port: {port} is not a TCP port")
    return {
        "host": host or expect(server.get("host", DEFAULT_HOST), str, "server.host"),
        "port": port,
        "max_request_bytes": expect(
            server.get("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES),
            int,
            "server.max_request_bytes",
        ),
        "admin_token_env": env_name(server.get("admin_token_env"), "server.admin_token_env"),
        "log_format": log_format,
        "access_log": expect(server.get("access_log", True), bool, "server.access_log"),
    }


def settings_from_mapping(
    data: Mapping[str, Any],
    *,
    host: str | None = None,
    port: int | None = None,
    upstream_urls: Sequence[str] = (),
    cache_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    offline: bool = False,
) -> Settings:
    """Validate a parsed TOML document; keyword arguments are command-line overrides."""
    from proxy.backend_config import parse_backends

    check_unknown(
        data,
        {
            "server",
            "cache",
            "upstreams",
            "pins",
            "variants",
            "profiles",
            "clients",
            "cluster",
            "backends",
        },
        "",
    )
    server = expect(data.get("server", {}), dict, "server")
    check_unknown(
        server,
        {"host", "port", "max_request_bytes", "admin_token_env", "log_format", "access_log"},
        "server",
    )
    cache = expect(data.get("cache", {}), dict, "cache")
    check_unknown(
        cache,
        {"dir", "max_size", "page_ttl", "index_ttl", "serve_stale", "s3", "offline"},
        "cache",
    )
    variants = expect(data.get("variants", {}), dict, "variants")
    check_unknown(
        variants, {"default_profile", "detect_local", "build_missing_variants_json"}, "variants"
    )

    page_ttl = seconds(cache.get("page_ttl", DEFAULT_PAGE_TTL), "cache.page_ttl")
    index_ttl = seconds(cache.get("index_ttl", DEFAULT_INDEX_TTL), "cache.index_ttl")
    upstreams = upstream_list(data, upstream_urls, page_ttl, environ)
    pins = upstream_pins(data.get("pins", {}), [u.name for u in upstreams])
    profiles = _profiles(data.get("profiles", {}))
    default_profile = variants.get("default_profile")
    if default_profile is not None and default_profile not in profiles:
        raise ConfigError(f"variants.default_profile: unknown profile {default_profile!r}")
    directory = cache_dir if cache_dir is not None else cache.get("dir")
    return Settings(
        upstreams=upstreams,
        cache_dir=_cache_dir(directory),
        **_server_section(server, host, port),
        max_size=parse_size(cache.get("max_size", DEFAULT_MAX_SIZE), "cache.max_size"),
        page_ttl=page_ttl,
        index_ttl=index_ttl,
        serve_stale=expect(cache.get("serve_stale", True), bool, "cache.serve_stale"),
        pins=pins,
        default_profile=default_profile,
        detect_local=expect(variants.get("detect_local", False), bool, "variants.detect_local"),
        build_missing_variants_json=expect(
            variants.get("build_missing_variants_json", False),
            bool,
            "variants.build_missing_variants_json",
        ),
        profiles=profiles,
        clients=_clients(data.get("clients", []), profiles),
        offline=offline or expect(cache.get("offline", False), bool, "cache.offline"),
        **_cluster_sections(cache.get("s3"), data.get("cluster")),
        backends=parse_backends(data.get("backends", []), page_ttl),
    )


def _cluster_sections(s3: object, cluster: object) -> dict[str, Any]:
    """`[cache.s3]` and `[cluster]` (cluster mode), parsed by their own module."""
    from proxy.cluster.settings import cluster_settings, s3_settings

    return {"s3": s3_settings(s3), "cluster": cluster_settings(cluster)}


def load_settings(path: str | Path | None, **overrides: Any) -> Settings:
    """Read the TOML file (if any) and apply command-line overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return settings_from_mapping(data, **overrides)
