"""`[cache.s3]` and `[cluster]` parsing, and the shared page format."""

from __future__ import annotations

import pytest

from proxy.cluster.settings import ClusterSettings, S3Settings
from proxy.config import ConfigError, settings_from_mapping
from proxy.pages.cache import CachedPage
from proxy.pages.format import decode_page, encode_page

UPSTREAM = {"upstreams": [{"name": "up", "url": "http://127.0.0.1:9/simple/"}]}
S3 = {
    "endpoint_url": "http://127.0.0.1:7480",
    "bucket": "variant-proxy",
    "prefix": "files/",
    "region": "us-east-1",
    "access_key_env": "S3_ACCESS_KEY_ID",
    "secret_key_env": "S3_SECRET_ACCESS_KEY",
}


def test_cluster_sections_are_parsed() -> None:
    settings = settings_from_mapping(
        {
            **UPSTREAM,
            "cache": {"s3": S3},
            "cluster": {
                "redis_url": "redis://127.0.0.1:6379/0",
                "advertise_url": "http://10.0.0.5:8080/",
            },
        }
    )
    assert settings.s3 == S3Settings(**S3)
    assert settings.cluster == ClusterSettings("redis://127.0.0.1:6379/0", "http://10.0.0.5:8080")


def test_without_the_sections_there_is_no_cluster() -> None:
    settings = settings_from_mapping(UPSTREAM)
    assert (settings.s3, settings.cluster) == (None, None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cache": {"s3": {**S3, "bucket": "No_Such"}}}, "cache.s3.bucket"),
        ({"cache": {"s3": {**S3, "colour": 1}}}, "cache.s3.colour: unknown setting"),
        ({"cache": {"s3": {**S3, "prefix": "../up"}}}, "cache.s3.prefix"),
        ({"cache": {"s3": {**S3, "access_key_env": "A-B"}}}, "cache.s3.access_key_env"),
        ({"cache": {"s3": {**S3, "endpoint_url": "ftp://x"}}}, "cache.s3.endpoint_url"),
        ({"cluster": {"redis_url": "http://127.0.0.1"}}, "cluster.redis_url"),
        ({"cluster": {"redis_url": "redis://h", "advertise_url": "x"}}, "cluster.advertise_url"),
        ({"cluster": {"redis_url": "redis://h", "peers": []}}, "cluster.peers: unknown"),
    ],
)
def test_bad_cluster_settings_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        settings_from_mapping({**UPSTREAM, **data})


def test_credentials_come_from_the_named_variables_only() -> None:
    s3 = S3Settings(**S3)
    keys = {"S3_ACCESS_KEY_ID": "ak", "S3_SECRET_ACCESS_KEY": "sk"}
    assert s3.credentials(keys) == ("ak", "sk")
    with pytest.raises(ConfigError, match="S3_SECRET_ACCESS_KEY is not set"):
        s3.credentials({"S3_ACCESS_KEY_ID": "ak"})
    assert S3Settings(None, "bucket").credentials({}) is None  # the SDK's own chain


def test_a_shared_page_keeps_body_and_validators() -> None:
    page = CachedPage.of(b"<html>\n\x00body", "text/html", "http://u/p/", 12.5, '"e"', "Mon")
    assert decode_page(encode_page(page)) == page
    missing = CachedPage(b"", "", "http://u/q/", None, None, 3.0, missing=True)
    assert decode_page(encode_page(missing)) == missing
    assert decode_page(b"not a page") is None
    assert decode_page(b'{"format": 99}\n') is None
