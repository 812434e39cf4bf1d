"""The celestial WCS of TESS cubes and of their cutouts, in numpy.

* Which FFI's WCS a cube's cutouts use (:func:`cube_wcs_row`: the row of the cube's FFI table nearest the middle
  with a usable SIP WCS), that row's WCS as a numpy :class:`TanSip` (no astropy import; astropy's ``WCS`` on
  demand) and its physical (CCD) origin.
* The linear TAN WCS of a cutout fitted to the SIP WCS (:func:`fit_linear_tan`) with its residuals.

Pixel conventions: 0-based (``origin=0``) unless stated, ``x`` = CCD column, ``y`` = CCD row; sky coordinates are
ICRS degrees.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..core.tansip import TanSip, _astropy_wcs

# ------------------------------------------------------------------------------------------ the cube's WCS


_WCS_KEY = re.compile(
    r"^(WCSAXES|CRPIX[12]|CRVAL[12]|CTYPE[12]|CUNIT[12]|CDELT[12]|PC[12]_[12]|CD[12]_[12]|"
    r"LONPOLE|LATPOLE|RADESYS|EQUINOX|(A|B|AP|BP)_ORDER|(A|B|AP|BP)_\d+_\d+)$"
)
WCS_FLAG_COLUMN = "WCS_OK"


def cube_wcs_row(table: dict[str, np.ndarray], name: str = "cube") -> int:
    """Index of the FFI whose WCS the cutouts use: the row nearest ``n // 2`` with a SIP WCS.

    A row qualifies when ``CTYPE2 == 'DEC--TAN-SIP'``, its CRVAL/CRPIX are finite, and (skycut cubes) its
    ``WCS_OK`` flag is set. If no row has SIP, plain ``DEC--TAN`` rows are accepted.

    Raises
    ------
    NoWcsKeywordsFoundError
        No row carries a usable celestial WCS (the message names the cube).
    """
    from ..exceptions import NoWcsKeywordsFoundError

    ctype2 = table.get("CTYPE2")
    if ctype2 is None:
        raise NoWcsKeywordsFoundError(f"cube {name!r}: its FFI table has no CTYPE2 column (no WCS)")
    n = len(ctype2)
    ok = np.ones(n, dtype=bool)
    for key in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2"):
        col = table.get(key)
        if col is None or col.dtype.kind not in "fi":
            raise NoWcsKeywordsFoundError(f"cube {name!r}: its FFI table has no numeric {key} column")
        ok &= np.isfinite(col.astype(float))
    if WCS_FLAG_COLUMN in table:
        ok &= np.asarray(table[WCS_FLAG_COLUMN], dtype=bool)
    ctype2 = np.char.strip(np.asarray(ctype2).astype(str))
    for wanted in ("DEC--TAN-SIP", "DEC--TAN"):
        rows = np.flatnonzero(ok & (ctype2 == wanted))
        if rows.size:
            return int(rows[np.argmin(np.abs(rows - n // 2))])
    raise NoWcsKeywordsFoundError(f"cube {name!r}: no FFI in its table has a usable celestial (TAN) WCS")


def sip_wcs_from_row(table: dict[str, np.ndarray], row: int, cube_shape: tuple[int, ...] | None = None):
    """Build an astropy ``WCS`` (SIP kept) from the WCS keywords of one row of the cube's FFI table.

    ``cube_shape`` (numpy ``(nrows, ncols, ...)``) sets ``pixel_shape = (ncols, nrows)``.
    """
    header = wcs_header_from_row(table, row)
    if cube_shape is not None:
        header["NAXIS1"], header["NAXIS2"] = int(cube_shape[1]), int(cube_shape[0])
    return _astropy_wcs(header)


def physical_origin(
    table: dict[str, np.ndarray], row: int
) -> tuple[float, float, float, float, float, float]:
    """``(CRVAL1P, CRPIX1P, CDELT1P, CRVAL2P, CRPIX2P, CDELT2P)`` of the FFI's physical (CCD) WCS.

    Missing keywords default to 1, so a full SPOC FFI maps 0-based pixel ``x`` to CCD column ``x + 1``; a
    windowed FFI with ``CRVAL1P = x0 + 1`` maps it to ``x + x0 + 1``.
    """
    out = []
    for axis in (1, 2):
        for key in (f"CRVAL{axis}P", f"CRPIX{axis}P", f"CDELT{axis}P"):
            col = table.get(key)
            value = col[row] if col is not None and col.dtype.kind in "fiu" else 1.0
            out.append(float(value) if np.isfinite(value) else 1.0)
    return tuple(out)


def wcs_header_from_row(table: dict[str, np.ndarray], row: int) -> dict[str, Any]:
    """Return the celestial WCS keywords (SIP included) of one row of the cube's FFI table, as a dict."""
    header: dict[str, Any] = {}
    for key in table:
        if not _WCS_KEY.match(key):
            continue
        col = table[key]  # only the WCS columns are decoded (a cube's table decodes columns when used)
        value = col[row]
        if isinstance(value, str | np.str_):
            if value.strip():
                header[key] = str(value).strip()
        elif isinstance(value, np.bool_):
            continue
        elif np.isfinite(value):
            header[key] = int(value) if col.dtype.kind in "iu" else float(value)
    return header


def cube_wcs_from_row(table: dict[str, np.ndarray], row: int, cube_shape: tuple[int, ...] | None = None):
    """Build the cube's WCS from one table row.

    Parameters
    ----------
    table : dict of str to ndarray
        The cube's FFI table, column by column.
    row : int
        The row whose WCS keywords are used.
    cube_shape : tuple of int, optional
        The cube's numpy shape ``(nrows, ncols, ...)``; records the image size (``NAXIS1 = ncols``,
        ``NAXIS2 = nrows``).

    Returns
    -------
    TanSip or astropy.wcs.WCS
        A numpy :class:`TanSip` for TAN(-SIP) headers (TESS FFIs), otherwise an astropy ``WCS``.
    """
    header = wcs_header_from_row(table, row)
    if cube_shape is not None:
        header["NAXIS1"], header["NAXIS2"] = int(cube_shape[1]), int(cube_shape[0])
    return TanSip(header) if TanSip.supports(header) else _astropy_wcs(header)
