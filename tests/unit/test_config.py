"""Settings from TOML and command-line overrides; every error names the offending key."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pip._internal.models.index import PyPI

from proxy.config import (
    DEFAULT_HOST,
    DEFAULT_INDEX_TTL,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_SIZE,
    DEFAULT_PAGE_TTL,
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    ClientRule,
    ConfigError,
    ProfileSettings,
    Settings,
    UpstreamSettings,
    default_cache_dir,
    load_settings,
    parse_size,
    pip_index_url,
    settings_from_mapping,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
INDEX = "https://index.example/simple/"
ONE_UPSTREAM: dict[str, Any] = {"upstreams": [{"name": "internal", "url": INDEX}]}


def settings(**tables: Any) -> Settings:
    return settings_from_mapping({**ONE_UPSTREAM, **tables})


def config_error(data: dict[str, Any], **overrides: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(data, **overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.fixture
def isolated_pip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """pip's configuration read from one file of the test's own (empty unless written)."""
    config = tmp_path / "pip.conf"
    config.write_text("")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg-dirs"))
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    return config


# --- defaults ------------------------------------------------------------------------------


def test_defaults_with_one_upstream() -> None:
    result = settings()
    assert result.upstreams == (
        UpstreamSettings(name="internal", url=INDEX, ttl=DEFAULT_PAGE_TTL, timeout=DEFAULT_TIMEOUT),
    )
    assert result.host == DEFAULT_HOST == "127.0.0.1"
    assert result.port == DEFAULT_PORT == 8080
    assert result.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES
    assert result.admin_token_env is None
    assert result.log_format == "json"
    assert result.max_size == DEFAULT_MAX_SIZE
    assert result.page_ttl == DEFAULT_PAGE_TTL
    assert result.index_ttl == DEFAULT_INDEX_TTL
    assert result.serve_stale is True
    assert dict(result.pins) == {}
    assert result.default_profile is None
    assert result.detect_local is False
    assert result.build_missing_variants_json is False
    assert dict(result.profiles) == {}
    assert result.clients == ()
    assert result.cache_dir == default_cache_dir()


def test_no_upstreams_uses_the_pip_index(isolated_pip: Path) -> None:
    result = settings_from_mapping(
        {}, environ={"PIP_INDEX_URL": "http://127.0.0.1:3141/root/simple"}
    )
    assert result.upstreams == (
        UpstreamSettings(
            name="default", url="http://127.0.0.1:3141/root/simple/", ttl=DEFAULT_PAGE_TTL
        ),
    )


# --- every key -----------------------------------------------------------------------------


def test_every_key(tmp_path: Path) -> None:
    data = {
        "server": {
            "host": "0.0.0.0",
            "port": 9090,
            "max_request_bytes": 4096,
            "admin_token_env": "ADMIN_TOKEN",
            "log_format": "text",
        },
        "cache": {
            "dir": str(tmp_path / "cache"),
            "max_size": "2GiB",
            "page_ttl": 30,
            "index_ttl": 90.5,
            "serve_stale": False,
        },
        "upstreams": [
            {
                "name": "internal",
                "url": "https://index.example/simple",
                "ttl": 5,
                "timeout": 2.5,
                "username_env": "INDEX_USER",
                "password_env": "INDEX_PASSWORD",
                "token_env": "INDEX_TOKEN",
                "allowed_redirect_hosts": ["Files.Index.Example"],
            },
            {"url": "http://127.0.0.1:8081/simple/"},
        ],
        "pins": {"Acme_Secret.Lib": "internal"},
        "variants": {
            "default_profile": "cpu",
            "detect_local": True,
            "build_missing_variants_json": True,
        },
        "profiles": {
            "cpu": {"hw": "cpu=x86_64_v3"},
            "custom": {"properties": ["acme :: color :: blue"]},
        },
        "clients": [
            {"network": "10.20.0.0/16", "profile": "custom"},
            {"network": "fd00::/8", "profile": "cpu"},
        ],
    }
    result = settings_from_mapping(data)
    assert result == Settings(
        upstreams=(
            UpstreamSettings(
                name="internal",
                url="https://index.example/simple/",
                ttl=5.0,
                timeout=2.5,
                username_env="INDEX_USER",
                password_env="INDEX_PASSWORD",
                token_env="INDEX_TOKEN",
                allowed_redirect_hosts=("files.index.example",),
            ),
            UpstreamSettings(name="127.0.0.1", url="http://127.0.0.1:8081/simple/", ttl=30.0),
        ),
        cache_dir=tmp_path / "cache",
        host="0.0.0.0",
        port=9090,
        max_request_bytes=4096,
        admin_token_env="ADMIN_TOKEN",
        log_format="text",
        max_size=2 * 1024**3,
        page_ttl=30.0,
        index_ttl=90.5,
        serve_stale=False,
        pins={"acme-secret-lib": "internal"},
        default_profile="cpu",
        detect_local=True,
        build_missing_variants_json=True,
        profiles={
            "cpu": ProfileSettings("cpu", "cpu=x86_64_v3", None),
            "custom": ProfileSettings("custom", None, ("acme :: color :: blue",)),
        },
        clients=(
            ClientRule(ipaddress.ip_network("10.20.0.0/16"), "custom"),
            ClientRule(ipaddress.ip_network("fd00::/8"), "cpu"),
        ),
    )
    assert result.upstream("internal").host == "index.example"
    with pytest.raises(KeyError):
        result.upstream("missing")


def test_client_network_with_host_bits_is_accepted_as_its_network() -> None:
    result = settings(
        profiles={"p": {"hw": "none"}}, clients=[{"network": "10.20.3.4/16", "profile": "p"}]
    )
    assert result.clients[0].network == ipaddress.ip_network("10.20.0.0/16")


def test_cache_dir_expands_the_home_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert settings(cache={"dir": "~/proxy-cache"}).cache_dir == tmp_path / "proxy-cache"


# --- errors name the key -------------------------------------------------------------------


UNKNOWN_KEYS: list[tuple[dict[str, Any], str]] = [
    ({"colour": 1}, "colour"),
    ({"server": {"hots": "x"}}, "server.hots"),
    ({"cache": {"size": "1GiB"}}, "cache.size"),
    ({"variants": {"detect": True}}, "variants.detect"),
    ({"upstreams": [{"url": INDEX, "urls": INDEX}]}, "upstreams[0].urls"),
    ({"profiles": {"p": {"hw": "none", "extra": 1}}}, "profiles.p.extra"),
    (
        {
            "profiles": {"p": {"hw": "none"}},
            "clients": [{"network": "::/0", "profile": "p", "x": 1}],
        },
        "clients[0].x",
    ),
]


@pytest.mark.parametrize(("data", "key"), UNKNOWN_KEYS, ids=[key for _, key in UNKNOWN_KEYS])
def test_unknown_keys_are_named(data: dict[str, Any], key: str) -> None:
    message = config_error({**ONE_UPSTREAM, **data})
    assert message.startswith(f"{key}: ")
    assert "unknown" in message


WRONG_TYPES: list[tuple[dict[str, Any], str]] = [
    ({"server": "x"}, "server"),
    ({"server": {"host": 1}}, "server.host"),
    ({"server": {"port": "8080"}}, "server.port"),
    ({"server": {"port": True}}, "server.port"),
    ({"server": {"port": 8080.0}}, "server.port"),
    ({"server": {"max_request_bytes": "16k"}}, "server.max_request_bytes"),
    ({"server": {"admin_token_env": 5}}, "server.admin_token_env"),
    ({"server": {"log_format": 1}}, "server.log_format"),
    ({"cache": []}, "cache"),
    ({"cache": {"dir": 5}}, "cache.dir"),
    ({"cache": {"max_size": True}}, "cache.max_size"),
    ({"cache": {"max_size": 1.5}}, "cache.max_size"),
    ({"cache": {"max_size": ["1GiB"]}}, "cache.max_size"),
    ({"cache": {"page_ttl": "10"}}, "cache.page_ttl"),
    ({"cache": {"page_ttl": False}}, "cache.page_ttl"),
    ({"cache": {"index_ttl": "10"}}, "cache.index_ttl"),
    ({"cache": {"serve_stale": "yes"}}, "cache.serve_stale"),
    ({"cache": {"serve_stale": 1}}, "cache.serve_stale"),
    ({"upstreams": {"url": INDEX}}, "upstreams"),
    ({"upstreams": ["x"]}, "upstreams[0]"),
    ({"upstreams": [{"url": 1}]}, "upstreams[0].url"),
    ({"upstreams": [{"url": INDEX, "name": 1}]}, "upstreams[0].name"),
    ({"upstreams": [{"url": INDEX, "ttl": "5"}]}, "upstreams[0].ttl"),
    ({"upstreams": [{"url": INDEX, "ttl": True}]}, "upstreams[0].ttl"),
    ({"upstreams": [{"url": INDEX, "timeout": "5"}]}, "upstreams[0].timeout"),
    ({"upstreams": [{"url": INDEX, "token_env": 1}]}, "upstreams[0].token_env"),
    (
        {"upstreams": [{"url": INDEX, "allowed_redirect_hosts": "h"}]},
        "upstreams[0].allowed_redirect_hosts",
    ),
    (
        {"upstreams": [{"url": INDEX, "allowed_redirect_hosts": [1]}]},
        "upstreams[0].allowed_redirect_hosts[0]",
    ),
    ({"pins": []}, "pins"),
    ({"pins": {"acme": 1}}, "pins.acme"),
    ({"variants": {"detect_local": "yes"}}, "variants.detect_local"),
    ({"variants": {"build_missing_variants_json": 1}}, "variants.build_missing_variants_json"),
    ({"profiles": []}, "profiles"),
    ({"profiles": {"p": "cpu=x86_64_v3"}}, "profiles.p"),
    ({"profiles": {"p": {"hw": 3}}}, "profiles.p.hw"),
    ({"profiles": {"p": {"properties": "acme :: a :: b"}}}, "profiles.p.properties"),
    ({"profiles": {"p": {"properties": ["acme :: a :: b", 2]}}}, "profiles.p.properties[1]"),
    ({"clients": {}}, "clients"),
    ({"clients": ["10.0.0.0/8"]}, "clients[0]"),
    ({"profiles": {"p": {"hw": "none"}}, "clients": [{"profile": "p"}]}, "clients[0].network"),
    ({"profiles": {"p": {"hw": "none"}}, "clients": [{"network": "::/0"}]}, "clients[0].profile"),
]


@pytest.mark.parametrize(("data", "key"), WRONG_TYPES, ids=[key for _, key in WRONG_TYPES])
def test_wrong_types_are_named(data: dict[str, Any], key: str) -> None:
    assert config_error({**ONE_UPSTREAM, **data}).startswith(f"{key}: ")


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"server": {"port": 70000}}, "server.port"),
    ({"server": {"port": -1}}, "server.port"),
    ({"server": {"log_format": "xml"}}, "server.log_format"),
    ({"server": {"admin_token_env": "not a name"}}, "server.admin_token_env"),
    ({"cache": {"max_size": "lots"}}, "cache.max_size"),
    ({"cache": {"max_size": "-5GiB"}}, "cache.max_size"),
    ({"cache": {"max_size": -5}}, "cache.max_size"),
    ({"cache": {"page_ttl": -1}}, "cache.page_ttl"),
    ({"cache": {"index_ttl": -1}}, "cache.index_ttl"),
    ({"upstreams": [{"url": INDEX, "name": "bad name"}]}, "upstreams[0].name"),
    ({"upstreams": [{"url": INDEX, "name": "internal\n"}]}, "upstreams[0].name"),
    ({"upstreams": [{"url": INDEX, "username_env": "USER-NAME"}]}, "upstreams[0].username_env"),
    ({"upstreams": [{"url": INDEX, "password_env": "PASSWORD\n"}]}, "upstreams[0].password_env"),
    ({"profiles": {"bad name": {"hw": "none"}}}, "profiles.bad name"),
    ({"profiles": {"p": {}}}, "profiles.p"),
    ({"profiles": {"p": {"hw": "none", "properties": []}}}, "profiles.p"),
    (
        {
            "profiles": {"p": {"hw": "none"}},
            "clients": [{"network": "10.0.0.0/33", "profile": "p"}],
        },
        "clients[0].network",
    ),
    (
        {"profiles": {"p": {"hw": "none"}}, "clients": [{"network": "lab", "profile": "p"}]},
        "clients[0].network",
    ),
]


@pytest.mark.parametrize(("data", "key"), BAD_VALUES, ids=[key for _, key in BAD_VALUES])
def test_bad_values_are_named(data: dict[str, Any], key: str) -> None:
    assert config_error({**ONE_UPSTREAM, **data}).startswith(f"{key}: ")


def test_profile_name_with_a_trailing_newline_is_refused() -> None:
    # Profile names become URL segments (/p/{name}/); `$` alone would let "gpu\n" through.
    with pytest.raises(ConfigError, match=r"^profiles\."):
        settings(profiles={"gpu\n": {"hw": "none"}})


@pytest.mark.parametrize("field", ["ttl", "timeout"])
@pytest.mark.parametrize("value", [-1, -0.5])
def test_negative_upstream_ttl_or_timeout_is_refused(field: str, value: float) -> None:
    message = config_error({"upstreams": [{"url": INDEX, field: value}]})
    assert message.startswith("upstreams[0]")
    assert field in message


def test_zero_timeout_is_refused_zero_ttl_accepted() -> None:
    assert "timeout" in config_error({"upstreams": [{"url": INDEX, "timeout": 0}]})
    assert settings_from_mapping({"upstreams": [{"url": INDEX, "ttl": 0}]}).upstreams[0].ttl == 0


@pytest.mark.parametrize(
    "url",
    [
        "ftp://index.example/simple/",
        "index.example/simple/",
        "https:///simple/",
        "file:///srv/simple/",
        "",
    ],
)
def test_bad_upstream_url_is_named(url: str) -> None:
    message = config_error({"upstreams": [{"url": url}]})
    assert message.startswith("upstreams[0].url: ")
    assert "http" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@index.example/simple/",
        "https://user@index.example/simple/",
        "https://:secret@index.example/simple/",
    ],
)
def test_credentials_in_an_upstream_url_are_refused_without_echoing_them(url: str) -> None:
    message = config_error({"upstreams": [{"url": url}]})
    assert message.startswith("upstreams[0].url: ")
    assert "credentials" in message
    assert "secret" not in message


def test_missing_upstream_url_is_named() -> None:
    assert config_error({"upstreams": [{"name": "x"}]}) == "upstreams[0].url: missing"


def test_empty_upstream_list_is_refused() -> None:
    assert config_error({"upstreams": []}).startswith("upstreams: ")


def test_duplicate_upstream_names_are_refused() -> None:
    message = config_error(
        {"upstreams": [{"name": "a", "url": INDEX}, {"name": "a", "url": "http://127.0.0.1:9/"}]}
    )
    assert message.startswith("upstreams: ")
    assert "duplicate" in message and "'a'" in message


def test_upstreams_named_after_the_same_host_collide() -> None:
    message = config_error(
        {"upstreams": [{"url": INDEX}, {"url": "https://index.example/other/simple/"}]}
    )
    assert "duplicate" in message


def test_unknown_pin_target_is_named() -> None:
    message = config_error({**ONE_UPSTREAM, "pins": {"acme-lib": "elsewhere"}})
    assert message == "pins.acme-lib: unknown upstream 'elsewhere'"


def test_unknown_default_profile_is_named() -> None:
    message = config_error(
        {
            **ONE_UPSTREAM,
            "variants": {"default_profile": "gpu"},
            "profiles": {"cpu": {"hw": "none"}},
        }
    )
    assert message == "variants.default_profile: unknown profile 'gpu'"


def test_unknown_client_profile_is_named() -> None:
    message = config_error(
        {
            **ONE_UPSTREAM,
            "profiles": {"cpu": {"hw": "none"}},
            "clients": [
                {"network": "10.0.0.0/8", "profile": "cpu"},
                {"network": "10.20.0.0/16", "profile": "gpu"},
            ],
        }
    )
    assert message == "clients[1].profile: unknown profile 'gpu'"


# --- command-line overrides ----------------------------------------------------------------


def test_cli_overrides_beat_the_file(tmp_path: Path) -> None:
    data = {
        **ONE_UPSTREAM,
        "server": {"host": "0.0.0.0", "port": 9000},
        "cache": {"dir": str(tmp_path / "from-file"), "page_ttl": 42},
    }
    result = settings_from_mapping(
        data,
        host="127.0.0.2",
        port=0,
        upstream_urls=["http://127.0.0.1:3141/simple", "https://index.example/mirror/simple/"],
        cache_dir=tmp_path / "from-cli",
    )
    assert result.host == "127.0.0.2"
    assert result.port == 0
    assert result.cache_dir == tmp_path / "from-cli"
    assert result.upstreams == (
        UpstreamSettings(name="default", url="http://127.0.0.1:3141/simple/", ttl=42.0),
        UpstreamSettings(name="cli1", url="https://index.example/mirror/simple/", ttl=42.0),
    )


def test_cli_cache_dir_as_text_expands_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert settings_from_mapping(ONE_UPSTREAM, cache_dir="~/c").cache_dir == tmp_path / "c"


def test_cli_upstream_is_checked_like_a_file_upstream() -> None:
    message = config_error({}, upstream_urls=["https://u:p@index.example/simple/"])
    assert "credentials" in message
    assert "ftp" in config_error({}, upstream_urls=["ftp://index.example/"])


def test_cli_port_is_range_checked() -> None:
    assert config_error(ONE_UPSTREAM, port=65536).startswith("server.port: ")


# --- sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("512", 512),
        ("512B", 512),
        ("1KB", 1000),
        ("1kib", 1024),
        ("1.5KiB", 1536),
        ("500MiB", 500 * 1024**2),
        ("500 MB", 500 * 1000**2),
        ("50GiB", 50 * 1024**3),
        (" 2 TiB ", 2 * 1024**4),
        ("1TB", 1000**4),
        (0, 0),
        (1234, 1234),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text, "cache.max_size") == size


@pytest.mark.parametrize("text", ["", "GiB", "5 XB", "5K", "-1", "1,5GiB", "five", "5 GiB extra"])
def test_parse_size_refuses_bad_sizes_naming_the_key(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^cache\.max_size: "):
        parse_size(text, "cache.max_size")


def test_parse_size_refuses_booleans_and_negative_numbers() -> None:
    with pytest.raises(ConfigError, match=r"^k: "):
        parse_size(True, "k")
    with pytest.raises(ConfigError, match=r"^k: "):
        parse_size(-1, "k")


# --- the pip index -------------------------------------------------------------------------


def test_pip_index_url_env_first(isolated_pip: Path) -> None:
    isolated_pip.write_text("[global]\nindex-url = https://from-config.example/simple/\n")
    environ = {"PIP_INDEX_URL": "https://from-env.example/simple/"}
    assert pip_index_url(environ) == "https://from-env.example/simple/"


def test_pip_index_url_env_with_several_urls_takes_the_first(isolated_pip: Path) -> None:
    environ = {"PIP_INDEX_URL": "https://one.example/simple/ https://two.example/simple/"}
    assert pip_index_url(environ) == "https://one.example/simple/"


def test_pip_index_url_from_pip_configuration(isolated_pip: Path) -> None:
    isolated_pip.write_text("[global]\nindex-url = https://from-config.example/simple/\n")
    assert pip_index_url({}) == "https://from-config.example/simple/"


def test_pip_index_url_install_section_beats_global(isolated_pip: Path) -> None:
    isolated_pip.write_text(
        "[global]\nindex-url = https://global.example/simple/\n"
        "[install]\nindex-url = https://install.example/simple/\n"
    )
    assert pip_index_url({}) == "https://install.example/simple/"


def test_pip_index_url_falls_back_to_pips_built_in_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    assert pip_index_url({}) == PyPI.simple_url


def test_pip_index_url_ignores_a_blank_environment_value(isolated_pip: Path) -> None:
    isolated_pip.write_text("[global]\nindex-url = https://from-config.example/simple/\n")
    assert pip_index_url({"PIP_INDEX_URL": ""}) == "https://from-config.example/simple/"
    assert pip_index_url({"PIP_INDEX_URL": "   "}) == "https://from-config.example/simple/"


# --- files ---------------------------------------------------------------------------------


def test_config_example_at_the_repo_root_works_as_shipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No upstream set: the embedded default (the index pip uses) applies; no example rule.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")
    result = load_settings(REPO_ROOT / "config.example.toml")
    assert [(u.name, u.url) for u in result.upstreams] == [
        ("default", "http://127.0.0.1:9/simple/")
    ]
    assert result.max_size == 50 * 1024**3
    assert result.profiles == {} and result.clients == () and result.pins == {}
    assert result.host == "127.0.0.1" and result.port == 8080


def _is_setting(text: str, table: re.Pattern[str]) -> bool:
    """A TOML table header or a complete `key = value` line (not prose that has an `=`)."""
    if table.match(text):
        return True
    try:
        return " = " in text and bool(tomllib.loads(text))
    except tomllib.TOMLDecodeError:
        return False


def test_config_example_examples_load_when_uncommented() -> None:
    # Every commented-out example line, uncommented, is a valid config too.
    lines = (REPO_ROOT / "config.example.toml").read_text().splitlines()
    table = re.compile(r"^\[\[?[\w.-]+\]\]?$")
    uncommented = []
    for line in lines:
        body = line.removeprefix("# ")
        uncommented.append(body if line.startswith("# ") and _is_setting(body, table) else line)
    data = tomllib.loads("\n".join(uncommented))
    data["pins"] = {"acme-secret-lib": "internal"}
    data["variants"]["default_profile"] = "cpu-v3"
    data["upstreams"] = data["upstreams"][:1]  # the HTTP example (others need real folders)
    result = settings_from_mapping(data, environ={})
    assert [u.name for u in result.upstreams] == ["internal"]
    assert result.upstreams[0].ttl == 300
    assert set(result.profiles) == {"cpu-v3", "h100", "custom"}
    assert result.clients == (ClientRule(ipaddress.ip_network("10.20.0.0/16"), "h100"),)


def test_load_settings_applies_overrides(tmp_path: Path) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text('[server]\nport = 9000\n\n[[upstreams]]\nurl = "http://127.0.0.1:9/simple/"\n')
    result = load_settings(path, port=9001, cache_dir=tmp_path)
    assert result.port == 9001
    assert result.cache_dir == tmp_path
    assert result.upstreams[0].url == "http://127.0.0.1:9/simple/"


def test_load_settings_without_a_file_uses_overrides_only(tmp_path: Path) -> None:
    result = load_settings(None, upstream_urls=["http://127.0.0.1:9/simple/"], cache_dir=tmp_path)
    assert result.upstreams[0].name == "default"


def test_load_settings_names_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_settings(missing)


def test_load_settings_names_a_file_that_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[server\nport = 1\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_settings(path)


def test_load_settings_errors_name_keys_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text('[[upstreams]]\nurl = "http://127.0.0.1:9/"\n[pins]\n"acme" = "nowhere"\n')
    with pytest.raises(ConfigError, match=r"^pins\.acme: unknown upstream 'nowhere'$"):
        load_settings(path)


def test_credentials_in_pip_index_url_move_out_of_the_url() -> None:
    result = settings_from_mapping(
        {}, environ={"PIP_INDEX_URL": "https://bob:s%40cret@idx.example/simple"}
    )
    upstream = result.upstreams[0]
    assert upstream.url == "https://idx.example/simple/"
    assert upstream.basic_auth == ("bob", "s@cret")
    assert "s@cret" not in repr(result) and "cret" not in repr(upstream)
