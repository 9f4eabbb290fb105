"""Built-in variant providers: hardware facts -> ordered variant properties.

Each module mirrors one WheelNext reference provider (`provider-variant-x86-64`,
`provider-variant-aarch64`, `nvidia-variant-provider`): the same namespace, feature
names and values, in the same preference order. They are pure functions; finding the
facts on a real machine is `proxy.detect`'s job.
"""

from __future__ import annotations


class HardwareValueError(ValueError):
    """A hardware fact that a built-in provider cannot express; the message names it."""
