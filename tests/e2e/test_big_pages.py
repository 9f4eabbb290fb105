"""A big project page (3,000 files, some 700 kB of JSON) through the proxy. A JSON client's
cold page is made straight in the worker process from the upstream's bytes (issue 9); it
must be byte for byte, ETag too, the page the general path makes, stay the page of later
requests, and pip must install from it (its file found in the merged page made afterwards).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .catalogue import Wheelhouse
from .clients import JSON_ACCEPT, http_get, installed_versions, pip_install
from .proxy_process import ProxyLauncher, proxy_config
from .upstream_server import UpstreamFactory, UpstreamServer

pytestmark = pytest.mark.e2e

FILLER_FILES = 3000


@pytest.fixture
def big_upstream(make_upstream: UpstreamFactory, wheelhouse: Wheelhouse) -> UpstreamServer:
    upstream = make_upstream("json", publish=False)
    upstream.add_dist(wheelhouse["demo-lib-1.0"])
    for number in range(FILLER_FILES):  # older sdists (pip never gets to them)
        version = f"0.0.{number}"
        upstream.add_file("demo-lib", f"demo_lib-{version}.tar.gz", b"-", version=version)
    return upstream


def test_a_big_cold_json_page_is_the_general_paths_page(
    proxy: ProxyLauncher, big_upstream: UpstreamServer, tmp_path: Path
) -> None:
    straight_proxy = proxy.start(proxy_config(proxy.new_cache_dir(), [big_upstream]))
    url = straight_proxy.page_url("demo-lib")
    cold = http_get(url, headers={"Accept": JSON_ACCEPT})
    assert cold.status == 200 and cold.header("X-Cache") == "miss"
    assert len(cold.body) > 500_000 and len(cold.json()["files"]) == FILLER_FILES + 1
    warm = http_get(url, headers={"Accept": JSON_ACCEPT})
    assert warm.header("X-Cache") == "hit"
    assert (warm.body, warm.header("ETag")) == (cold.body, cold.header("ETag"))
    # A proxy that made its merged page first (an HTML client) renders the JSON page itself.
    general_proxy = proxy.start(proxy_config(proxy.new_cache_dir(), [big_upstream]))
    general_url = general_proxy.page_url("demo-lib")
    assert http_get(general_url).status == 200
    general = http_get(general_url, headers={"Accept": JSON_ACCEPT})
    assert (general.body, general.header("ETag")) == (cold.body, cold.header("ETag"))
    # pip installs from the straight page: the file is found in the merged page.
    target = tmp_path / "target"
    pip_install(straight_proxy.index_url, ["demo-lib"], target)
    assert installed_versions(target) == {"demo-lib": "1.0"}
