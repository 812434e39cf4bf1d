"""What a batch operation made, skipped and failed, item by item: one record shared by every batch entry point.

A survey's batch (many targets against one cube or one input set) must never lose the good items because of a
bad one, and must say why each item was not made without anyone parsing warning text:

* ``written``: item name -> the files written for it (already renamed into place);
* ``skipped``: item name -> why nothing was made, where that is an expected outcome (the target is outside every
  image, entirely off the CCD, not covered by any cube);
* ``failed``: item name -> the error, where something went wrong (an unreadable or truncated file, a server
  error, an impossible request); the batch goes on with the other items, and the caller decides the exit status.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """Per-item outcome of a batch; see the module docstring."""

    written: dict[str, list[Path]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, paths: list[Path] | list[str]) -> None:
        """Record files written for ``name`` (appended to any already recorded)."""
        self.written.setdefault(name, []).extend(Path(p) for p in paths)

    def skip(self, name: str, reason: str) -> None:
        """Record that ``name`` was skipped, and why (logged as a warning)."""
        log.warning("%s skipped: %s", name, reason)
        self.skipped[name] = reason

    def fail(self, name: str, error: BaseException | str) -> None:
        """Record that ``name`` failed with ``error`` (logged as an error); the batch goes on."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        log.error("%s failed: %s", name, text)
        self.failed[name] = text

    def merge(self, other: BatchResult) -> BatchResult:
        """Add ``other``'s records to this one (in place) and return this one."""
        for name, paths in other.written.items():
            self.add(name, paths)
        self.skipped.update(other.skipped)
        self.failed.update(other.failed)
        return self

    @property
    def ok(self) -> bool:
        """True when no item failed (skips are expected outcomes, not failures)."""
        return not self.failed
