"""A pinned private project cannot be shadowed by a public upstream with the same name."""

from __future__ import annotations

from pathlib import Path

import pytest

from .catalogue import Wheelhouse, publish_private
from .clients import build_marker, file_urls, installed_versions, pip_install
from .proxy_process import ProxyLauncher, proxy_config
from .upstream_server import UpstreamFactory

pytestmark = pytest.mark.e2e


def test_pinned_project_is_served_only_from_its_upstream(
    make_upstream: UpstreamFactory, proxy: ProxyLauncher, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    private = publish_private(make_upstream("html", publish=False), wheelhouse)
    public = make_upstream("json")  # also has secretlib, at the higher version 9.0
    config = proxy_config(
        proxy.new_cache_dir(),
        [("private", private), ("public", public)],
        pins={"secretlib": "private"},
    )
    running = proxy.start(config)

    listed = file_urls(running.page_url("secretlib"))
    assert set(listed) == {wheelhouse["secretlib-1.0-private"].filename}
    # The second upstream still serves the projects that are not pinned.
    assert wheelhouse["demo-lib-1.0"].filename in file_urls(running.page_url("demo-lib"))

    pip_install(running.index_url, ["secretlib"], tmp_path)
    assert installed_versions(tmp_path) == {"secretlib": "1.0"}
    assert build_marker(tmp_path, "secretlib") == "private"
