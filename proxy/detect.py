"""This machine's hardware: py-cpuinfo for the CPU, NVML (pynvml) for NVIDIA GPUs.

The only module of the package that looks at the machine. It turns what the libraries
report into `HardwareFacts` in the reference providers' vocabulary, plus one-line notes
saying what was found or why something was not; it never raises for a missing library,
an absent GPU or a broken driver. Everything after the facts is pure: the facts become a
`HardwareSpec`, the spec a `Fingerprint`, and `proxy.cli.detect_output` formats them for
`variant-proxy detect`.

NVIDIA detection follows `nvidia-variant-provider`:
- the CUDA version comes from `nvmlSystemGetCudaDriverVersion_v2` (falling back to
  `nvmlSystemGetCudaDriverVersion`), decoded as `v // 1000 . (v % 1000) // 10`, and is
  used only within 11.0 .. 15.20;
- the compute capability is the highest over all devices; a device whose capability
  cannot be read is skipped, while a failed init, driver, count or handle query ends
  NVIDIA detection;
- without a CUDA version there are no nvidia properties at all, and a capability below
  5.0 gives no `sm_arch`;
- a non-empty `NV_VARIANT_PROVIDER_FORCE_CUDA_DRIVER_VERSION` (read like a Python package
  version; `12.8`) replaces the detected CUDA version, skipping the range check, and a
  non-empty `NV_VARIANT_PROVIDER_FORCE_SM_ARCH` (`9.0`) replaces the detected compute
  capability; NVML is not asked for what is forced. Where the reference would crash on a
  malformed override, detection gives no nvidia properties and a note.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from packaging.version import InvalidVersion, Version

from proxy.variants.fingerprint import (
    Fingerprint,
    HardwareSpec,
    HardwareSpecError,
    expand_hardware_spec,
    parse_compute_capability,
)
from proxy.variants.properties import VariantProperty
from proxy.variants.providers import aarch64, nvidia, x86_64

FORCE_CUDA_ENV = "NV_VARIANT_PROVIDER_FORCE_CUDA_DRIVER_VERSION"
FORCE_SM_ENV = "NV_VARIANT_PROVIDER_FORCE_SM_ARCH"

# (major, minor): CUDA 12.8 -> (12, 8), compute capability 9.0 -> (9, 0).
Version2 = tuple[int, int]
CpuInfo = Callable[[], Mapping[str, Any]]


class NvmlApi(Protocol):
    """The part of the `pynvml` module (nvidia-ml-py) that detection uses."""

    NVMLError: type[Exception]

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlSystemGetDriverVersion(self) -> str: ...
    def nvmlSystemGetCudaDriverVersion(self) -> int: ...
    def nvmlDeviceGetCount(self) -> int: ...
    def nvmlDeviceGetHandleByIndex(self, index: int) -> object: ...
    def nvmlDeviceGetCudaComputeCapability(self, handle: object) -> tuple[int, int]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class HardwareFacts:
    """What detection found, in the reference providers' vocabulary.

    `cpu_flags` holds every reference flag the CPU has (level-implied ones included),
    in the provider's order.
    """

    cpu_arch: str | None = None  # "x86_64", "aarch64", or None when neither
    x86_64_level: int | None = None
    aarch64_version: str | None = None
    cpu_flags: tuple[str, ...] = ()
    cuda: Version2 | None = None  # the CUDA version the driver supports
    sm: Version2 | None = None  # the highest compute capability


@dataclasses.dataclass(frozen=True, slots=True)
class Detection:
    facts: HardwareFacts
    notes: tuple[str, ...] = ()


# --- CPU ---------------------------------------------------------------------------------


def _py_cpuinfo() -> Mapping[str, Any]:
    import cpuinfo

    info: Mapping[str, Any] = cpuinfo.get_cpu_info()
    return info


def _in_provider_order(flags: frozenset[str], order: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(flag for flag in order if flag in flags)


def _detect_cpu(cpu_info: CpuInfo, notes: list[str]) -> HardwareFacts:
    try:
        info = cpu_info()
        arch = str(info.get("arch") or "")
        raw_flags = [str(flag) for flag in info.get("flags") or ()]
        bits = info.get("bits")
    except Exception as error:  # py-cpuinfo probes the machine in many ways; any may fail
        notes.append(f"cpu: py-cpuinfo failed ({type(error).__name__}: {error}); no CPU properties")
        return HardwareFacts()
    if arch == "X86_64":
        flags = x86_64.reference_flags(raw_flags)
        level = x86_64.level_from_flags(flags)
        if not raw_flags:
            notes.append("cpu: py-cpuinfo reported no CPU flags; assuming the x86-64 baseline")
        flags |= x86_64.LEVEL_FLAGS[level]
        notes.append(f"cpu: x86_64 level v{level}, {len(flags)} known extension flags")
        return HardwareFacts(
            cpu_arch="x86_64",
            x86_64_level=level,
            cpu_flags=_in_provider_order(flags, x86_64.FLAGS),
        )
    if arch == "ARM_8" and bits == 64:
        version = aarch64.version_from_flags(raw_flags)
        flags = aarch64.reference_flags(raw_flags)
        notes.append(
            f"cpu: aarch64 version {version} (inferred from its extension flags), "
            f"{len(flags)} known extension flags"
        )
        return HardwareFacts(
            cpu_arch="aarch64",
            aarch64_version=version,
            cpu_flags=_in_provider_order(flags, aarch64.FLAGS),
        )
    notes.append(f"cpu: no built-in provider for architecture {arch or 'unknown'!r}")
    return HardwareFacts()


# --- NVIDIA ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _NvmlReading:
    driver: str
    cuda: Version2 | None
    capabilities: tuple[Version2, ...]


def _import_pynvml() -> NvmlApi:
    module: NvmlApi = importlib.import_module("pynvml")
    return module


def _read_cuda_version(nvml: NvmlApi) -> Version2 | None:
    # The reference tries the v2 call first; older libraries only have the v1 one.
    calls = [getattr(nvml, "nvmlSystemGetCudaDriverVersion_v2", None)]
    calls.append(nvml.nvmlSystemGetCudaDriverVersion)
    for call in calls:
        if call is None:
            continue
        try:
            return nvidia.cuda_version_from_driver(int(call()))
        except nvml.NVMLError:
            continue
    return None


def _read_nvml(nvml: NvmlApi) -> _NvmlReading:
    """Query NVML as the reference does; NVMLError from init/driver/count/handle escapes."""
    try:
        nvml.nvmlInit()
        driver = nvml.nvmlSystemGetDriverVersion()
        cuda = _read_cuda_version(nvml)
        capabilities: list[Version2] = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            try:
                major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
            except nvml.NVMLError:
                continue
            capabilities.append((int(major), int(minor)))
        if isinstance(driver, bytes):  # bindings before nvidia-ml-py 11.515 return bytes
            driver = driver.decode(errors="replace")
        return _NvmlReading(str(driver), cuda, tuple(capabilities))
    finally:
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()


def _query_nvml(nvml: NvmlApi | None) -> _NvmlReading | str:
    """NVML's answer, or why there is none (one line)."""
    if nvml is None:
        try:
            nvml = _import_pynvml()
        except ImportError:
            return "pynvml (nvidia-ml-py) is not installed"
    try:
        return _read_nvml(nvml)
    except Exception as error:  # NVMLError, or anything a broken driver or binding throws
        return f"NVML unavailable ({error or type(error).__name__})"


def _forced_cuda(text: str) -> Version2:
    """Read the CUDA override as the reference does (a packaging Version: major, minor)."""
    version = Version(text)
    if version.major > 999 or version.minor > 999:
        raise InvalidVersion(text)
    return version.major, version.minor


def _forced_sm(text: str) -> Version2:
    try:
        return parse_compute_capability(text.strip())
    except HardwareSpecError:
        raise ValueError(text) from None


def _override(
    environ: Mapping[str, str], name: str, parse: Callable[[str], Version2], notes: list[str]
) -> Version2 | None:
    """The parsed override `name` (an empty one counts as absent); ValueError if malformed."""
    text = environ.get(name, "")
    if not text:
        return None
    try:
        value = parse(text)
    except ValueError:
        notes.append(f"nvidia: {name}={text!r} is malformed; no nvidia properties")
        raise
    notes.append(f"nvidia: {value[0]}.{value[1]} forced by {name}")
    return value


def _detected_cuda(reading: _NvmlReading) -> Version2 | str:
    """The driver's CUDA version if the reference would use it, else why not."""
    if reading.cuda is None:
        return f"driver {reading.driver} reports no CUDA version"
    if not nvidia.detectable_cuda_version(reading.cuda):
        major, minor = reading.cuda
        return f"driver CUDA {major}.{minor} is outside the provider's range 11.0-15.20"
    return reading.cuda


def _detect_nvidia(
    nvml: NvmlApi | None, environ: Mapping[str, str], notes: list[str]
) -> tuple[Version2 | None, Version2 | None]:
    """(CUDA version, compute capability) for the nvidia provider, or (None, None)."""
    try:
        forced_cuda = _override(environ, FORCE_CUDA_ENV, _forced_cuda, notes)
        forced_sm = _override(environ, FORCE_SM_ENV, _forced_sm, notes)
    except ValueError:
        return None, None
    cuda, sm, problem = forced_cuda, forced_sm, ""
    if cuda is None or sm is None:
        reading = _query_nvml(nvml)
        if isinstance(reading, str):
            problem = reading
        else:
            cuda, sm, problem = _with_reading(reading, cuda, sm, notes)
    return _usable_nvidia(cuda, sm, forced_cuda is not None, problem, notes)


def _with_reading(
    reading: _NvmlReading, cuda: Version2 | None, sm: Version2 | None, notes: list[str]
) -> tuple[Version2 | None, Version2 | None, str]:
    """Fill what was not forced from NVML's reading: (cuda, sm, the problem, if any)."""
    problem = ""
    if sm is None and reading.capabilities:
        sm = max(reading.capabilities)
    elif sm is None:
        problem = f"driver {reading.driver} but no NVIDIA GPU found"
    if cuda is None:
        detected_cuda = _detected_cuda(reading)
        if isinstance(detected_cuda, str):
            problem = problem or detected_cuda
        else:
            cuda = detected_cuda
    if cuda is not None and sm is not None:
        notes.append(
            f"nvidia: driver {reading.driver}, CUDA {cuda[0]}.{cuda[1]}, "
            f"{len(reading.capabilities)} GPU(s), compute capability {sm[0]}.{sm[1]}"
        )
    return cuda, sm, problem


def _usable_nvidia(
    cuda: Version2 | None, sm: Version2 | None, cuda_forced: bool, problem: str, notes: list[str]
) -> tuple[Version2 | None, Version2 | None]:
    # As in the reference, no CUDA version means no nvidia properties; and without a GPU
    # there are none either, unless the CUDA version was forced.
    if cuda is None or (sm is None and not cuda_forced):
        notes.append(f"nvidia: no nvidia properties: {problem or 'no CUDA version known'}")
        return None, None
    if sm is None:
        notes.append(f"nvidia: no sm_arch: {problem or 'no compute capability known'}")
    elif sm < nvidia.LOWEST_COMPUTE_CAPABILITY:
        notes.append(f"nvidia: compute capability {sm[0]}.{sm[1]} is below 5.0; no sm_arch")
        sm = None
    return cuda, sm


# --- the whole machine -------------------------------------------------------------------


def detect_hardware(
    cpu_info: CpuInfo | None = None,
    nvml: NvmlApi | None = None,
    environ: Mapping[str, str] | None = None,
) -> Detection:
    """Detect this machine. The parameters replace py-cpuinfo's `get_cpu_info`, the
    `pynvml` module and `os.environ` (tests pass fakes; the defaults are the real ones)."""
    notes: list[str] = []
    cpu = _detect_cpu(cpu_info or _py_cpuinfo, notes)
    cuda, sm = _detect_nvidia(nvml, os.environ if environ is None else environ, notes)
    return Detection(dataclasses.replace(cpu, cuda=cuda, sm=sm), tuple(notes))


@functools.cache
def detected() -> Detection:
    """This machine's detection, done once per process (py-cpuinfo alone takes a second)."""
    return detect_hardware()


def detection_to_spec(facts: HardwareFacts) -> HardwareSpec:
    """The hardware spec that expands to exactly the detected fingerprint.

    Detected CPU flags beyond those the level implies become `prop=` items.
    """
    cpu: str | None = None
    implied: frozenset[str] = frozenset()
    namespace = ""
    if facts.cpu_arch == "x86_64" and facts.x86_64_level is not None:
        cpu = f"x86_64_v{facts.x86_64_level}"
        implied = x86_64.LEVEL_FLAGS[min(facts.x86_64_level, x86_64.MAX_LEVEL)]
        namespace = x86_64.NAMESPACE
    elif facts.cpu_arch == "aarch64":
        cpu = f"aarch64_{facts.aarch64_version or aarch64.BASELINE_VERSION}"
        namespace = aarch64.NAMESPACE
    extra = tuple(
        VariantProperty(namespace, flag, "on") for flag in facts.cpu_flags if flag not in implied
    )
    if cpu is None and facts.cuda is None and facts.sm is None:
        return HardwareSpec(none=True)
    return HardwareSpec(cpu=cpu, cuda=facts.cuda, sm=facts.sm, properties=extra)


def detected_fingerprint(detection: Detection) -> Fingerprint:
    """The fingerprint of a detection: CPU level and detected flags, then nvidia."""
    return expand_hardware_spec(detection_to_spec(detection.facts))
