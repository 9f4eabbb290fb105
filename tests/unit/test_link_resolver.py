"""The fast link resolver gives exactly what `urljoin` gives."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest

from proxy.urls.join import LinkResolver

BASES = ["http://index.example/simple/pkg/", "https://index.example:8443/a/b/c", "http://h/"]
LINKS = [
    "../../files/pkg/pkg-1.0.tar.gz",
    "../../files/pkg/pkg-1.0.tar.gz#sha256=00ff",
    "/files/pkg-1.0-py3-none-any.whl",
    "pkg-1.0.tar.gz",
    "./pkg-1.0.tar.gz",
    "sub/../pkg-1.0.tar.gz",
    "//other.example/files/pkg-1.0.tar.gz",
    "https://files.example/x/pkg-1.0.tar.gz",
    "../files/?name=pkg-1.0.tar.gz",
    "../files/pkg;v=1.tar.gz",
    "..",
    "../",
    "",
    "#frag",
    "dir/pkg%2F1.0.tar.gz",
]


@pytest.mark.parametrize("base", BASES)
def test_each_link_resolves_as_urljoin_does(base: str) -> None:
    resolver = LinkResolver(base)
    for _ in range(2):  # the second round comes from the directory memo
        for link in LINKS:
            assert resolver.resolve(link) == urljoin(base, link), link
