"""Manifest values as the library's arguments (shared by the plan and the jobs)."""

from __future__ import annotations

import math
from typing import Any

from .sections import FsspecOptions


def fsspec_kwargs(options: FsspecOptions | None) -> dict[str, Any] | None:
    """Return manifest fsspec options as keyword arguments for the library (``None`` when nothing is set)."""
    if options is None:
        return None
    out = {k: v for k, v in options.model_dump().items() if v is not None}
    return out or None


def fill(value: float | None) -> float:
    """Return a manifest fill/null value as the library takes it (``None`` = NaN)."""
    return math.nan if value is None else value
