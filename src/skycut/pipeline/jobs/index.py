"""The JSON index a batch job writes: what it made, what it skipped and why, and what failed.

An index is ``{"products": {item: [files...]}, "skipped": {item: reason}}`` plus job-specific keys (a cube
cutout's ``cube``), and ``"failed": {item: error}`` when an item failed. It is built from a
:class:`skycut.core.batch.BatchResult`, so reasons come from the batch entry points themselves, never from
parsing warning text. A job whose batch has failed items writes its index, then raises
:class:`BatchFailedError` so the workflow marks the job failed (the log lists every failure).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ...core.atomic import atomic_output
from ...core.batch import BatchResult
from ...exceptions import SkycutError

log = logging.getLogger(__name__)


class BatchFailedError(SkycutError):
    """Some items of a batch failed (the others were made and are in the job's index)."""


def write_index(path: str | Path, result: BatchResult, **extra: Any) -> dict[str, Any]:
    """Write a job's JSON index atomically and return it.

    Parameters
    ----------
    path : str or path-like
        The index file.
    result : BatchResult
        What the batch wrote (``products``), skipped (``skipped``, with reasons) and failed (``failed``, only
        written when not empty).
    **extra
        Further top-level keys (JSON-serialisable).

    Returns
    -------
    dict
        The index as written (paths as strings).
    """
    index: dict[str, Any] = {
        "products": {name: [str(p) for p in paths] for name, paths in result.written.items()},
        "skipped": dict(result.skipped),
        **extra,
    }
    if result.failed:
        index["failed"] = dict(result.failed)
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return index


def finish(path: str | Path, result: BatchResult, **extra: Any) -> dict[str, Any]:
    """Write the index of a batch job (:func:`write_index`); raise :class:`BatchFailedError` if items failed.

    Returns
    -------
    dict
        The index, when no item failed.
    """
    index = write_index(path, result, **extra)
    log.info("%d made, %d skipped, %d failed -> %s", len(result.written), len(result.skipped),
             len(result.failed), path)
    if not result.ok:
        listing = "; ".join(f"{name}: {error}" for name, error in sorted(result.failed.items()))
        raise BatchFailedError(f"{len(result.failed)} item(s) failed ({listing}); index {path}")
    return index


def read_index(path: str | Path) -> dict[str, Any]:
    """Read a job's JSON index (as written: no ``failed`` key when nothing failed)."""
    return json.loads(Path(path).read_text())


def merge_products(paths: list[str]) -> dict[str, list[str]]:
    """The ``products`` of several index files merged into one ``{item: [files...]}`` mapping."""
    merged: dict[str, list[str]] = {}
    for path in paths:
        merged.update(read_index(path)["products"])
    return merged
