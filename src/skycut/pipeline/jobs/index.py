"""The JSON index a batch job writes: what it made, what it skipped and why, and what failed.

An index is ``{"products": {item: [files...]}, "skipped": {item: reason}}`` plus job-specific keys (a cube
cutout's ``cube``). It is built from a :class:`skycut.core.batch.BatchResult`, so reasons come from the batch
entry points themselves, never from parsing warning text. A job whose batch has failed items writes no index
(a job's output must mean "done") and raises :class:`BatchFailedError` listing every failed item with its
error, so the workflow marks the job failed (and retries it where the profile says so); the job's log holds
each failure and the traceback.

Every index also tracks its products: ``"files"`` gives each product file's size and SHA-256, and
``"provenance"`` the skycut version and, per item, the hash of the manifest entries that made it
(:func:`skycut.core.provenance.entry_hash`), which every product records too when the job runs inside
:func:`provenance` (the workflow's scripts do). Beside the index, a hidden ``.{index}.stat`` file caches each
product's ``stat`` (size, mtime, ctime, inode) so that :func:`damaged_products` hashes a product again only when
its ``stat`` changed (a write, even one that restores the mtime, changes the ctime).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from ... import __version__
from ...core.atomic import atomic_output
from ...core.batch import BatchResult
from ...core.provenance import file_sha256
from ...core.stamps import stamp_product
from ...exceptions import SkycutError

log = logging.getLogger(__name__)


class BatchFailedError(SkycutError):
    """Some items of a batch failed (the others were made and are in the job's index)."""


#: The manifest hashes of the job running in this context (:func:`provenance`): item -> hash.
_HASHES: ContextVar[dict[str, str] | None] = ContextVar("skycut_manifest_hashes", default=None)


@contextmanager
def provenance(hashes: Mapping[str, str] | None, stamp: Sequence[str | os.PathLike] = ()) -> Iterator[None]:
    """Stamp what a job makes with the skycut version and the manifest hashes of its items.

    Inside, :func:`write_index` stamps every product of an item with ``hashes[item]``
    (:func:`skycut.core.stamps.stamp_product`) and records the hashes in the index; on a successful exit,
    the files ``stamp`` (products that are a rule's declared output, such as a cube or a moving target's TPF)
    are stamped with ``hashes[""]``.

    Parameters
    ----------
    hashes : mapping or None
        Item (target name, or ``""`` for a product of no single target) -> hash (:meth:`Plan.provenance
        <skycut.pipeline.plan.Plan.provenance>`). None stamps nothing.
    stamp : sequence of path-like
        Declared outputs to stamp when the block succeeds.
    """
    token = _HASHES.set(dict(hashes) if hashes is not None else None)
    try:
        yield
    finally:
        _HASHES.reset(token)
    if hashes is not None:
        for path in stamp:
            stamp_product(path, hashes[""])


def stat_cache_path(index_path: str | Path) -> Path:
    """Return the hidden file beside an index that caches its products' ``stat`` (``.{index name}.stat``)."""
    index_path = Path(index_path)
    return index_path.with_name(f".{index_path.name}.stat")


def _stat_key(path: str | Path) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def damaged_products(index_path: str | Path) -> dict[str, str]:
    """Find the products of an index that are missing or no longer what the job wrote, with what is wrong.

    A product is intact when its size is the recorded one and either its ``stat`` is the one cached when the
    index was written (:func:`stat_cache_path`) or its SHA-256 is the recorded one. An index without ``"files"``
    (written before products were tracked) has nothing to check.

    Parameters
    ----------
    index_path : str or path-like
        An existing index.

    Returns
    -------
    dict
        Product path -> ``"missing"``, ``"size changed"`` or ``"content changed"`` (empty when all are intact).
    """
    files = read_index(index_path).get("files", {})
    try:
        cached = json.loads(stat_cache_path(index_path).read_text())
    except (OSError, ValueError):
        cached = {}
    damaged = {}
    for path, record in files.items():
        try:
            key = _stat_key(path)
        except FileNotFoundError:
            damaged[path] = "missing"
            continue
        if key[0] != record["size"]:
            damaged[path] = "size changed"
        elif cached.get(path) != key and file_sha256(path) != record["sha256"]:
            damaged[path] = "content changed"
    return damaged


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
        The index as written (paths as strings): ``products`` (item -> files), ``skipped`` (item -> reason),
        ``files`` (file -> ``{"size", "sha256"}``), ``provenance`` (``skycut_version`` and, inside
        :func:`provenance`, ``manifest_hashes``: item -> hash) and ``extra``. Inside :func:`provenance`, every
        product is stamped first, so the sizes and hashes are those of the stamped files.
    """
    if not result.ok:
        raise ValueError(f"{path}: a batch with failed items gets no index ({sorted(result.failed)})")
    products = {name: [str(p) for p in paths] for name, paths in result.written.items()}
    hashes = _HASHES.get()
    record: dict[str, Any] = {"skycut_version": __version__}
    if hashes is not None:
        for name, files in products.items():
            for file in files:
                stamp_product(file, hashes[name])
        items = sorted(set(products) | set(result.skipped))
        record["manifest_hashes"] = {name: hashes[name] for name in items if name in hashes}
    files = sorted({file for paths in products.values() for file in paths})
    index: dict[str, Any] = {
        "products": products,
        "skipped": dict(result.skipped),
        "files": {file: {"size": os.path.getsize(file), "sha256": file_sha256(file)} for file in files},
        "provenance": record,
        **extra,
    }
    with atomic_output(stat_cache_path(path)) as tmp:
        Path(tmp).write_text(json.dumps({file: _stat_key(file) for file in files}) + "\n")
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
        failures = {
            "products": {name: [str(p) for p in paths] for name, paths in result.written.items()},
            "skipped": dict(result.skipped),
            "failed": dict(result.failed),
        }
        with atomic_output(record) as tmp:
            Path(tmp).write_text(json.dumps(failures, indent=2, sort_keys=True) + "\n")
        raise BatchFailedError(
            f"{len(result.failed)} item(s) failed, so no index {path} (what was made and what "
            f"failed: {record}): {listing}"
        )
    record.unlink(missing_ok=True)
    return write_index(path, result, **extra)


def failures_path(index_path: str | Path) -> Path:
    """Return the record of a failed batch job beside its index: ``{index stem}.failures.json``."""
    index_path = Path(index_path)
    return index_path.with_name(f"{index_path.stem}.failures.json")


def read_index(path: str | Path) -> dict[str, Any]:
    """Read a job's JSON index (as written: no ``failed`` key when nothing failed)."""
    return json.loads(Path(path).read_text())


def merge_products(paths: list[str]) -> dict[str, list[str]]:
    """Merge the ``products`` of several index files into one ``{item: [files...]}`` mapping."""
    merged: dict[str, list[str]] = {}
    for path in paths:
        merged.update(read_index(path)["products"])
    return merged
