"""Exceptions and warnings raised by skycut.

Domain errors subclass :class:`ValueError` (as astropy's ``NoOverlapError`` does), so callers that
already catch ``ValueError`` around a cutout keep working. The names mirror astrocut's so that code
written for astrocut catches the same things.
"""

from __future__ import annotations


class SkycutError(ValueError):
    """Base class of every error skycut raises on bad input or data."""


class InvalidInputError(SkycutError):
    """An argument or input file is unusable (wrong type, missing, not the expected format)."""


class InvalidQueryError(SkycutError):
    """A valid request that selects nothing: the target misses every image, no sector matches, ..."""


class NoWcsKeywordsFoundError(InvalidInputError):
    """A header or cube table carries no usable celestial WCS."""


class ManifestError(SkycutError):
    """The manifest failed validation; ``problems`` holds ``(field path, message, bad value)`` tuples."""

    def __init__(self, problems: list[tuple[str, str, object]]):
        self.problems = problems
        lines = [f"{path}: {msg} (got {value!r})" for path, msg, value in problems]
        super().__init__("invalid manifest:\n  " + "\n  ".join(lines))


class SkycutWarning(UserWarning):
    """Base class of skycut's warnings."""


class InputWarning(SkycutWarning):
    """An input was ignored or adjusted (extra colour channels, duplicate FFIs, ...)."""


class DataWarning(SkycutWarning):
    """Data were skipped: a target missing one of several images, an empty cutout, ..."""


class TypeWarning(SkycutWarning):
    """An argument of an unexpected but convertible type was converted."""


class ModuleWarning(SkycutWarning):
    """An optional module is missing, so an optional output part was left out."""
