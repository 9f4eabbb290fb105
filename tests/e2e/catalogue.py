"""What the e2e upstreams serve: the session's wheelhouse and how it is published.

Every test project is here, by a short key such as `demo-app-1.0`, with the page-level facts
(yanked reasons, requires-python) that `publish_public` gives it on an upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .builders import BuiltDist, build_sdist, build_wheel
from .upstream_server import UpstreamServer

BIG_FILE_BYTES = 2 * 1024 * 1024
BULKY_FILE_BYTES = 400_000


@dataclass(frozen=True)
class Wheelhouse:
    """Every distribution the suite serves, by a short key such as `demo-app-1.0`."""

    root: Path
    dists: dict[str, BuiltDist]

    def __getitem__(self, key: str) -> BuiltDist:
        return self.dists[key]


def build_wheelhouse(root: Path) -> Wheelhouse:
    """Build every test distribution under `root` (public and private folders)."""
    public, private = root / "public", root / "private"
    dists = {
        "demo-app-1.0": build_wheel(public, "demo-app", "1.0", requires_dist=["demo-lib>=1.0"]),
        "demo-lib-1.0": build_wheel(public, "demo-lib", "1.0", requires_python=">=3.8"),
        "demo-lib-1.0-sdist": build_sdist(public, "demo-lib", "1.0"),
        "demo-src-1.0": build_sdist(public, "demo-src", "1.0", requires_python=">=3.8"),
        "yankee-1.0": build_wheel(public, "yankee", "1.0"),
        "yankee-2.0": build_wheel(public, "yankee", "2.0"),
        "pyreq-1.0": build_wheel(public, "pyreq", "1.0", requires_python=">=3.8"),
        # No Requires-Python inside: only the index page's requires-python excludes it.
        "pyreq-2.0": build_wheel(public, "pyreq", "2.0"),
        "my-pkg-1.0": build_wheel(public, "My_Pkg", "1.0"),
        "cold-1.0": build_wheel(public, "cold", "1.0"),
        "fragile-1.0": build_wheel(public, "fragile", "1.0", payload_size=50_000),
        "big-1.0": build_wheel(public, "big", "1.0", payload_size=BIG_FILE_BYTES),
        "big-2.0": build_wheel(public, "big", "2.0", payload_size=BIG_FILE_BYTES),
        "bulky-1.0": build_wheel(public, "bulky", "1.0", payload_size=BULKY_FILE_BYTES),
        "bulky-2.0": build_wheel(public, "bulky", "2.0", payload_size=BULKY_FILE_BYTES),
        "bulky-3.0": build_wheel(public, "bulky", "3.0", payload_size=BULKY_FILE_BYTES),
        "secretlib-9.0": build_wheel(public, "secretlib", "9.0", build_marker="public"),
        "secretlib-1.0-private": build_wheel(private, "secretlib", "1.0", build_marker="private"),
    }
    return Wheelhouse(root, dists)


YANKED_REASON = "broken release"
PAGE_ONLY_REQUIRES_PYTHON = ">=99"


def publish_public(upstream: UpstreamServer, wheelhouse: Wheelhouse) -> UpstreamServer:
    """Host every public distribution, with yanked `yankee 2.0` and `pyreq 2.0` listed as
    requiring Python >= 99."""
    for key, dist in wheelhouse.dists.items():
        if key.endswith("-private"):
            continue
        upstream.add_dist(
            dist,
            yanked=YANKED_REASON if key == "yankee-2.0" else False,
            requires_python=PAGE_ONLY_REQUIRES_PYTHON if key == "pyreq-2.0" else None,
        )
    return upstream


def publish_private(upstream: UpstreamServer, wheelhouse: Wheelhouse) -> UpstreamServer:
    upstream.add_dist(wheelhouse["secretlib-1.0-private"])
    return upstream


# What a foundation install asks for, and what a correct index makes installers choose:
# yanked yankee 2.0 and pyreq 2.0 (listed as requiring Python >= 99) are passed over;
# demo-lib comes in as demo-app's dependency.
REQUIREMENTS = ["demo-app", "demo-src", "yankee", "pyreq"]
EXPECTED = {
    "demo-app": "1.0",
    "demo-lib": "1.0",
    "demo-src": "1.0",
    "yankee": "1.0",
    "pyreq": "1.0",
}
