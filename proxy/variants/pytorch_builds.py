"""The built-in variant properties of PyTorch's per-build indexes (data, pure).

A `[[backends]]` entry whose `name` is one of these and that omits `properties` gets the
properties below, so a cluster's config can be just `name` and `url`. A `properties` list
in the entry replaces them (`properties = []` makes the entry the null variant).

What each property means, in the vocabulary of the proxy's hardware specs (the same as the
WheelNext reference providers; see `proxy.variants.providers.nvidia`):

- `cuXYZ` (CUDA X.Y builds): `nvidia :: cuda_version_lower_bound :: X.Y` (the driver must
  support CUDA X.Y or newer) and one `nvidia :: sm_arch :: NN_real` per GPU architecture
  the build ships machine code for (`TORCH_CUDA_ARCH_LIST`), plus `NN_virtual` where the
  list ends in `+PTX`. A fingerprint from `cuda=12.8,sm=8.6` supports `86_real` ..
  `80_real` and `80_virtual`, so it fits a build that ships `80_real` or `86_real`.
- `rocmX.Y`: `amd :: rocm_version :: X.Y` and one `amd :: gfx_arch :: gfxNNN` per target
  of `PYTORCH_ROCM_ARCH`.
- `xpu`: one `intel :: device_ip :: IP` per Intel GPU family of `TORCH_XPU_ARCH_LIST`,
  written as the graphics IP version the device reports.
- `cpu`: no properties: the null variant.

Sources (PyTorch's published build matrix, read in pytorch/pytorch):
- `.ci/manywheel/build_cuda.sh`: TORCH_CUDA_ARCH_LIST per CUDA version, x86_64 wheels
  (12.6: 5.0;6.0;7.0;7.5;8.0;8.6;9.0 / 12.8: 7.0;7.5;8.0;8.6;9.0;10.0;12.0 /
  12.9: the 12.8 list with 12.0+PTX / 13.0: 7.5;8.0;8.6;9.0;10.0;12.0+PTX, aarch64 adds 11.0).
- Older releases' `.ci/manywheel/build_cuda.sh` for 11.8, 12.1, 12.4
  (5.0;6.0;7.0;7.5;8.0;8.6;9.0; 11.8 also shipped 3.7, below what the nvidia provider knows).
- `.ci/docker/manywheel/build.sh`: PYTORCH_ROCM_ARCH for the rocm images (ROCm 6.x:
  gfx900;gfx906;gfx908;gfx90a;gfx942;gfx1030;gfx1100;gfx1101;gfx1102;gfx1200;gfx1201;
  ROCm 7.x adds gfx1103;gfx950;gfx1150;gfx1151).
- `.ci/pytorch/windows/xpu.bat` and the Linux XPU build: TORCH_XPU_ARCH_LIST
  (pvc, bmg, dg2, arl-h, mtl-h, lnl-m), mapped to their graphics IP versions.

When PyTorch changes a list, update the table here; an operator can override any entry
in the config without waiting for a release.
"""

from __future__ import annotations

import re

from proxy.variants.properties import VariantProperty

NVIDIA = "nvidia"
AMD = "amd"
INTEL = "intel"

_ROCM6_GFX = (
    "gfx900",
    "gfx906",
    "gfx908",
    "gfx90a",
    "gfx942",
    "gfx1030",
    "gfx1100",
    "gfx1101",
    "gfx1102",
    "gfx1200",
    "gfx1201",
)
_ROCM7_GFX = (*_ROCM6_GFX, "gfx1103", "gfx950", "gfx1150", "gfx1151")

# CUDA build -> (CUDA version, architectures with machine code, architectures with PTX).
_CUDA_BUILDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "cu118": ("11.8", ("50", "60", "70", "75", "80", "86", "90"), ()),
    "cu121": ("12.1", ("50", "60", "70", "75", "80", "86", "90"), ()),
    "cu124": ("12.4", ("50", "60", "70", "75", "80", "86", "90"), ()),
    "cu126": ("12.6", ("50", "60", "70", "75", "80", "86", "90"), ()),
    "cu128": ("12.8", ("70", "75", "80", "86", "90", "100", "120"), ()),
    "cu129": ("12.9", ("70", "75", "80", "86", "90", "100", "120"), ("120",)),
    "cu130": ("13.0", ("75", "80", "86", "90", "100", "120"), ("120",)),
}

# ROCm build -> gfx targets.
_ROCM_BUILDS: dict[str, tuple[str, ...]] = {
    "rocm6.2": _ROCM6_GFX,
    "rocm6.3": _ROCM6_GFX,
    "rocm6.4": _ROCM6_GFX,
    "rocm7.0": _ROCM7_GFX,
    "rocm7.1": _ROCM7_GFX,
}

# Intel GPU families of TORCH_XPU_ARCH_LIST as graphics IP versions: pvc (Data Center GPU
# Max), dg2 (Arc A-series), mtl-h (Meteor Lake), arl-h (Arrow Lake), bmg (Arc B-series),
# lnl-m (Lunar Lake).
_XPU_DEVICE_IPS = ("12.60.7", "12.55.8", "12.70.4", "12.74.4", "20.1.0", "20.4.4")

_CUDA_NAME_RE = re.compile(r"cu[0-9]{3}")


def _cuda_properties(cuda: str, real: tuple[str, ...], ptx: tuple[str, ...]) -> tuple[str, ...]:
    return (
        f"{NVIDIA} :: cuda_version_lower_bound :: {cuda}",
        *(f"{NVIDIA} :: sm_arch :: {arch}_real" for arch in real),
        *(f"{NVIDIA} :: sm_arch :: {arch}_virtual" for arch in ptx),
    )


def _table() -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {"cpu": ()}
    for name, (cuda, real, ptx) in _CUDA_BUILDS.items():
        table[name] = _cuda_properties(cuda, real, ptx)
    for name, targets in _ROCM_BUILDS.items():
        version = name.removeprefix("rocm")
        table[name] = (
            f"{AMD} :: rocm_version :: {version}",
            *(f"{AMD} :: gfx_arch :: {target}" for target in targets),
        )
    table["xpu"] = tuple(f"{INTEL} :: device_ip :: {ip}" for ip in _XPU_DEVICE_IPS)
    return table


BUILTIN_BACKENDS: dict[str, tuple[str, ...]] = _table()


def builtin_properties(name: str) -> tuple[str, ...] | None:
    """The built-in properties of a PyTorch backend name, or None for an unknown name."""
    return BUILTIN_BACKENDS.get(name)


def builtin_backend_properties(name: str) -> tuple[VariantProperty, ...] | None:
    """The same, parsed."""
    texts = builtin_properties(name)
    return None if texts is None else tuple(VariantProperty.parse(text) for text in texts)


def is_cuda_build(name: str) -> bool:
    return _CUDA_NAME_RE.fullmatch(name) is not None
