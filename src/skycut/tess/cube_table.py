"""The per-FFI header table of a TESS cube (HDU 2), the checks made on FFI headers, and the cube's headers.

A cube's table has one row per FFI, in the cube's time order (row ``i`` describes plane ``[:, :, i, :]``), one
column per keyword of the FFIs' image-extension (ext 1) headers, then ``FFI_FILE`` (the FFI's file name, whole)
and ``WCS_OK``.

Differences from astrocut 1.4, all deliberate:

* Columns are the union of the keywords of *all* FFIs (in order of first appearance), not those of one template
  FFI; a string column is as wide as the longest value in any FFI, so nothing is truncated.
* ``COMMENT``, ``HISTORY`` and blank-keyword cards are skipped (astrocut crashes on them).
* ``WCS_OK`` (logical) is ``False`` for an FFI without a usable celestial WCS; the ``CTYPE1``/``CTYPE2`` cells of
  such a row are blank, so readers that pick the WCS row by ``CTYPE2 == 'DEC--TAN-SIP'`` (astrocut, skycut) never
  take it. The FFI's pixels stay in the cube.
* The table header carries ``EXTNAME`` and the original card comments as comments of the ``TTYPEn`` cards, instead
  of astrocut's ``<KEYWORD> = '<comment>'`` cards.
* ``DQUALITY`` gains bit ``NONFINITE_FFI_BIT`` = 65536 (bit 17, above the 16 bits SPOC defines, so it means
  nothing else) for an FFI whose science image (ext 1) has no finite pixel (all NaN/inf): the cube builder finds
  such FFIs while their rows pass through the transposition, logs a warning naming the file, and ORs the bit into
  the row's ``DQUALITY`` (a missing ``DQUALITY`` counts as 0). TPFs copy ``DQUALITY`` into ``QUALITY``, so the
  cadence arrives flagged there (astrocut's cutouts of the cube too). The FFI's pixels stay in the cube.

Column types: all-string or mixed -> ``A<longest>``; all logical -> ``L``; all integer (bools counted as
integers) -> ``J`` (``K`` beyond int32); otherwise ``D``. Missing values are ``''``, ``False``, ``0`` and NaN.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..core.fits_bytes import BLOCK, format_card, header_block
from ..core.provenance import creation_date

log = logging.getLogger(__name__)

SKIPPED_KEYWORDS = frozenset({"COMMENT", "HISTORY", ""})
FILE_COLUMN = "FFI_FILE"
WCS_FLAG_COLUMN = "WCS_OK"
TABLE_EXTNAME = "FFI_HEADERS"
QUALITY_COLUMN = "DQUALITY"
NONFINITE_FFI_BIT = 1 << 16  # skycut's DQUALITY/QUALITY bit: the FFI's science image has no finite pixel
_INT32 = (-(2**31), 2**31 - 1)


def header_record(header: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Keyword -> value and keyword -> comment of a FITS header, skipping commentary cards.

    The first card of a repeated keyword wins; undefined values are left out.

    Parameters
    ----------
    header : astropy.io.fits.Header
        An FFI's image-extension header.
    """
    from astropy.io.fits.card import Undefined

    values: dict[str, Any] = {}
    comments: dict[str, str] = {}
    for card in header.cards:
        key = card.keyword
        if key in SKIPPED_KEYWORDS or key in values:
            continue
        value = card.value
        if isinstance(value, Undefined) or value is None:
            comments.setdefault(key, card.comment)
            continue
        values[key] = value
        comments[key] = card.comment
    return values, comments


def _finite(values: Mapping[str, Any], *keys: str) -> bool:
    for key in keys:
        v = values.get(key)
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float, np.integer, np.floating))
            or not math.isfinite(v)
        ):
            return False
    return True


def has_usable_wcs(values: Mapping[str, Any]) -> bool:
    """Return True if ``values`` describe a usable celestial TAN(-SIP) WCS.

    ``values`` maps keyword -> value of an ext-1 header. Usable means: ``CTYPE1``/``CTYPE2`` are RA/Dec, ``CRVAL1/2`` and ``CRPIX1/2`` are finite, and the linear
    transformation (``CD`` or ``PC`` x ``CDELT``) is finite and not singular.
    """
    ctype1, ctype2 = str(values.get("CTYPE1", "")), str(values.get("CTYPE2", ""))
    if not (ctype1.startswith("RA--") and ctype2.startswith("DEC-")):
        return False
    if not _finite(values, "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2"):
        return False
    if any(k in values for k in ("CD1_1", "CD1_2", "CD2_1", "CD2_2")):
        matrix = [[values.get(f"CD{i}_{j}", 0.0) for j in (1, 2)] for i in (1, 2)]
    else:
        pc = [[values.get(f"PC{i}_{j}", 1.0 if i == j else 0.0) for j in (1, 2)] for i in (1, 2)]
        cdelt = [values.get("CDELT1", 1.0), values.get("CDELT2", 1.0)]
        try:
            matrix = [[float(pc[i][j]) * float(cdelt[i]) for j in range(2)] for i in range(2)]
        except (TypeError, ValueError):
            return False
    try:
        m = np.array(matrix, dtype=float)
    except (TypeError, ValueError):
        return False
    if not np.all(np.isfinite(m)):
        return False
    return abs(float(np.linalg.det(m))) > 0.0


def flag_quality(record: Mapping[str, Any], bit: int) -> dict[str, Any]:
    """Return a copy of ``record`` (keyword -> value of one FFI) with ``bit`` ORed into its ``DQUALITY``.

    A missing or non-integer ``DQUALITY`` counts as 0 (an integral float keeps its value).

    Parameters
    ----------
    record : mapping
        Keyword -> value of an FFI's ext-1 header, as stored in a row of the cube's table.
    bit : int
        The flag to set, e.g. :data:`NONFINITE_FFI_BIT`.
    """
    value = record.get(QUALITY_COLUMN)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if value is not None:
            log.warning("DQUALITY = %r is not an integer: replaced by the flag %d", value, bit)
        value = 0
    return {**record, QUALITY_COLUMN: int(value) | int(bit)}


def _column_format(values: Sequence[Any]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "D"
    if any(isinstance(v, (str, complex)) for v in present):
        width = max((len(_as_text(v)) for v in present), default=1)
        return f"{max(width, 1)}A"
    if all(isinstance(v, (bool, np.bool_)) for v in present):
        return "L"
    if all(isinstance(v, (bool, int, np.integer, np.bool_)) for v in present):
        lo, hi = min(int(v) for v in present), max(int(v) for v in present)
        return "J" if _INT32[0] <= lo and hi <= _INT32[1] else "K"
    return "D"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value)


def _column_array(values: Sequence[Any], fmt: str) -> np.ndarray:
    n = len(values)
    if fmt.endswith("A"):
        width = int(fmt[:-1])
        return np.array(["" if v is None else _as_text(v) for v in values], dtype=f"U{width}")
    if fmt == "L":
        return np.array([bool(v) if v is not None else False for v in values], dtype=bool)
    if fmt in ("J", "K"):
        dtype = np.int32 if fmt == "J" else np.int64
        return np.array([int(v) if v is not None else 0 for v in values], dtype=dtype)
    out = np.full(n, np.nan)
    for i, v in enumerate(values):
        if v is not None:
            out[i] = float(v)
    return out


def build_table_hdu(
    records: Sequence[Mapping[str, Any]],
    comments: Mapping[str, str],
    file_names: Sequence[str],
    wcs_ok: Sequence[bool],
):
    """Build the cube's header table as an astropy ``BinTableHDU``.

    Parameters
    ----------
    records : sequence of mapping
        Keyword -> value of each FFI's ext-1 header, in the cube's time order (row ``i`` = plane ``i``).
    comments : mapping
        Keyword -> card comment (first seen), written as the comment of the column's ``TTYPEn`` card.
    file_names : sequence of str
        The FFIs' file names (base names), stored whole in ``FFI_FILE``.
    wcs_ok : sequence of bool
        Whether each FFI has a usable WCS; rows with ``False`` get blank ``CTYPE1``/``CTYPE2`` cells.
    """
    from astropy.io import fits

    keys: list[str] = []
    seen: set[str] = set()
    for rec in records:
        for key in rec:
            if key not in seen and key not in (FILE_COLUMN, WCS_FLAG_COLUMN):
                seen.add(key)
                keys.append(key)
    columns = []
    for key in keys:
        values = [rec.get(key) for rec in records]
        if key in ("CTYPE1", "CTYPE2"):
            values = [v if ok else "" for v, ok in zip(values, wcs_ok, strict=True)]
        fmt = _column_format(values)
        columns.append(fits.Column(name=key, format=fmt, array=_column_array(values, fmt)))
    name_fmt = f"{max((len(n) for n in file_names), default=1)}A"
    columns.append(
        fits.Column(name=FILE_COLUMN, format=name_fmt, array=_column_array(list(file_names), name_fmt))
    )
    columns.append(fits.Column(name=WCS_FLAG_COLUMN, format="L", array=np.array(list(wcs_ok), dtype=bool)))
    hdu = fits.BinTableHDU.from_columns(columns)
    hdu.header["EXTNAME"] = (TABLE_EXTNAME, "ext-1 keywords of each FFI, in cube order")
    notes = [comments.get(key, "") for key in keys] + ["FFI file name", "T if the FFI has a usable WCS"]
    for i, note in enumerate(notes, start=1):
        if note:  # keep what fits on the TTYPEn card
            room = 80 - len(f"TTYPE{i:<3d}= '{columns[i - 1].name:<8s}' / ")
            hdu.header.comments[f"TTYPE{i}"] = note[: max(room, 0)]
    return hdu


def table_records(table_data: Any) -> tuple[list[dict[str, Any]], list[str], list[bool]]:
    """Turn an existing cube table back into per-FFI records, file names and WCS flags.

    Works for skycut's and astrocut's cubes (an astrocut cube has no ``WCS_OK`` column: the flag is then
    recomputed from the row's WCS keywords). String cells that are empty are treated as missing.

    Parameters
    ----------
    table_data : astropy.io.fits.FITS_rec
        ``hdul[2].data`` of a cube.
    """
    names = list(table_data.columns.names)
    records: list[dict[str, Any]] = []
    files: list[str] = []
    flags: list[bool] = []
    for row in table_data:
        rec: dict[str, Any] = {}
        for name in names:
            if name in (FILE_COLUMN, WCS_FLAG_COLUMN):
                continue
            rec[name] = _python_value(row[name])
        rec = {k: v for k, v in rec.items() if v is not None}
        files.append(str(row[FILE_COLUMN]).strip() if FILE_COLUMN in names else "")
        flags.append(bool(row[WCS_FLAG_COLUMN]) if WCS_FLAG_COLUMN in names else has_usable_wcs(rec))
        records.append(rec)
    return records, files, flags


def _python_value(value: Any) -> Any:
    if isinstance(value, (str, np.str_)):
        text = str(value).rstrip()
        return text if text else None
    if isinstance(value, (bytes, np.bytes_)):
        text = value.decode("ascii", "replace").rstrip()
        return text if text else None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    return value


def merge_comments(parts: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """First non-empty comment of each keyword across several ``keyword -> comment`` mappings."""
    out: dict[str, str] = {}
    for part in parts:
        for key, comment in part.items():
            if comment and not out.get(key):
                out[key] = comment
    return out


def table_bytes(hdu) -> bytes:
    """Serialise ``hdu`` (a table extension) as it appears in a FITS file: header + padded data."""
    import io

    from astropy.io import fits

    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    raw = buf.getvalue()
    return raw[BLOCK:]  # an empty primary header is exactly one block


# ------------------------------------------------------------------------------------------ cube headers
def make_primary_header(first: Any, last_record: dict, sector: int | None):
    """Primary header of a cube built from FFIs whose earliest is ``first`` (see module doc)."""
    from astropy.io import fits

    hdr = fits.Header.fromstring(first.primary_text)
    for key in ("CHECKSUM", "DATASUM"):
        hdr.remove(key, ignore_missing=True, remove_all=True)
    for key in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND"):
        hdr.remove(key, ignore_missing=True)
    img, notes = first.values, first.comments
    hdr["ORIGIN"] = ("STScI/MAST", "institution responsible for creating this file")
    hdr["DATE"] = (creation_date(), "file creation date.")
    for key in ("CAMERA", "CCD"):
        if key in img:
            hdr[key] = (img[key], notes.get(key, ""))
    if sector is not None:
        hdr["SECTOR"] = (int(sector), "Observing sector")
    elif first.sector is not None:
        hdr["SECTOR"] = (first.sector, "Observing sector")
    for key in ("TSTART", "DATE-OBS"):  # cutout writers need them; take ext 1's if the primary lacks them
        if key not in hdr and key in img:
            hdr[key] = (img[key], notes.get(key, ""))
    for key in ("DATE-END", "TSTOP"):
        if key in last_record:
            hdr[key] = last_record[key]
    hdr["EXTNAME"] = "PRIMARY"
    return fits.PrimaryHDU(header=hdr).header


def cube_header_bytes(primary, n_ffi: int, shape: tuple[int, int]) -> bytes:
    """Primary header and cube image header, padded, as bytes; the cube data start right after them."""
    image = [
        format_card("XTENSION", "IMAGE", "Image extension"),
        format_card("BITPIX", -32, "array data type"),
        format_card("NAXIS", 4, "number of array dimensions"),
        format_card("NAXIS1", 2),
        format_card("NAXIS2", n_ffi),
        format_card("NAXIS3", shape[1]),
        format_card("NAXIS4", shape[0]),
        format_card("PCOUNT", 0, "number of parameters"),
        format_card("GCOUNT", 1, "number of groups"),
    ]
    return primary.tostring(padding=True).encode("ascii") + header_block(image)
