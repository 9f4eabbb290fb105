"""Variant properties (`namespace :: feature :: value`) and the validation of their parts.

Shared by variants.json parsing, fingerprints and the hardware providers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# PEP 825: namespaces and feature names are lowercase identifiers; values may also hold dots.
# Matched with fullmatch: `$` alone would let a trailing newline through.
_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_VALUE_RE = re.compile(r"^[a-z0-9_.]+$")


class PropertyError(ValueError):
    """A property or one of its parts is malformed; the message names the bad part."""


def check_name(kind: str, text: str) -> str:
    """Return `text` if it is a valid namespace or feature name, else raise naming `kind`."""
    if not _NAME_RE.fullmatch(text):
        raise PropertyError(f"invalid {kind} {text!r}: expected lowercase letters, digits, '_'")
    return text


def check_value(text: str) -> str:
    """Return `text` if it is a valid property value, else raise."""
    if not _VALUE_RE.fullmatch(text):
        raise PropertyError(
            f"invalid property value {text!r}: expected lowercase letters, digits, '_', '.'"
        )
    return text


@dataclass(frozen=True, slots=True, order=True)
class VariantProperty:
    namespace: str
    feature: str
    value: str

    def __str__(self) -> str:
        return f"{self.namespace} :: {self.feature} :: {self.value}"

    @property
    def feature_key(self) -> tuple[str, str]:
        return (self.namespace, self.feature)

    @classmethod
    def parse(cls, text: str) -> VariantProperty:
        """Parse `namespace :: feature :: value` (whitespace around `::` ignored)."""
        parts = [p.strip() for p in text.split("::")]
        if len(parts) != 3:
            raise PropertyError(
                f"invalid property {text.strip()!r}: expected 'namespace :: feature :: value'"
            )
        namespace, feature, value = parts
        return cls(
            check_name("namespace", namespace), check_name("feature", feature), check_value(value)
        )
