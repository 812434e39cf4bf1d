"""The JSON index a batch job writes: what it made, what it skipped and why, and what failed.

An index is ``{"products": {item: [files...]}, "skipped": {item: reason}}`` plus job-specific keys (a cube
cutout's ``cube``). It is built from a :class:`skycut.core.batch.BatchResult`, so reasons come from the batch
entry points themselves, never from parsing warning text. A job whose batch has failed items writes no index
(a job's output must mean "done") and raises :class:`BatchFailedError` listing every failed item with its
error, so the workflow marks the job failed (and retries it where the profile says so); the job's log holds
each failure and the traceback.
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
        What the batch wrote (``products``) and skipped (``skipped``, with reasons); must have no failed item.
    **extra
        Further top-level keys (JSON-serialisable).

    Returns
    -------
    dict
        The index as written (paths as strings).
    """
    if not result.ok:
        raise ValueError(f"{path}: a batch with failed items gets no index ({sorted(result.failed)})")
    index: dict[str, Any] = {
        "products": {name: [str(p) for p in paths] for name, paths in result.written.items()},
        "skipped": dict(result.skipped),
        **extra,
    }
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return index


def finish(path: str | Path, result: BatchResult, **extra: Any) -> dict[str, Any]:
    """Write the index of a batch job (:func:`write_index`), or raise :class:`BatchFailedError` if items failed.

    When items failed, the good items' products stay on disk and :func:`failures_path` (beside the index, not
    a declared output, so Snakemake keeps it when it marks the job failed) records ``products``, ``skipped`` and
    ``failed`` (item -> error) before the error is raised; a later successful run removes that record.

    Returns
    -------
    dict
        The index, when no item failed.
    """
    log.info("%d made, %d skipped, %d failed", len(result.written), len(result.skipped), len(result.failed))
    record = failures_path(path)
    if not result.ok:
        listing = "; ".join(f"{name}: {error}" for name, error in sorted(result.failed.items()))
        failures = {"products": {name: [str(p) for p in paths] for name, paths in result.written.items()},
                    "skipped": dict(result.skipped), "failed": dict(result.failed)}
        with atomic_output(record) as tmp:
            Path(tmp).write_text(json.dumps(failures, indent=2, sort_keys=True) + "\n")
        raise BatchFailedError(f"{len(result.failed)} item(s) failed, so no index {path} (what was made and what "
                               f"failed: {record}): {listing}")
    record.unlink(missing_ok=True)
    return write_index(path, result, **extra)


def failures_path(index_path: str | Path) -> Path:
    """The record of a failed batch job beside its index: ``{index stem}.failures.json``."""
    index_path = Path(index_path)
    return index_path.with_name(f"{index_path.stem}.failures.json")


def read_index(path: str | Path) -> dict[str, Any]:
    """Read a job's JSON index (as written: no ``failed`` key when nothing failed)."""
    return json.loads(Path(path).read_text())


def merge_products(paths: list[str]) -> dict[str, list[str]]:
    """The ``products`` of several index files merged into one ``{item: [files...]}`` mapping."""
    merged: dict[str, list[str]] = {}
    for path in paths:
        merged.update(read_index(path)["products"])
    return merged
