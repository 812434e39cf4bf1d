"""Many named targets from one cube, each TPF written where the caller says: the workflow's batch entry point.

:func:`cut_cube_targets` opens the cube once (its table and WCS read once), reads the targets' blocks in waves
of bounded size (for a remote cube every row request of a wave in flight at once, see
:meth:`skycut.tess.cube_reader.CubeReader.iter_blocks`; a local cube's blocks are views of its memory map),
formats each cutout's TPF headers, and hands the TPF to a :class:`TpfWriter`, which writes it on a background
thread while the next are formatted: the pixel table is filled from the block and written chunk by chunk, and
with the compiled accelerator the whole file is made in one call that holds no GIL
(:func:`skycut.tess.tpf_table.write_table_file`), so the writers never wait for the reading thread's Python work.
Writing a TPF is the costliest step of a batch (the kernel copying 7 MB into the page cache for 15 x 15 pixels and
1,500 cadences), so two writers keep both cores of the benchmark machine busy. At most :data:`PENDING_WRITES` TPFs wait for their
write, so memory stays bounded; the outcomes are recorded in the order the cutouts were made, so the result is the
same as one by one.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..core.batch import BatchResult
from ..core.coords import parse_size, radec_arrays
from ..core.geometry import check_fill_value, check_rounding_method
from ..exceptions import InvalidInputError
from .cube_session import CubeCutoutInstance, _CubeSession, _where

log = logging.getLogger(__name__)

#: Most serialised TPFs waiting to be written (each in its own reused pixel-table buffer of the cube).
PENDING_WRITES = 3
#: Threads writing TPFs. Two rather than one: a write into page-cache memory the VM must first get back from the
#: host takes two to three times as long as one into warm memory, and a second writer keeps the reading thread
#: busy meanwhile (deep benchmark, 8 runs each: 5.0-6.4 ms per target with two writers, 4.7-8.3 with one).
WRITERS = 2


class TpfWriter:
    """Write the TPFs of finished cutouts: serialised by the caller, written on background threads.

    Parameters
    ----------
    result : BatchResult
        Where each outcome goes: ``written`` with the path, or ``failed`` with the error (``OSError`` or
        ``ValueError`` from serialising or writing); any other exception propagates from :meth:`submit` or
        :meth:`close`.
    background : bool
        Write on :data:`WRITERS` worker threads (overlapping the caller's reads); ``False`` writes in
        :meth:`submit`.
    pending : int, optional
        Most TPFs serialised and not yet written (:meth:`submit` waits for the oldest beyond that; default
        :data:`PENDING_WRITES`).

    Each TPF's pixel table is written through one of ``pending + 1`` chunk buffers of the cube (reused in turn,
    numbers 1 and up: number 0 is :meth:`CubeCutoutInstance.write_tpf`'s), so a buffer is refilled only after its
    write has finished; the cutout's block must stay unchanged until then (:attr:`blocks`). Outcomes are recorded
    in submission order. Use as a context manager: leaving it waits for every write.
    """

    def __init__(self, result: BatchResult, *, background: bool = True, pending: int | None = None):
        self.result = result
        self.pending = max(1, int(PENDING_WRITES if pending is None else pending))
        self._pool = ThreadPoolExecutor(WRITERS, thread_name_prefix="skycut-tpf") if background else None
        self._queue: collections.deque[tuple[str, Future]] = collections.deque()
        self._count = 0

    def submit(self, name: str, cutout: CubeCutoutInstance, path: str | os.PathLike) -> None:
        """Format ``cutout``'s TPF headers; write it to ``path`` on a writer thread; record the outcome as ``name``."""
        if self._pool is None:
            self._record(name, lambda: cutout.write_tpf(path))
            return
        while len(self._queue) >= self.pending:
            self._finish_oldest()
        slot = 1 + self._count % (self.pending + 1)
        self._count += 1
        try:
            pending = cutout.tpf_parts(scratch=slot, deferred=True)
        except ValueError as exc:
            self.result.fail(name, exc)
            return
        self._queue.append((name, self._pool.submit(pending.write, path)))

    @property
    def blocks(self) -> int:
        """How many cutout blocks may be in use at once: the caller's and those of the pending writes."""
        return self.pending + 1 if self._pool is not None else 1

    def _finish_oldest(self) -> None:
        name, future = self._queue.popleft()
        self._record(name, future.result)

    def _record(self, name: str, outcome: Any) -> None:
        try:
            self.result.add(name, [outcome()])
        except (OSError, ValueError) as exc:
            self.result.fail(name, exc)

    def close(self) -> None:
        """Wait for every submitted write and record its outcome."""
        try:
            while self._queue:
                self._finish_oldest()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> TpfWriter:
        """Return the writer."""
        return self

    def __exit__(self, exc_type, *exc) -> None:
        """Wait for the writes (all of them when leaving normally; the running one when leaving on an error)."""
        if exc_type is None:
            self.close()
            return
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


#: Most cube pixel bytes :func:`cut_cube_targets` holds at once (one wave of targets read together).
MAX_BATCH_BYTES = 512 * 1024 * 1024


def _waves(items: list[int], nbytes: list[int], chunk: int | None, max_bytes: int) -> Iterator[list[int]]:
    """Consecutive runs of ``items`` holding at most ``chunk`` items and ``max_bytes`` bytes (at least one item)."""
    wave: list[int] = []
    total = 0
    for item, size in zip(items, nbytes, strict=True):
        if wave and (total + size > max_bytes or (chunk and len(wave) >= chunk)):
            yield wave
            wave, total = [], 0
        wave.append(item)
        total += size
    if wave:
        yield wave


def cut_cube_targets(
    cube_file,
    targets: Mapping[str, Any] | Iterable[tuple[str, Any]],
    cutout_size=25,
    *,
    output_paths: Mapping[str, str | os.PathLike] | None = None,
    output_dir: str | os.PathLike = ".",
    fill_value: float = np.nan,
    limit_rounding_method: str = "round",
    threads: int | str = 1,
    fsspec_kwargs: dict | None = None,
    legacy_filenames: bool = False,
    chunk: int | None = None,
    max_batch_bytes: int = MAX_BATCH_BYTES,
    object_names: Mapping[str, str] | None = None,
    tic_ids: Mapping[str, int] | None = None,
) -> BatchResult:
    """Cut many named targets from one cube, writing each TPF; the workflow's batch entry point.

    The cube is opened once and its table and WCS read once. Targets are read in waves of at most
    ``max_batch_bytes`` of cube pixels (and ``chunk`` targets, if given), so memory stays bounded; for a remote
    cube every row request of a wave is in flight at once (up to ``threads``, or the connection pool with
    ``"auto"``) and each TPF is written as soon as its own rows have arrived, on background threads while the
    next blocks are read (:class:`TpfWriter`). One bad target (or one that cannot be read) never stops the batch.

    Parameters
    ----------
    cube_file : str or path-like
        Local path, ``s3://`` URI or ``https://`` URL of one cube.
    targets : mapping ``name -> coordinate`` or iterable of ``(name, coordinate)``
        One position per target, in any form :func:`skycut.core.coords.radec_arrays` accepts (``"ra dec"``
        decimal strings and ``(ra, dec)`` numbers need no astropy).
    cutout_size : int, [nx, ny], str, Quantity or CutoutSize
        The same for every target (:func:`skycut.core.coords.parse_size`; ``nx`` columns, ``ny`` rows).
    output_paths : mapping ``name -> path``, optional
        Where each TPF goes; names missing here get astrocut's file name in ``output_dir``.
    object_names : mapping ``name -> str``, optional
        The ``OBJECT`` card of each target's TPF (ASCII); names missing here get astrocut's empty ``OBJECT``.
    tic_ids : mapping ``name -> int``, optional
        The ``TICID`` card of each target's TPF; names missing here get astrocut's undefined ``TICID``.
    chunk : int, optional
        Most targets read together (default: no limit but ``max_batch_bytes``).
    max_batch_bytes : int
        Most cube pixel bytes read together (default :data:`MAX_BATCH_BYTES`); a target larger than this is read
        alone.

    Returns
    -------
    BatchResult
        ``written``: name -> ``[path]`` of its TPF; ``skipped``: name -> reason, for a target entirely off the
        CCD; ``failed``: name -> error, for a target whose coordinates cannot be read or whose TPF cannot be
        made, written or read (a remote cube's rows failing for good).

    Raises
    ------
    InvalidInputError
        For a bad ``cutout_size``, ``fill_value`` or ``limit_rounding_method``, or repeated target names.
    InvalidQueryError, OSError
        When the cube itself cannot be opened or read (nothing can be cut from it).
    """
    items = list(targets.items()) if isinstance(targets, Mapping) else list(targets)
    names = [str(n) for n, _ in items]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"target names must be unique in one batch for cube {cube_file!r}")
    size = parse_size(cutout_size)
    result = BatchResult()
    good: list[int] = []
    ra = np.full(len(items), np.nan)
    dec = np.full(len(items), np.nan)
    for i, (_, coordinate) in enumerate(items):
        try:
            r, d = radec_arrays(coordinate)
            if len(r) != 1:
                raise InvalidInputError(f"target {names[i]!r} has {len(r)} positions; give one")
        except InvalidInputError as exc:
            result.fail(names[i], exc)
            continue
        ra[i], dec[i] = r[0], d[0]
        good.append(i)
    output_paths = dict(output_paths or {})
    object_names = dict(object_names or {})
    tic_ids = dict(tic_ids or {})
    session = _CubeSession(
        cube_file,
        fill_value=check_fill_value(fill_value),
        rounding=check_rounding_method(limit_rounding_method),
        threads=threads,
        fsspec_kwargs=fsspec_kwargs,
    )
    try:
        if not good:
            return result
        shape_xy = session.size_pixels(size)
        located = dict(zip(good, session.locate(ra[good], dec[good], shape_xy), strict=True))
        todo = []
        for i in good:
            if located[i] is None:
                result.skip(
                    names[i],
                    f"target {names[i]!r} {_where(ra[i], dec[i])} is not on cube "
                    f"{session.name!r} (cutout entirely off the CCD)",
                )
            else:
                todo.append(i)
        waves = _waves(todo, [session.block_nbytes(located[i]) for i in todo], chunk, max_batch_bytes)
        with TpfWriter(result, background=len(todo) > 1) as writer:
            for part in waves:
                # each cutout's TPF is serialised (its pixels copied into a table buffer) before the next is
                # read, so a local cube's pixels need not be copied out of the memory map first
                cutouts = session.iter_cut(
                    ra[part],
                    dec[part],
                    [located[i] for i in part],
                    [names[i] for i in part],
                    copy=False,
                    buffers=writer.blocks,
                )
                for k, cutout in cutouts:
                    i = part[k]
                    if isinstance(cutout, InvalidInputError):
                        result.fail(names[i], cutout)
                        continue
                    cutout.object_name = object_names.get(names[i], "")
                    cutout.ticid = tic_ids.get(names[i])
                    try:
                        path = output_paths.get(names[i]) or Path(output_dir) / cutout.filename(
                            size, legacy_filenames
                        )
                    except (OSError, ValueError) as exc:
                        result.fail(names[i], exc)
                        continue
                    writer.submit(names[i], cutout, path)
    finally:
        session.close()
    return result


__all__ = ["cut_cube_targets", "TpfWriter", "MAX_BATCH_BYTES", "PENDING_WRITES", "WRITERS"]
