"""The `nvidia` namespace: CUDA driver version bounds and GPU architectures.

Mirrors WheelNext `nvidia-variant-provider` (`nvidia_variant_provider/plugin.py`,
`get_supported_configs`), value for value and in order, for a driver CUDA version
`M.m` and a highest compute capability `X.y`:

- `cuda_version_lower_bound`: `M.m, ..., M.0, M`, then every older major down to 11,
  each as `K.20, ..., K.0, K` (a wheel built for CUDA >= value runs here);
- `cuda_version_upper_bound`: from `15.20, ..., 15.0, 15` down to `M.20, ..., M.(m+1)`
  (a wheel for CUDA < value runs here; the local version itself is excluded);
- `sm_arch` (multi-value): `Xy_real, X(y-1)_real, ..., X0_real, X0_virtual`; nothing
  below compute capability 5.0.

The reference supports detected driver versions 11.0 to 15.20 only (outside it, detection
is switched off); a forced version, like one written in a hardware spec here, is expanded
by the same formulas without that check.
"""

from __future__ import annotations

from proxy.variants.properties import VariantProperty

NAMESPACE = "nvidia"
LOWER_BOUND_FEATURE = "cuda_version_lower_bound"
UPPER_BOUND_FEATURE = "cuda_version_upper_bound"
SM_ARCH_FEATURE = "sm_arch"

LOWEST_CUDA_MAJOR = 11
HIGHEST_CUDA_MAJOR = 15
HIGHEST_CUDA_MINOR = 20
LOWEST_COMPUTE_CAPABILITY = (5, 0)

# (major, minor), e.g. CUDA 12.8 -> (12, 8), compute capability 9.0 -> (9, 0).
Version2 = tuple[int, int]


def cuda_version_from_driver(value: int) -> Version2:
    """Decode NVML's integer CUDA driver version (12080 -> (12, 8)) as the reference does."""
    return value // 1000, (value % 1000) // 10


def detectable_cuda_version(version: Version2) -> bool:
    """Whether a detected driver version is in the range the reference accepts (11.0-15.20)."""
    return (LOWEST_CUDA_MAJOR, 0) <= version <= (HIGHEST_CUDA_MAJOR, HIGHEST_CUDA_MINOR)


def _major_values(major: int, minors: range, with_major_only: bool) -> list[str]:
    values = [f"{major}.{minor}" for minor in minors]
    return [*values, str(major)] if with_major_only else values


def lower_bound_values(cuda: Version2) -> tuple[str, ...]:
    """`cuda_version_lower_bound` values for driver CUDA version `cuda`, best first."""
    major, minor = cuda
    values: list[str] = []
    for each in range(major, LOWEST_CUDA_MAJOR - 1, -1):
        top = minor if each == major else HIGHEST_CUDA_MINOR
        values += _major_values(each, range(top, -1, -1), with_major_only=True)
    return tuple(values)


def upper_bound_values(cuda: Version2) -> tuple[str, ...]:
    """`cuda_version_upper_bound` values for driver CUDA version `cuda`, best first."""
    major, minor = cuda
    values: list[str] = []
    for each in range(HIGHEST_CUDA_MAJOR, major - 1, -1):
        if each > major:
            values += _major_values(each, range(HIGHEST_CUDA_MINOR, -1, -1), with_major_only=True)
        else:
            values += _major_values(
                each, range(HIGHEST_CUDA_MINOR, minor, -1), with_major_only=False
            )
    return tuple(values)


def sm_arch_values(compute_capability: Version2) -> tuple[str, ...]:
    """`sm_arch` values for the highest compute capability on the machine, best first."""
    if compute_capability < LOWEST_COMPUTE_CAPABILITY:
        return ()
    major, minor = compute_capability
    return (*(f"{major}{each}_real" for each in range(minor, -1, -1)), f"{major}0_virtual")


def nvidia_properties(
    cuda: Version2 | None, compute_capability: Version2 | None
) -> tuple[VariantProperty, ...]:
    """The `nvidia` properties for what is known: bounds need `cuda`, `sm_arch` the GPU."""
    features: list[tuple[str, tuple[str, ...]]] = []
    if cuda is not None:
        features.append((LOWER_BOUND_FEATURE, lower_bound_values(cuda)))
        features.append((UPPER_BOUND_FEATURE, upper_bound_values(cuda)))
    if compute_capability is not None:
        features.append((SM_ARCH_FEATURE, sm_arch_values(compute_capability)))
    return tuple(
        VariantProperty(NAMESPACE, feature, value)
        for feature, values in features
        for value in values
    )
