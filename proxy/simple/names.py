"""Project names: PEP 503 normalisation and the `NormalizedName` type it returns.

`NormalizedName` is `packaging.utils.NormalizedName` (what `canonicalize_name` returns), so
a signature that takes one says the name was normalised once, where it entered the proxy.
"""

from __future__ import annotations

import re
from typing import cast

from packaging.utils import NormalizedName

__all__ = ["NormalizedName", "normalize_name"]

_NAME_SEPARATOR_RUN = re.compile(r"[-_.]+")


def normalize_name(name: str) -> NormalizedName:
    """PEP 503 normalised project name: lowercase, runs of `-_.` become one `-`."""
    return cast(NormalizedName, _NAME_SEPARATOR_RUN.sub("-", name).lower())
