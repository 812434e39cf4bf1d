"""TESS FFI cubes: :class:`CubeFactory` (``make_cube``, ``update_cube``), interchangeable with astrocut's cubes.

Cube file layout (astrocut/MAST compatible):

* HDU 0: the primary header of the earliest FFI (by ext-1 ``TSTART``) without ``CHECKSUM``/``DATASUM``, with
  ``ORIGIN``, ``DATE``, ``CAMERA``/``CCD`` (ext 1 of the earliest FFI), ``SECTOR``, ``DATE-END``/``TSTOP`` (ext 1
  of the last FFI), ``EXTNAME = 'PRIMARY'``.
* HDU 1: a 4-D big-endian float32 image, numpy shape ``(rows, columns, n_ffi, 2)``; ``[r, c, i, 0]`` is the
  calibrated flux of pixel (row ``r``, column ``c``) in the ``i``-th FFI in time order, ``[r, c, i, 1]`` its
  uncertainty. For one pixel the whole time series is contiguous, which is what cutouts read.
* HDU 2: one row per FFI (row ``i`` = plane ``i``), see :mod:`skycut.tess.cube_table`.

How a cube is written: the headers, then blocks of image rows ``r0:r1``, then the table appended after the
padded data (encoded while the last block is written). Nothing is rewritten. A block is assembled in memory in
the cube layout slab by slab: a slab is a few rows (about 4 MiB of cube), for which the rows of every FFI are
read into a small stage and copied into the block, so the transposition works in the CPU cache. Each finished
block goes out with one positioned write by a writer thread while the next one is assembled, followed by
``posix_fadvise(DONTNEED)`` to start its write-back at once (the disk works during the build, not only in the
final ``fsync``, and the cube does not crowd the page cache). Everything goes to a temporary name in the
cube's directory (flock-ed while in use) that is renamed to the final name after an ``fsync``; a killed build
leaves nothing at the final name, and the next build removes the stale temporary files.

FFIs without data: an FFI whose science image (ext 1) has no finite pixel (all NaN/inf) is kept in the cube,
named in a warning, and its cadence flagged with bit ``NONFINITE_FFI_BIT`` = 65536 of ``DQUALITY`` in the table
(hence of ``QUALITY`` in the TPFs cut from the cube; see :mod:`skycut.tess.cube_table`). The check costs no extra
read: each FFI's rows are tested with ``isfinite`` as they pass through the transposition, and only until a
finite value is found (for a normal FFI, within its first slab). The table is built after the last block is
assembled, while that block is written. Cubes of normal FFIs are byte-identical to unchecked builds. Planes
copied from an old cube by ``update_cube`` are not re-checked (their ``DQUALITY`` is kept).

Memory: ``max_memory`` (GB) bounds the buffers (two blocks in flight, the slab stage, a block's share of an
old cube for ``update_cube``, one whole FFI when inputs must be read whole) to 85 % of ``max_memory``; the interpreter, astropy and the headers need well under
300 MB more. Blocks are small (``MAX_BLOCK_BYTES`` = 16 MiB, or one image row if that is bigger) even when
memory is plentiful: reading, assembling and writing then overlap finely, a block is often still in the CPU
cache when it is written, and the process stays small; larger blocks measured no faster.

Read strategy (``CubeFactory(strategy=...)``, default ``"auto"``):

* ``"direct"`` — ``pread`` rows ``r0:r1`` of ext 1 and ext 2 of each FFI for each block. Only for local,
  uncompressed, unscaled FFIs; ``auto`` always picks it for such inputs, however many blocks.
* ``"scratch"`` — each FFI is read once (whole, through astropy, for remote URLs and tile-compressed HDUs;
  block by block for local plain files), copied to an h5py scratch file beside the cube (chunks of one FFI x
  one slab), and blocks are read back from it. ``auto`` picks it for inputs that cannot be read by row range
  when the cube needs more than one block: each remote FFI is then fetched once instead of once per block,
  each compressed tile decompressed once.
* ``"whole"`` (auto only) — inputs that must be read whole, for a cube that fits in ``max_memory`` at once:
  one block (not capped at ``MAX_BLOCK_BYTES``) assembled straight from whole-image reads, no scratch file.

Measured (``python -m benchmarks cube``, 40 full-size simulated FFIs = 1.42 GB cube, page-cached local inputs,
2 shared cores): skycut 0.98 s / 125 MB peak RSS, astrocut 1.4 9.7 s / 2857 MB, disk limit 0.92 s (copy of the
inputs into one file of the cube's size + fsync); ``max_memory=0.3``: 1.11 s / 125 MB (astrocut 7.0 s /
2858 MB); 200 FFIs (7.1 GB) with ``max_memory=1``: 9.5 s / 125 MB (disk limit 15.0 s). Direct reads beat the
scratch file at every block count tried: 1.04 s vs 6.8 s with ``max_memory=0.3`` and 1.45 s vs 14.0 s with
``max_memory=0.005`` (3-row blocks, ~700 of them), because scratch writes and re-reads the whole cube once
more; ``strategy="scratch"`` stays available for local disks where many small reads are slow (spinning disks,
network file systems).
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import atomic_output, remove_stale_temporaries, writer_tag
from ..core.fits_bytes import BLOCK
from ..core.provenance import creation_date
from ..exceptions import InvalidInputError
from . import cube_table
from .cube_io import (
    ALIGN,
    BlockWriter,
    FFIInfo,
    ScratchStore,
    aligned_view,
    lock_file,
    pread_into,
    pwrite_all,
    read_row_pair,
    read_whole,
    scan_ffi,
)

log = logging.getLogger(__name__)

MEMORY_FRACTION = 0.85
MAX_BLOCK_BYTES = 16 * 2**20
STRATEGIES = ("auto", "direct", "scratch")


class _DefaultGB(float):
    """The default ``max_memory`` of the methods: means "use the value given to the constructor"."""

    def __repr__(self) -> str:
        return "50"


DEFAULT_MAX_MEMORY = _DefaultGB(50)


@dataclass(frozen=True)
class OldCube:
    """An existing cube being updated: its data offset, numpy shape and on-disk dtype."""

    path: str
    offset: int
    shape: tuple[int, int, int, int]
    dtype: str


def plan_block_rows(
    shape: tuple[int, int],
    n_ffi: int,
    max_memory: float,
    n_old: int = 0,
    whole_ffi: bool = False,
    small: bool = True,
) -> int:
    """Return the number of image rows per block for a cube of ``n_ffi`` planes of numpy ``shape``.

    ``shape`` is ``(rows, columns)``.

    Parameters
    ----------
    max_memory : float
        GB for the whole process; buffers get ``MEMORY_FRACTION`` of it.
    n_old : int
        Planes of an existing cube read alongside (``update_cube``).
    whole_ffi : bool
        Inputs are read whole (scratch staging), so one whole FFI must fit besides the blocks.
    small : bool
        Cap blocks at ``MAX_BLOCK_BYTES`` (else: as large as memory allows, to fit the cube in one block).

    Raises
    ------
    InvalidInputError
        ``max_memory`` cannot hold even one row of the cube.
    """
    rows, cols = shape
    row_bytes = cols * n_ffi * 8
    per_row = 2 * row_bytes + cols * n_old * 8 + cols * 2 * 8  # two blocks, old-cube rows, a read buffer
    staging = 2 * rows * cols * 8 if whole_ffi else 0
    budget = max_memory * 1e9 * MEMORY_FRACTION - staging
    slab = slab_rows(cols, n_ffi, rows)  # the slab stage holds this many cube rows
    by_memory = int((budget - slab * row_bytes) // per_row)
    if by_memory < slab:  # little memory: blocks so small that the stage is one block
        by_memory = int(budget // (per_row + row_bytes))
    if by_memory < 1:
        raise InvalidInputError(
            f"max_memory={max_memory} GB is too small for a cube of {n_ffi} FFIs of {rows}x{cols} pixels: "
            f"give at least {(per_row + row_bytes + staging) / MEMORY_FRACTION / 1e9:.6f} GB"
        )
    cap = MAX_BLOCK_BYTES // row_bytes if small else rows
    return int(max(1, min(by_memory, cap, rows)))


def slab_rows(cols: int, n_ffi: int, block_rows: int, target: int = 4 * 2**20) -> int:
    """Rows per cache-sized slab: the cube bytes of ``slab`` rows (``cols * n_ffi * 8`` each) about ``target``."""
    return int(max(1, min(block_rows, target // (cols * n_ffi * 8))))


def choose_strategy(infos: list[FFIInfo], n_blocks: int, block_rows: int, requested: str = "auto") -> str:
    """``"direct"``, ``"scratch"`` or ``"whole"`` (one block assembled from whole-image reads); see module doc."""
    all_direct = all(info.direct for info in infos)
    if requested == "direct":
        if not all_direct:
            bad = [info.path for info in infos if not info.direct][:5]
            raise InvalidInputError(f"strategy='direct' needs local uncompressed FFIs; cannot row-read {bad}")
        return "direct"
    if requested == "scratch":
        return "scratch"
    if not all_direct:
        return "whole" if n_blocks == 1 else "scratch"
    return "direct"


def check_inputs(infos: list[FFIInfo], sector: int | None = None) -> None:
    """Refuse mixed sectors/cameras/CCDs, duplicates (same file name or same TSTART) and differing shapes."""
    groups: dict[tuple, list[str]] = {}
    for info in infos:
        groups.setdefault((info.sector, info.camera, info.ccd), []).append(info.name)
    if len(groups) > 1:
        lines = [
            f"sector {s} camera {c} ccd {d}: {len(names)} file(s), e.g. {', '.join(names[:3])}"
            for (s, c, d), names in sorted(groups.items(), key=str)
        ]
        raise InvalidInputError(
            "a cube holds FFIs of one sector, camera and CCD; file_list mixes:\n  " + "\n  ".join(lines)
        )
    file_sector = next(iter(groups))[0] if groups else None
    if sector is not None and file_sector is not None and int(sector) != int(file_sector):
        raise InvalidInputError(f"sector={sector} but the FFIs in file_list are from sector {file_sector}")
    seen: dict[str, str] = {}
    dups = []
    for info in infos:
        if info.name in seen:
            dups.append(f"{info.path} (same name as {seen[info.name]})")
        seen.setdefault(info.name, info.path)
    times: dict[float, str] = {}
    for info in infos:
        if info.tstart in times and info.name != times[info.tstart]:
            dups.append(f"{info.path} (same TSTART {info.tstart} as {times[info.tstart]})")
        times.setdefault(info.tstart, info.name)
    if dups:
        raise InvalidInputError("duplicate FFIs in file_list:\n  " + "\n  ".join(dups))
    shapes = {info.shape for info in infos}
    if len(shapes) > 1:
        odd = [f"{info.name}: {info.shape}" for info in infos if info.shape != infos[0].shape][:5]
        raise InvalidInputError(f"FFIs differ in shape (first is {infos[0].shape}): {odd}")


class _Progress:
    """Log lines: FFIs/rows done, MB written, MB/s, time left (at most every ``every`` seconds)."""

    def __init__(self, total_bytes: int, rows: int, level: int, every: float = 2.0):
        self.total, self.rows, self.level, self.every = total_bytes, rows, level, every
        self.t0 = self.last = time.perf_counter()
        self.done = 0

    def note(self, text: str) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            log.log(self.level, "cube: %s, %s", text, self._rate(now))

    def _rate(self, now: float) -> str:
        rate = self.done / max(now - self.t0, 1e-9)
        left = (self.total - self.done) / rate if rate else float("nan")
        return f"{self.done / 1e6:.0f}/{self.total / 1e6:.0f} MB written, {rate / 1e6:.0f} MB/s, {left:.1f} s left"

    def wrote(self, nbytes: int, block: int, n_blocks: int) -> None:
        self.done += nbytes
        now = time.perf_counter()
        if now - self.last < self.every and block != n_blocks:
            return
        self.last = now
        log.log(self.level, "cube: block %d/%d written, %s", block, n_blocks, self._rate(now))


def _scan_all(paths: list[str], fsspec_kwargs: dict | None, level: int) -> list[FFIInfo]:
    """Scan every FFI (logging progress every few seconds) and sort by ``TSTART`` (then name)."""
    infos = []
    t0 = last = time.perf_counter()
    for k, path in enumerate(paths, start=1):
        infos.append(scan_ffi(path, fsspec_kwargs))
        now = time.perf_counter()
        if now - last >= 2.0:
            last = now
            log.log(
                level,
                "cube: scanned %d/%d FFIs, %.1f s left",
                k,
                len(paths),
                (now - t0) / k * (len(paths) - k),
            )
    return sorted(infos, key=lambda i: (i.tstart, i.name))


class CubeFactory:
    """Build TESS FFI cubes (see module doc for the file layout, memory bound and read strategies).

    Parameters
    ----------
    max_memory : float
        GB for the whole process (default 50), used by ``make_cube``/``update_cube`` unless they are given
        ``max_memory`` explicitly. (astrocut ignores the constructor value; skycut honours it.)
    strategy : {"auto", "direct", "scratch"}
        How FFI rows are read when the cube is built in blocks (keyword only, skycut extension).
    scratch_dir : path, optional
        Where the h5py scratch file goes (default: the cube's directory).
    fsspec_kwargs : dict, optional
        fsspec options for remote FFIs (``s3://``, ``https://``); default: anonymous access to S3.
    direct_io : bool
        Write the cube data with ``O_DIRECT`` where the file system allows it (see :class:`BlockWriter`).
    """

    def __init__(
        self,
        max_memory: float = 50,
        *,
        strategy: str = "auto",
        scratch_dir: str | None = None,
        fsspec_kwargs: dict | None = None,
        direct_io: bool = True,
    ):
        if strategy not in STRATEGIES:
            raise InvalidInputError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        self.max_memory = _check_memory(max_memory)
        self.strategy = strategy
        self.scratch_dir = scratch_dir
        self.fsspec_kwargs = fsspec_kwargs
        self.direct_io = direct_io
        self._num_blocks = self._block_size = 0
        self._cube_shape: tuple[int, ...] = ()
        self._file_list: list[str] = []
        self._strategy_used = ""
        self._nonfinite_ffis: list[str] = []  # FFIs of the last build whose science image had no finite pixel

    # ------------------------------------------------------------------ public API
    def make_cube(
        self,
        file_list: list[str],
        cube_file: str = "img-cube.fits",
        sector: int | None = None,
        max_memory: float = DEFAULT_MAX_MEMORY,
        verbose: bool = True,
    ) -> str:
        """Build a cube from the calibrated FFIs in ``file_list`` (any order); return ``cube_file``.

        Parameters
        ----------
        file_list : list of str or path
            SPOC FFIs of one sector/camera/CCD (ext 1 flux, ext 2 uncertainty); local paths or fsspec URLs.
        cube_file : str
            Output path; written atomically.
        sector : int, optional
            Written as ``SECTOR``; must agree with the FFIs' own ``SECTOR`` if they have one.
        max_memory : float
            GB for the whole process; default: the constructor's value.
        verbose : bool
            Progress lines at INFO level (else DEBUG).
        """
        memory = self.max_memory if max_memory is DEFAULT_MAX_MEMORY else _check_memory(max_memory)
        level = logging.INFO if verbose else logging.DEBUG
        paths = _as_list(file_list, "file_list")
        t0 = time.perf_counter()
        infos = _scan_all(paths, self.fsspec_kwargs, level)
        check_inputs(infos, sector)
        records, comments, flags = _ffi_records(infos)
        if not any(flags):
            raise InvalidInputError(f"none of the {len(infos)} FFIs in file_list has a usable WCS")
        primary = cube_table.make_primary_header(infos[0], records[-1], sector)
        table = _TableParts(records, cube_table.merge_comments(comments), [i.name for i in infos], flags)
        sources = [("ffi", i) for i in infos]
        self._file_list = [i.path for i in infos]
        log.log(level, "scanned %d FFIs in %.1f s", len(infos), time.perf_counter() - t0)
        self._write(cube_file, primary, table, sources, infos[0].shape, memory, level, old=None)
        log.log(level, "cube %s done in %.1f s", cube_file, time.perf_counter() - t0)
        return str(cube_file)

    def update_cube(
        self,
        file_list: list[str],
        cube_file: str,
        sector: int | None = None,
        max_memory: float = DEFAULT_MAX_MEMORY,
        verbose: bool = True,
    ) -> str:
        """Add the FFIs in ``file_list`` to the existing cube ``cube_file``, keeping float32 and time order.

        The cube is rewritten atomically (to a temporary file, then renamed) in bounded memory; FFIs already in
        the cube (same file name) are refused. The primary header gets ``HISTORY`` cards and the new
        ``DATE-END``/``TSTOP`` (and ``TSTART``/``DATE-OBS`` if an added FFI is earlier than the cube's first).
        Parameters as in :meth:`make_cube`.
        """
        from astropy.io import fits

        memory = self.max_memory if max_memory is DEFAULT_MAX_MEMORY else _check_memory(max_memory)
        level = logging.INFO if verbose else logging.DEBUG
        cube_path = Path(cube_file)
        if not cube_path.is_file():
            raise InvalidInputError(
                f"cube_file {str(cube_file)!r} does not exist; use make_cube to create it"
            )
        paths = _as_list(file_list, "file_list")
        infos = _scan_all(paths, self.fsspec_kwargs, level)
        check_inputs(infos, sector)
        with fits.open(cube_path, memmap=False, lazy_load_hdus=True) as hdul:
            primary = hdul[0].header.copy()
            h1 = hdul[1].header
            if h1.get("NAXIS") != 4 or h1.get("NAXIS1") != 2 or h1.get("BITPIX") not in (-32, -64):
                raise InvalidInputError(
                    f"cube_file {str(cube_file)!r} is not a TESS cube (HDU 1 must be 4-D float with NAXIS1=2)"
                )
            old = OldCube(
                str(cube_path),
                int(hdul.fileinfo(1)["datLoc"]),
                (h1["NAXIS4"], h1["NAXIS3"], h1["NAXIS2"], 2),
                ">f4" if h1["BITPIX"] == -32 else ">f8",
            )
            old_records, old_names, old_flags = cube_table.table_records(hdul[2].data)
            old_comments = {
                hdul[2].header.get(f"TTYPE{k}"): hdul[2].header.comments[f"TTYPE{k}"]
                for k in range(1, hdul[2].header.get("TFIELDS", 0) + 1)
            }
        _check_against_cube(infos, primary, old, old_names, cube_file)
        new_records, new_comments, new_flags = _ffi_records(infos)
        entries = [(rec.get("TSTART", -np.inf), 0, k) for k, rec in enumerate(old_records)]
        entries += [(info.tstart, 1, k) for k, info in enumerate(infos)]
        entries.sort(key=lambda e: (e[0], e[1], e[2]))
        records, names, flags, sources = [], [], [], []
        for _, is_new, k in entries:
            if is_new:
                records.append(new_records[k])
                names.append(infos[k].name)
                flags.append(new_flags[k])
                sources.append(("ffi", infos[k]))
            else:
                records.append(old_records[k])
                names.append(old_names[k])
                flags.append(old_flags[k])
                sources.append(("old", k))
        for key in ("DATE-END", "TSTOP"):
            if key in records[-1]:
                primary[key] = records[-1][key]
        if entries[0][1]:
            for key in ("TSTART", "DATE-OBS"):
                if key in records[0]:
                    primary[key] = records[0][key]
        primary["DATE"] = (creation_date(), "file creation date.")
        if sector is not None:
            primary["SECTOR"] = (int(sector), "Observing sector")
        primary.add_history(f"Updated on {creation_date()} with new image delivery.")
        primary.add_history(f"First image is {infos[0].name}.")
        comments = cube_table.merge_comments([old_comments, *new_comments])
        table = _TableParts(records, comments, names, flags)
        self._file_list = [s[1].path if s[0] == "ffi" else f"{cube_file}[{s[1]}]" for s in sources]
        self._write(cube_file, primary, table, sources, (old.shape[0], old.shape[1]), memory, level, old=old)
        return str(cube_file)

    # ------------------------------------------------------------------ machinery
    def _write(
        self, cube_file, primary, table: _TableParts, sources, shape, memory, level, old: OldCube | None
    ) -> None:
        n = len(sources)
        new_infos = [s[1] for s in sources if s[0] == "ffi"]
        n_old = n - len(new_infos)
        all_direct = all(i.direct for i in new_infos)
        # inputs read whole: one big block if memory allows (no scratch file), else small blocks from scratch
        block_rows = plan_block_rows(shape, n, memory, n_old, whole_ffi=not all_direct, small=all_direct)
        n_blocks = -(-shape[0] // block_rows)
        strategy = choose_strategy(new_infos, n_blocks, block_rows, self.strategy) if new_infos else "direct"
        if strategy == "scratch" and not all_direct:
            block_rows = plan_block_rows(shape, n, memory, n_old, whole_ffi=True)
            n_blocks = -(-shape[0] // block_rows)
        self._num_blocks, self._block_size, self._strategy_used = n_blocks, block_rows, strategy
        self._cube_shape = (shape[0], shape[1], n, 2)
        log.log(
            level,
            "cube %s: %d FFIs of %dx%d, %d block(s) of %d rows, strategy %s, max_memory %.3g GB",
            cube_file,
            n,
            shape[0],
            shape[1],
            n_blocks,
            block_rows,
            strategy,
            memory,
        )
        final = Path(cube_file)
        remove_stale_temporaries(final)
        head = cube_table.cube_header_bytes(primary, n, shape)
        data_bytes = shape[0] * shape[1] * n * 8
        with atomic_output(final, fsync=True) as tmp:
            lock = lock_file(tmp)
            fd = os.open(tmp, os.O_WRONLY)
            self._writer = BlockWriter(fd, tmp if self.direct_io else None)
            store = None
            try:
                pwrite_all(fd, head, 0)
                if strategy == "scratch":
                    store = self._stage(final, new_infos, shape, block_rows, level, n)
                # True once a finite flux value of the plane was seen; planes of an old cube are not checked
                finite = np.array([kind == "old" for kind, _ in sources], dtype=bool)
                encoded: list[
                    bytes
                ] = []  # the table is built and encoded while the last block is being written
                self._write_blocks(
                    fd,
                    len(head),
                    sources,
                    shape,
                    block_rows,
                    strategy,
                    store,
                    old,
                    level,
                    finite,
                    meanwhile=lambda: encoded.append(
                        cube_table.table_bytes(self._table_hdu(table, sources, finite))
                    ),
                )
                tail = (-data_bytes) % BLOCK
                end = len(head) + data_bytes
                pwrite_all(fd, encoded[0], end + tail)
                if tail:
                    pwrite_all(fd, b"\0" * tail, end)
            finally:
                if store is not None:
                    store.close()
                self._writer.close()
                os.close(fd)
                os.close(lock)

    def _table_hdu(self, table: _TableParts, sources, finite: np.ndarray):
        """Build the cube's table, flagging (and warning of) the cadences of FFIs without a finite flux value."""
        records = list(table.records)
        self._nonfinite_ffis = []
        for j in np.flatnonzero(~finite):
            info = sources[j][1]
            log.warning(
                "FFI %s: its science image (ext 1) has no finite pixel (all NaN/inf); kept in the cube, "
                "cadence %d flagged with DQUALITY bit %d",
                info.path,
                j,
                cube_table.NONFINITE_FFI_BIT,
            )
            records[j] = cube_table.flag_quality(records[j], cube_table.NONFINITE_FFI_BIT)
            self._nonfinite_ffis.append(info.path)
        return cube_table.build_table_hdu(records, table.comments, table.names, table.wcs_ok)

    def _stage(
        self, final: Path, infos: list[FFIInfo], shape, block_rows: int, level: int, n_total: int
    ) -> ScratchStore:
        directory = Path(self.scratch_dir) if self.scratch_dir else final.parent
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f".{final.name}.{writer_tag()}.scratch.h5"
        chunk = slab_rows(shape[1], n_total, block_rows)
        store = ScratchStore(path, len(infos), shape, chunk)  # HDF5 flock-s it while open
        rowbuf = np.empty(2 * min(block_rows, shape[0]) * shape[1] * 8, dtype=np.uint8)
        try:
            for k, info in enumerate(infos):
                if info.direct:  # block by block (whole chunks): memory stays within a block's share
                    step = max(chunk, block_rows // chunk * chunk)
                    for r0 in range(0, shape[0], step):
                        store.put(k, read_row_pair(info, r0, min(shape[0], r0 + step), rowbuf), r0)
                else:
                    store.put(k, np.stack(read_whole(info)))
                if (k + 1) % 16 == 0 or k + 1 == len(infos):
                    log.log(level, "scratch: staged %d/%d FFIs", k + 1, len(infos))
        except BaseException:
            store.close()
            raise
        return store

    def _write_blocks(
        self, fd, data_offset, sources, shape, block_rows, strategy, store, old, level, finite, meanwhile=None
    ) -> None:
        """Assemble and write every block of rows; ``meanwhile()`` runs while the last block is written.

        ``finite[j]`` is set once a finite flux value of plane ``j`` passed through (see :meth:`_fill_slabs`).
        """
        rows, cols = shape
        n = len(sources)
        row_bytes = cols * n * 8
        progress = _Progress(rows * row_bytes, rows, level)
        n_blocks = -(-rows // block_rows)
        buffers: list[np.ndarray] = []
        pending: list[Future | None] = [None, None]
        old_pos = np.array([k for k, s in enumerate(sources) if s[0] == "old"], dtype=np.intp)
        old_slice = _as_slice(old_pos)
        old_fd = os.open(old.path, os.O_RDONLY) if old is not None else None
        slab = slab_rows(cols, n, block_rows)
        n_new = sum(1 for s in sources if s[0] == "ffi")
        itemsize = max((np.dtype(s[1].dtype).itemsize for s in sources if s[0] == "ffi"), default=4)
        stage = (
            None if strategy == "whole" else np.empty((max(n_new, 1), 2 * slab * cols * itemsize), np.uint8)
        )
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cube-writer") as writer:
            try:
                for b in range(n_blocks):
                    r0, r1 = b * block_rows, min(rows, (b + 1) * block_rows)
                    slot = b % 2
                    if pending[slot] is not None:
                        pending[slot].result()
                    if len(buffers) <= slot:
                        buffers.append(
                            np.empty(min(block_rows, rows) * row_bytes + 2 * ALIGN, dtype=np.uint8)
                        )
                    offset = data_offset + r0 * row_bytes
                    block = aligned_view(buffers[slot], offset, (r1 - r0) * row_bytes).view(">f4")
                    block = block.reshape(r1 - r0, cols, n, 2)
                    if strategy == "whole":
                        self._fill_whole(block, sources, r0, r1, progress, finite)
                    else:
                        self._fill_slabs(
                            block, sources, r0, r1, strategy, store, stage, slab, progress, finite
                        )
                    if old is not None and len(old_pos):
                        self._copy_old(old_fd, old, r0, r1, block, old_pos, old_slice)
                    pending[slot] = writer.submit(self._writer.write, block, offset)
                    pending[slot].add_done_callback(
                        lambda f, nb=block.nbytes, bb=b: f.exception() or progress.wrote(nb, bb + 1, n_blocks)
                    )
                if meanwhile is not None:
                    meanwhile()
                for fut in pending:
                    if fut is not None:
                        fut.result()
            finally:
                if old_fd is not None:
                    os.close(old_fd)

    @staticmethod
    def _fill_whole(block, sources, r0, r1, progress, finite) -> None:
        """Planes of inputs read whole (remote/compressed, single block): one strided copy per plane."""
        for j, (kind, src) in enumerate(sources):
            if kind == "ffi":
                flux, err = read_whole(src)
                block[:, :, j, 0] = flux[r0:r1]
                block[:, :, j, 1] = err[r0:r1]
                if not finite[j]:
                    finite[j] = _any_finite(flux[r0:r1])
                progress.note(f"{j + 1}/{len(sources)} FFIs read")

    @staticmethod
    def _fill_slabs(block, sources, r0, r1, strategy, store, stage, slab, progress, finite) -> None:
        """Fill ``block`` (rows ``r0:r1``) slab by slab of ``slab`` rows.

        For each slab, rows of every FFI are read into ``stage`` (one row of it per FFI, a few MB in all, so it
        stays in the CPU cache), then copied into the slab of the block (also cache-sized): the transposition
        happens in cache, about 3x faster than copying whole FFI planes into the block with a large stride.
        The flux rows of a plane not yet known to hold a finite value are checked while in cache
        (``finite[j]``); once one is found, the plane is not checked again.
        """
        cols = block.shape[1]
        planes = [(j, src) for j, (kind, src) in enumerate(sources) if kind == "ffi"]
        for s0 in range(r0, r1, slab):
            s1 = min(r1, s0 + slab)
            n = s1 - s0
            pairs = []
            for k, (_, src) in enumerate(planes):
                if strategy == "scratch":
                    pairs.append(store.read(k, s0, s1, out=stage[k]))
                elif src.dtype == ">f4":
                    pairs.append(read_row_pair(src, s0, s1, stage[k]))
                else:
                    pairs.append(read_row_pair(src, s0, s1, stage[k]).astype(">f4"))
            dst = block[s0 - r0 : s1 - r0]
            for (j, _), pair in zip(planes, pairs, strict=True):
                dst[:, :, j, 0] = pair[0].reshape(n, cols)
                dst[:, :, j, 1] = pair[1].reshape(n, cols)
                if not finite[j]:
                    finite[j] = _any_finite(pair[0])
            progress.note(f"rows {s1}/{progress.rows} assembled")

    @staticmethod
    def _copy_old(old_fd, old: OldCube, r0, r1, block, old_pos, old_slice) -> None:
        _, cols, n_old, _ = old.shape
        itemsize = np.dtype(old.dtype).itemsize
        buf = np.empty((r1 - r0, cols, n_old, 2), dtype=old.dtype)
        pread_into(old_fd, buf, old.offset + r0 * cols * n_old * 2 * itemsize, str(old.path))
        if old_slice is not None:
            block[:, :, old_slice, :] = buf
        else:
            block[:, :, old_pos, :] = buf


@dataclass(frozen=True)
class _TableParts:
    """What the cube's table is built from (see :func:`skycut.tess.cube_table.build_table_hdu`), in cube order."""

    records: list[dict]
    comments: dict[str, str]
    names: list[str]
    wcs_ok: list[bool]


def _any_finite(values: np.ndarray) -> bool:
    """Return True if ``values`` hold a finite number (tests the first value alone first: the usual case)."""
    flat = values.reshape(-1)
    return bool(flat.size) and (bool(np.isfinite(flat[0])) or bool(np.isfinite(flat).any()))


def _as_slice(positions: np.ndarray) -> slice | None:
    if len(positions) == 0:
        return None
    if np.all(np.diff(positions) == 1):
        return slice(int(positions[0]), int(positions[-1]) + 1)
    return None


def _check_memory(value: Any) -> float:
    try:
        memory = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"max_memory must be a number of GB, got {value!r}") from exc
    if not memory > 0:
        raise InvalidInputError(f"max_memory must be positive (GB), got {value!r}")
    return memory


def _as_list(file_list: Any, name: str) -> list[str]:
    if isinstance(file_list, (str, os.PathLike)):
        file_list = [file_list]
    paths = [os.fspath(p) for p in file_list]
    if not paths:
        raise InvalidInputError(f"{name} is empty: give at least one FFI")
    return paths


def _ffi_records(infos: list[FFIInfo]) -> tuple[list[dict], list[dict], list[bool]]:
    records, comments, flags = [], [], []
    for info in infos:
        values, notes = info.values, info.comments
        ok = cube_table.has_usable_wcs(values)
        if not ok:
            log.warning("FFI %s has no usable WCS: kept in the cube, marked WCS_OK=F", info.path)
        records.append(values)
        comments.append(notes)
        flags.append(ok)
    return records, comments, flags


def _check_against_cube(infos, primary, old: OldCube, old_names: list[str], cube_file) -> None:
    dup = sorted({i.name for i in infos} & set(old_names))
    if dup:
        raise InvalidInputError(f"FFIs already in cube_file {str(cube_file)!r}: {dup}")
    for key, attr in (("SECTOR", "sector"), ("CAMERA", "camera"), ("CCD", "ccd")):
        have = primary.get(key)
        got = getattr(infos[0], attr)
        if have is not None and got is not None and have != got:
            raise InvalidInputError(
                f"cube_file {str(cube_file)!r} has {key}={have} but file_list FFIs have {key}={got}"
            )
    if infos[0].shape != (old.shape[0], old.shape[1]):
        raise InvalidInputError(
            f"FFIs of shape {infos[0].shape} do not fit cube_file {str(cube_file)!r} of "
            f"image shape {old.shape[:2]}"
        )
