"""Cadence rows of a cube block, copied out in table order, with the FITS checksum sum of the copied words.

A TESS cube stores each pixel's cadences together (numpy shape ``(ny, nx, ntime, 2)``: flux and uncertainty
pairs, cadence after cadence); a target pixel file stores each cadence's pixels together (a table row holds the
cadence's ``FLUX`` image, then its ``FLUX_ERR`` image). :func:`copy_rows` turns cadences ``t0`` to ``t1`` of a block
into rows of shape ``(t1 - t0, 2, ny, nx)`` and returns the sum of the copied big-endian 32-bit words, the
block's share of the table's FITS ``DATASUM``.

numpy does this in two passes (a strided copy, then a byte-swapping sum). The optional compiled module
``skycut.core._block_rows`` (built at install when a C compiler is present; see ``setup.py``) does it in one,
reading each pixel's cadences in order and summing on the way: 0.7-0.95 ms against 1.7-2.2 ms for numpy per
15 x 15 cutout of 1,500 cadences read from a cube's memory map on the benchmark machine, the largest cost of
writing a deep TPF after the write itself. On x86-64 CPUs with AVX2 it transposes 8 cadences of 8 pixels at a
time in registers and prefetches the pixels' next cadences: 0.57-0.68 ms against 1.1-1.2 ms for its portable loop
in one run, and while the other core writes TPFs (the batch's case) a writer's CPU time per deep TPF fell from
6.5-7.3 to 5.0-5.4 ms (``_block_rows.simd(False)`` turns that path off, for tests). :func:`write_rows` writes a whole TPF pixel table from a block and a
record template, chunk by chunk; compiled, it also builds the ``pwritev`` buffer lists (3,000 per 1,500-cadence
table, which cost about 0.25 ms as Python objects) and runs without the GIL throughout. Compiled and numpy give
the same bytes and the same sum (tests check it).

:func:`write_table_file` (compiled only) makes a whole file around such a table in one call without the GIL:
creating the temporary, the table, the header's ``DATASUM``/``CHECKSUM``, the rename. A batch's writer threads
then need the GIL about once per file: with the Python steps between the system calls, each write took the GIL
about ten times, and each time waited for the reading thread's Python work (the header formatting of the next
targets), which made that work cost wall time one for one (deep benchmark: 4.86 against 4.31 ms per target, median
of 10 paired runs).
"""

from __future__ import annotations

import os

import numpy as np

try:  # the compiled accelerator (optional)
    from ._block_rows import rows_sum as _rows_sum
    from ._block_rows import simd as _simd
    from ._block_rows import write_table as _write_table
    from ._block_rows import write_table_file as _write_table_file
except ImportError:  # pragma: no cover - depends on the build
    _rows_sum = _write_table = _write_table_file = _simd = None

#: Whether the compiled accelerator is in use.
COMPILED = _rows_sum is not None
#: Whether :func:`write_table_file` can be used (the compiled accelerator; a file system with ``O_EXCL``).
FILES = _write_table_file is not None

#: Most rows per ``pwritev`` of :func:`write_rows` (two buffers per row and one more, at most 1,024).
MAX_CHUNK_ROWS = 511


def copy_rows(block: np.ndarray, t0: int, t1: int, out: np.ndarray) -> int:
    """Copy cadences ``t0:t1`` of ``block`` into ``out`` as rows; return the sum of the copied words.

    Parameters
    ----------
    block : ndarray
        ``(ny, nx, ntime, planes)``, big-endian 4-byte items (``>f4``), any strides (a view of a cube's memory
        map is read in place); planes 0 and 1 (flux, uncertainty) are copied.
    t0, t1 : int
        The cadence range, ``0 <= t0 <= t1 <= ntime``.
    out : ndarray
        C-contiguous, at least ``(t1 - t0, 2, ny, nx)`` items of ``block``'s dtype; its first ``t1 - t0`` rows are
        written.

    Returns
    -------
    int
        The plain sum of the copied items read as big-endian unsigned 32-bit words (not folded to 32 bits; see
        :func:`skycut.core.fits_bytes.ones_complement_sum`).
    """
    if _rows_sum is not None and out.flags.c_contiguous and block.dtype.itemsize == 4:
        return _rows_sum(block, t0, t1, out)
    part = out[: t1 - t0]
    np.copyto(part, block[:, :, t0:t1, :2].transpose(2, 3, 0, 1))
    return int(part.view(">u4").sum(dtype=np.uint64))


def write_rows(
    fd: int,
    offset: int,
    block: np.ndarray,
    template: np.ndarray,
    flux_at: int,
    buffer: np.ndarray,
    chunk_rows: int,
) -> tuple[int, int]:
    """Write a table at ``offset`` of the open file ``fd``: ``template``'s rows with ``block``'s pixels in them.

    Row ``t`` is ``template[t]``'s bytes with its ``2 * ny * nx * 4`` bytes from ``flux_at`` replaced by cadence
    ``t`` of ``block`` as :func:`copy_rows` lays it out (flux image, then uncertainty image). ``chunk_rows`` rows
    at a time (at most :data:`MAX_CHUNK_ROWS`) are filled in ``buffer`` and written with one ``os.pwritev``
    between the template's bytes, so neither the table nor a copy of the template is made; compiled, the whole
    table is written without the GIL.

    Parameters
    ----------
    fd : int
        An open, writable file descriptor.
    offset : int
        Where the table starts in the file.
    block : ndarray
        ``(ny, nx, ntime, planes)`` big-endian 4-byte items, any strides.
    template : ndarray
        The table's ``ntime`` rows (a C-contiguous record array).
    flux_at : int
        Byte offset in a row of the block's flux image (the uncertainty image follows it).
    buffer : ndarray
        C-contiguous, at least ``(chunk_rows, 2, ny, nx)`` items of ``block``'s dtype.
    chunk_rows : int
        Rows per write.

    Returns
    -------
    tuple of int
        ``(bytes written, sum)``: ``sum`` is :func:`copy_rows`'s for the whole block (not folded).
    """
    ny, nx, nt = block.shape[:3]
    width, pix = template.dtype.itemsize, 8 * ny * nx
    chunk_rows = max(1, min(MAX_CHUNK_ROWS, int(chunk_rows)))
    raw = template.view(np.uint8).reshape(-1)
    if _write_table is not None and buffer.flags.c_contiguous and block.dtype.itemsize == 4:
        return _write_table(fd, offset, block, raw, width, flux_at, buffer, chunk_rows)
    from .atomic import pwrite_all

    tb = memoryview(raw)
    cb = memoryview(buffer.reshape(-1).view(np.uint8))
    total, pos = 0, offset
    for t0 in range(0, nt, chunk_rows):
        t1 = min(nt, t0 + chunk_rows)
        total += copy_rows(block, t0, t1, buffer)
        views = [tb[t0 * width : t0 * width + flux_at]]
        for t in range(t0, t1):
            views.append(cb[(t - t0) * pix : (t - t0 + 1) * pix])
            views.append(
                tb[t * width + flux_at + pix : (t + 1) * width + flux_at if t + 1 < t1 else t1 * width]
            )
        pos += pwrite_all(fd, views, pos, (t1 - t0) * width)
    return pos - offset, total


def write_table_file(
    tmp: os.PathLike,
    final: os.PathLike,
    head: bytes,
    header: bytes | bytearray,
    checksum_fields: tuple[int, int],
    block: np.ndarray,
    template: np.ndarray,
    flux_at: int,
    buffer: np.ndarray,
    chunk_rows: int,
    base_sum: int,
    tail: bytes,
) -> int:
    """Make a file ``head + header + table + tail`` at ``tmp`` and rename it to ``final``; return the table's sum.

    Compiled only (see :data:`FILES`), for :func:`skycut.core.atomic.create_new`. The table is :func:`write_rows`'s
    (``template``, ``block``, ``flux_at``, ``buffer``, ``chunk_rows``); ``header`` (whole 4-byte words) is written
    with its ``DATASUM`` and ``CHECKSUM`` value fields, at byte offsets ``checksum_fields``, filled in for that
    table (``CHECKSUM`` must hold the 16 zeros of a template), as
    :meth:`skycut.core.fits_bytes.HeaderTemplate.finish` does; ``base_sum`` is the plain sum of ``template``'s
    words (its ``FLUX``/``FLUX_ERR`` zero). ``tmp`` is created exclusively (``FileExistsError`` if it exists) with
    mode 0666 less the umask; on any other failure it is removed and ``OSError`` raised.

    Returns
    -------
    int
        The table's ``DATASUM`` (the folded 32-bit ones'-complement sum).
    """
    if _write_table_file is None:  # pragma: no cover - depends on the build
        raise RuntimeError("the compiled accelerator is not built")
    width = template.dtype.itemsize
    chunk_rows = max(1, min(MAX_CHUNK_ROWS, int(chunk_rows)))
    raw = template.view(np.uint8).reshape(-1)
    datasum_at, checksum_at = checksum_fields
    return _write_table_file(
        tmp,
        final,
        head,
        header,
        datasum_at,
        checksum_at,
        block,
        raw,
        width,
        flux_at,
        buffer,
        chunk_rows,
        base_sum,
        tail,
    )
