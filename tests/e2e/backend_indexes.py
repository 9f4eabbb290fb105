"""Simulated PyTorch-style build indexes for the backend e2e tests.

One `UpstreamServer` per build (`cpu`, `cu126`, `cu128`, `cu130`) plus the public upstream,
all on loopback. Wheels carry local versions (`torch-2.7.0+cu128-py3-none-any.whl`) and the
build pins of the real ones (`torchvision 0.22.0+cu128` requires `torch==2.7.0+cu128`);
their `BUILD` marker is the build name. Some builds lack releases or family members:

| build | torch        | torchvision   |
|-------|--------------|---------------|
| cpu   | 2.6.0, 2.7.0 | 0.21.0, 0.22.0 |
| cu126 | 2.6.0, 2.7.0 | 0.21.0, 0.22.0 |
| cu128 | 2.7.0        | 0.22.0        |
| cu130 | 2.7.0        | (none)        |

The public upstream has torch 2.6.0 and 2.7.0 and torchvision 0.21.0 and 0.22.0 without
local labels (marker `upstream`), and an unrelated project `demo-lib`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .builders import BuiltDist, build_wheel
from .upstream_server import UpstreamServer

# torch release -> the torchvision release that pairs with it.
PAIRS = {"2.6.0": "0.21.0", "2.7.0": "0.22.0"}
BUILDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cpu": (("2.6.0", "2.7.0"), ("0.21.0", "0.22.0")),
    "cu126": (("2.6.0", "2.7.0"), ("0.21.0", "0.22.0")),
    "cu128": (("2.7.0",), ("0.22.0",)),
    "cu130": (("2.7.0",), ()),
}
# The order of `[[backends]]` in the config: what a user would write.
BACKEND_ORDER = ("cpu", "cu126", "cu128", "cu130")


@dataclass
class BuildIndexes:
    upstream: UpstreamServer
    builds: dict[str, UpstreamServer]
    dists: dict[str, BuiltDist]  # "cu128/torch-2.7.0" -> the wheel

    def backends_config(self) -> list[dict[str, object]]:
        """`[[backends]]` with only `name` and `url`: the built-in properties apply."""
        return [{"name": n, "url": self.builds[n].index_url} for n in BACKEND_ORDER]


def build_dists(root: Path) -> dict[str, BuiltDist]:
    dists: dict[str, BuiltDist] = {}
    for build, (torches, visions) in BUILDS.items():
        folder = root / build
        for version in torches:
            dists[f"{build}/torch-{version}"] = build_wheel(
                folder, "torch", f"{version}+{build}", build_marker=build
            )
        for version in visions:
            torch = next(t for t, tv in PAIRS.items() if tv == version)
            dists[f"{build}/torchvision-{version}"] = build_wheel(
                folder,
                "torchvision",
                f"{version}+{build}",
                requires_dist=[f"torch=={torch}+{build}"],
                build_marker=build,
            )
    public = root / "public"
    for torch, vision in PAIRS.items():
        dists[f"upstream/torch-{torch}"] = build_wheel(
            public, "torch", torch, build_marker="upstream"
        )
        dists[f"upstream/torchvision-{vision}"] = build_wheel(
            public,
            "torchvision",
            vision,
            requires_dist=[f"torch=={torch}"],
            build_marker="upstream",
        )
    dists["upstream/demo-lib-1.0"] = build_wheel(public, "demo-lib", "1.0")
    return dists


@contextmanager
def serve_build_indexes(root: Path) -> Iterator[BuildIndexes]:
    """Start the public upstream and one index per build, each with its own wheels."""
    dists = build_dists(root)
    servers = {name: UpstreamServer("html").start() for name in BUILDS}
    upstream = UpstreamServer("json").start()
    try:
        for key, dist in dists.items():
            where = key.split("/", 1)[0]
            (upstream if where == "upstream" else servers[where]).add_dist(dist)
        yield BuildIndexes(upstream, servers, dists)
    finally:
        for server in (*servers.values(), upstream):
            server.close()
