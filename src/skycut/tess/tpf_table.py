"""The PIXELS table of a target pixel file: its columns, and its data filled from a cutout's pixels.

One row per FFI: ``TIME, TIMECORR, CADENCENO, RAW_CNTS, FLUX, FLUX_ERR, FLUX_BKG, FLUX_BKG_ERR, QUALITY,
POS_CORR1, POS_CORR2, FFI_FILE``; image columns have per-row numpy shape ``(ny, nx)``. Every column but ``FLUX`` and
``FLUX_ERR`` is the same for every cutout of one cube and shape, so a record template is made once per shape
(:func:`table_layout`) and a cutout's table is the template with its pixels in those two columns.

:func:`table_data` builds the whole table in memory; :func:`write_table` writes it to a file without building it:
chunks of rows are filled in a small buffer (the FLUX and FLUX_ERR of a chunk, copied and summed in one pass) and
written with ``os.pwritev`` between the template's other bytes while the buffer is still in the CPU cache
(:func:`skycut.core.block_rows.write_rows`). On the benchmark machine
a 1,500-cadence 15 x 15 table (6.9 MB) built in memory cost more than reading its pixels and writing the file
together: three passes over memory (reorder into the table, sum, write) that the two CPU cores share.
:func:`write_table_file` makes the whole TPF that way in one compiled call without the GIL (the temporary, the
table, the PIXELS header's checksums, the rename), for the writer threads of a batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import create_new
from ..core.block_rows import FILES, MAX_CHUNK_ROWS, write_rows
from ..core.block_rows import write_table_file as write_rows_file
from ..core.fits_bytes import BLOCK, HeaderTemplate, fold_sum, format_card, ones_complement_sum

IMAGE_COLUMNS = ("RAW_CNTS", "FLUX", "FLUX_ERR", "FLUX_BKG", "FLUX_BKG_ERR")  # table columns 4..8


@dataclass
class CubeMeta:
    """What every TPF of one cube shares (built once per cube by the cutout code).

    ``primary_cards`` are the cube's primary cards already filtered; time-like arrays have one entry per FFI.
    ``cache`` keeps header pieces that do not depend on the target (filled on first use).
    """

    primary_cards: list[str]
    time: np.ndarray
    timecorr: np.ndarray
    cadenceno: np.ndarray
    quality: np.ndarray
    ffi_files: np.ndarray
    image_cards: list[str]  # IMAGE_KEYWORDS values + WCS_FFI, from the cube's WCS row
    tstart: float | None
    tstop: float | None
    cache: dict = field(default_factory=dict, repr=False)


@dataclass
class TpfCutout:
    """One cutout to serialise: sky target, limits and pixels, and the fitted linear WCS.

    ``block`` has numpy shape ``(ny, nx, ntime, 2)`` (cube order, ``[..., 0]`` flux, ``[..., 1]`` uncertainty),
    already padded; ``lims`` are ``[[xmin, xmax], [ymin, ymax]]`` 0-based on the CCD; ``crpix`` is 1-based in the
    cutout; ``cd`` is the 2x2 linear matrix in degrees per pixel.
    """

    ra: float
    dec: float
    lims: np.ndarray
    block: np.ndarray
    aperture: np.ndarray
    crval: tuple[float, float]
    crpix: tuple[float, float]
    cd: np.ndarray
    wcs_msep: float
    wcs_sig: float
    corner: tuple[int, int] | None = (
        None  # 1-based CCD (column, row) of the first pixel; default xmin+1, ymin+1
    )
    object_name: str = ""  # OBJECT: the target's name ("" as astrocut writes when it has none)
    ticid: int | None = None  # TICID: the target's TESS Input Catalog number (undefined as astrocut writes)


# ------------------------------------------------------------------------------------------ the table


def table_columns(nx: int, ny: int, name_width: int) -> list[tuple[str, str, str, str, Any]]:
    """(name, TFORM, TUNIT, TDISP, numpy dtype) of the 12 PIXELS columns."""
    n = nx * ny
    img = (ny, nx)
    return [
        ("TIME", "D", "BJD - 2457000, days", "D14.7", ">f8"),
        ("TIMECORR", "E", "d", "E14.7", ">f4"),
        ("CADENCENO", "J", "", "I10", ">i4"),
        ("RAW_CNTS", f"{n}J", "count", "I8", (">i4", img)),
        ("FLUX", f"{n}E", "e-/s", "E14.7", (">f4", img)),
        ("FLUX_ERR", f"{n}E", "e-/s", "E14.7", (">f4", img)),
        ("FLUX_BKG", f"{n}E", "e-/s", "E14.7", (">f4", img)),
        ("FLUX_BKG_ERR", f"{n}E", "e-/s", "E14.7", (">f4", img)),
        ("QUALITY", "J", "", "B16.16", ">i4"),
        ("POS_CORR1", "E", "pixel", "E14.7", ">f4"),
        ("POS_CORR2", "E", "pixel", "E14.7", ">f4"),
        ("FFI_FILE", f"{name_width}A", "", "", f"S{name_width}"),
    ]


def table_layout(meta: CubeMeta, nx: int, ny: int):
    """(record template with the per-FFI columns filled, per-column definition cards) for one cutout shape."""
    key = ("pixels", nx, ny)
    if key not in meta.cache:
        names = np.asarray(meta.ffi_files).astype(str)
        encoded = np.char.encode(names, "ascii", errors="replace")
        width = max(1, max((len(s) for s in encoded), default=1))
        cols = table_columns(nx, ny, width)
        rec = np.zeros(len(names), dtype=[(c[0], c[4]) for c in cols])
        rec["TIME"] = meta.time
        rec["TIMECORR"] = meta.timecorr
        rec["CADENCENO"] = meta.cadenceno
        rec["RAW_CNTS"] = -1
        rec["QUALITY"] = meta.quality  # the cube table's DQUALITY, incl. skycut's bit 65536 (no finite flux)
        rec["FFI_FILE"] = encoded
        column_cards = []
        for i, (name, tform, tunit, tdisp, _) in enumerate(cols, start=1):
            cards = [
                format_card(f"TTYPE{i}", name, "column title"),
                format_card(f"TFORM{i}", tform, "column format"),
            ]
            if tunit:
                cards.append(format_card(f"TUNIT{i}", tunit, "column units"))
            if tdisp:
                cards.append(format_card(f"TDISP{i}", tdisp, "column display format"))
            if name in IMAGE_COLUMNS:
                cards.append(
                    format_card(f"TDIM{i}", f"({nx},{ny})", "column dimensions: pixel aperture array")
                )
                if name == "RAW_CNTS":
                    cards.append(format_card(f"TNULL{i}", -1, "null value"))
            column_cards.append((i, name, cards))
        head = [
            format_card("XTENSION", "BINTABLE", "binary table extension"),
            format_card("BITPIX", 8, "array data type"),
            format_card("NAXIS", 2, "number of array dimensions"),
            format_card("NAXIS1", rec.dtype.itemsize, "length of dimension 1"),
            format_card("NAXIS2", len(rec), "length of dimension 2"),
            format_card("PCOUNT", 0, "number of group params"),
            format_card("GCOUNT", 1, "number of groups"),
            format_card("TFIELDS", len(cols), "number of table fields"),
        ]
        # the template's words sum (FLUX and FLUX_ERR are zero in it); a cutout's data sum adds the sum of its block
        # when every FLUX/FLUX_ERR value sits on a 4-byte word of the file (rows a whole number of words long)
        base_sum = ones_complement_sum(rec) if rec.dtype.itemsize % 4 == 0 else None
        meta.cache[key] = (rec, head, column_cards, base_sum)
    return meta.cache[key]


def _scratch(meta: CubeMeta, key: tuple, scratch: int | None, make: Callable[[], np.ndarray]) -> np.ndarray:
    """Buffer number ``scratch`` of kind ``key`` kept in ``meta.cache`` (made on first use); ``None``: a new one."""
    if scratch is None:
        return make()
    key = (*key, int(scratch))
    buffer = meta.cache.get(key)
    if buffer is None:
        buffer = meta.cache[key] = make()
    return buffer


def _block(cut: TpfCutout) -> np.ndarray:
    """Return the cutout's pixels as big-endian float32, any strides (a memory-map view is read in place)."""
    return cut.block if cut.block.dtype == np.dtype(">f4") else cut.block.astype(">f4")


def table_data(meta: CubeMeta, cut: TpfCutout, scratch: int | None) -> tuple[np.ndarray, int | None]:
    """Return the PIXELS table of one cutout and its data sum (``None`` when not known from the template's).

    ``scratch=k`` fills the cube's reused table number ``k`` (one call at a time per number); ``None`` a new one.
    """
    ny, nx = cut.aperture.shape
    template, _, _, base_sum = table_layout(meta, nx, ny)
    rec = _scratch(meta, ("scratch", nx, ny), scratch, template.copy)
    block = _block(cut)
    # every column but FLUX and FLUX_ERR is the template's: a reused buffer still holds it
    rec["FLUX"] = block[..., 0].transpose(2, 0, 1)
    rec["FLUX_ERR"] = block[..., 1].transpose(2, 0, 1)
    # the block holds exactly the FLUX and FLUX_ERR values (big-endian float32 words): its sum plus the template's
    return rec, ones_complement_sum(block, base_sum) if base_sum is not None else None


#: FLUX and FLUX_ERR bytes of the rows :func:`write_table` fills at a time (with room to spare in a core's 512 KB L2
#: cache on the benchmark machine: 254 rows of 15 x 15; 128 rows were slower).
CHUNK_BYTES = 448 * 1024


def _stream(meta: CubeMeta, cut: TpfCutout, scratch: int | None) -> tuple | None:
    """Return what writing ``cut``'s table chunk by chunk takes, or ``None`` when it cannot be done so.

    ``(block, template, flux_at, buffer, chunk_rows, base_sum)``; ``None`` for rows not a whole number of 4-byte
    words, or ``FLUX_ERR`` not right after ``FLUX``.
    """
    ny, nx = cut.aperture.shape
    template, _, _, base_sum = table_layout(meta, nx, ny)
    fields, pix = template.dtype.fields, 8 * nx * ny
    if base_sum is None or fields["FLUX_ERR"][1] != fields["FLUX"][1] + pix // 2:
        return None
    rows = max(1, min(MAX_CHUNK_ROWS, CHUNK_BYTES // pix))
    buffer = _scratch(meta, ("chunk", nx, ny), scratch, lambda: np.empty((rows, 2, ny, nx), dtype=">f4"))
    return _block(cut), template, fields["FLUX"][1], buffer, rows, base_sum


def write_table(
    fd: int, offset: int, meta: CubeMeta, cut: TpfCutout, scratch: int | None
) -> tuple[int, int] | None:
    """Write the PIXELS table data of ``cut`` at ``offset`` of the open file ``fd``, chunk by chunk.

    Returns ``(bytes written, data sum)`` (the :func:`ones_complement_sum` of the table, for ``DATASUM``), or
    ``None`` when this table cannot be written so (its rows not a whole number of 4-byte words, or ``FLUX_ERR`` not
    right after ``FLUX``): the caller writes :func:`table_data` instead. ``scratch`` numbers the reused chunk buffer
    as in :func:`table_data` (one call at a time per number); ``cut.block`` may be a view of a cube's memory map,
    read here once (:func:`skycut.core.block_rows.write_rows`).
    """
    stream = _stream(meta, cut, scratch)
    if stream is None:
        return None
    block, template, flux_at, buffer, rows, base_sum = stream
    nbytes, total = write_rows(fd, offset, block, template, flux_at, buffer, rows)
    return nbytes, fold_sum(base_sum + total)


def write_table_file(
    path: str | os.PathLike,
    head: bytes,
    header: HeaderTemplate,
    patched: bytearray,
    tail: list,
    meta: CubeMeta,
    cut: TpfCutout,
    scratch: int | None,
) -> Path | None:
    """Write a whole TPF to ``path`` atomically in one call without the GIL; ``None`` if it cannot be done so.

    ``head`` is the bytes before the PIXELS HDU, ``patched`` the PIXELS header (:meth:`HeaderTemplate.patched` of
    ``header``) whose checksums are filled in for the table, ``tail`` the buffers after the table's padding
    (:func:`skycut.core.block_rows.write_table_file`, :func:`skycut.core.atomic.create_new`). ``None`` (nothing
    written) without the compiled accelerator or for a table :func:`write_table` cannot write.
    """
    stream = _stream(meta, cut, scratch) if FILES else None
    if stream is None:
        return None
    block, template, flux_at, buffer, rows, base_sum = stream
    pad = b"\0" * (-template.nbytes % BLOCK)
    after = b"".join([pad, *tail])
    return create_new(
        path,
        lambda tmp, final: write_rows_file(
            tmp,
            final,
            head,
            patched,
            header.checksum_fields,
            block,
            template,
            flux_at,
            buffer,
            rows,
            base_sum,
            after,
        ),
    )
