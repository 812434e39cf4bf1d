"""Pure helpers for FITS image cutouts.

Checks of the options (re-exported from :mod:`skycut.core.geometry`), extension selection, the
truncated-file check (:func:`check_complete`), celestial WCS, pixel positions, cutout limits, and the headers
of the output HDUs. Used by :mod:`skycut.image.fits_cutout` and
:mod:`skycut.image.fits_batch`.

Conventions as in :mod:`skycut.core.geometry`: 0-based pixels, ``x`` = column = FITS axis 1, ``y`` = row.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from .. import __version__
from ..core.fits_bytes import format_card
from ..core.geometry import ROUNDING_METHODS as ROUNDING_METHODS
from ..core.geometry import check_fill_value as check_fill_value
from ..core.geometry import check_rounding_method as check_rounding_method
from ..core.geometry import cutout_limits
from ..core.provenance import creation_date
from ..core.remote import is_remote, truncated_error
from ..exceptions import DataWarning, InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS

ORIGIN = "skycut"
# primary-WCS keywords of the original header, replaced by the cutout WCS (alternate WCSs are shifted instead)
_WCS_KEY = re.compile(
    r"^(WCSAXES|WCSNAME|CRPIX\d|CRVAL\d|CDELT\d|CUNIT\d|CTYPE\d|CROTA\d|CD\d_\d|PC\d_\d|CD0\d0\d|PC0\d0\d|"
    r"PV\d_\d+|PS\d_\d+|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|"
    r"[AB]P?_ORDER|[AB]P?_\d+_\d+|[AB]_DMAX|CRDER\d|CSYER\d)$"
)
_DISTORTION_KEY = re.compile(r"^(CPDIS\d|CPERR\d|DP\d|D2IMDIS\d|D2IM\d|D2IMERR\d|D2IMEXT|NPOLEXT)")
_ARCHAIC = re.compile(r"^(PC|CD)0*(\d)0*(\d)$")
_ALT_CRPIX = re.compile(r"^CRPIX([12])([A-Z])$")
_PHYSICAL_KEYS = frozenset(
    {
        "WCSNAME",
        "WCSAXES",
        "CTYPE1",
        "CTYPE2",
        "CUNIT1",
        "CUNIT2",
        "CRPIX1",
        "CRPIX2",
        "CRVAL1",
        "CRVAL2",
        "CDELT1",
        "CDELT2",
    }
)
_STRUCTURAL = frozenset(
    {
        "SIMPLE",
        "XTENSION",
        "BITPIX",
        "NAXIS",
        "EXTEND",
        "PCOUNT",
        "GCOUNT",
        "GROUPS",
        "BSCALE",
        "BZERO",
        "BLANK",
        "CHECKSUM",
        "DATASUM",
        "ZIMAGE",
        "EXTNAME",
        "EXTVER",
        "INHERIT",
        "FILENAME",
    }
)


def input_name(path: Any) -> str:
    """Return the string an input file is known by: a ``str`` as given, a path-like as ``str(Path(path))``.

    Raises
    ------
    InvalidInputError
        ``path`` is neither a str nor path-like.
    """
    if isinstance(path, str):
        return path
    if hasattr(path, "__fspath__"):
        return str(Path(path))
    raise InvalidInputError(
        f"input file must be a str, pathlib.Path, https:// URL or s3:// URI, got {path!r}"
    )


def input_stem(name: str) -> str:
    """File-name stem of a local path or URL (``.../hst_f606w_drz.fits?x=1`` -> ``hst_f606w_drz``)."""
    if is_remote(name):
        return PurePosixPath(urlparse(name).path).stem or "remote"
    return Path(name).stem


def _modernize(header: fits.Header) -> fits.Header:
    """Rename archaic ``PC00i00j``/``CD00i00j`` keywords of ``header`` to ``PCi_j``/``CDi_j``.

    Returns a copy if any was renamed; the header itself otherwise.
    """
    if not any(_ARCHAIC.match(k) and "_" not in k for k in header.keys()):
        return header
    out = header.copy()
    for key in list(out.keys()):
        m = _ARCHAIC.match(key)
        if m and "_" not in key and f"{m[1]}{m[2]}_{m[3]}" not in out:
            out.rename_keyword(key, f"{m[1]}{m[2]}_{m[3]}")
    return out


def celestial_wcs(header: fits.Header, hdulist: fits.HDUList | None = None) -> WCS | None:
    """Return the celestial WCS of an image header, or None.

    SIP is kept; lookup-table distortions (``CPDISj``, ``D2IMDISj``) are kept when ``hdulist``, the open file
    of ``header``, holds their ``WCSDVARR``/``D2IMARR`` extensions (and dropped otherwise).

    Parameters
    ----------
    header : astropy.io.fits.Header
        The image header (archaic ``PC00i00j``/``CD00i00j`` keywords are understood).
    hdulist : astropy.io.fits.HDUList, optional
        The open file of ``header``; only used for headers with lookup-table distortions.

    Returns
    -------
    astropy.wcs.WCS or None
        A 2-D celestial WCS, or None when the header has none (or it cannot be parsed).
    """
    from astropy.wcs import WCS, FITSFixedWarning

    header = _modernize(header)
    lookup = hdulist is not None and any(f"{k}{j}" in header for k in ("CPDIS", "D2IMDIS") for j in (1, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, hdulist, relax=True) if lookup else WCS(header, relax=True)
        except Exception:
            header = header.copy()
            for key in [k for k in header.keys() if _DISTORTION_KEY.match(k)]:
                header.remove(key, ignore_missing=True, remove_all=True)
            try:
                wcs = WCS(header, relax=True)
            except Exception:
                return None
    if not wcs.has_celestial:
        return None
    if wcs.naxis == 2 and wcs.wcs.lng == 0 and wcs.wcs.lat == 1:
        return wcs
    cel = wcs.celestial
    return cel if cel.naxis == 2 else None


def celestial_wcs_lookup(hdulist: fits.HDUList) -> Callable[[int], WCS | None]:
    """Return ``wcs_of(index)``: the :func:`celestial_wcs` of HDU ``index`` of ``hdulist``, each parsed once.

    The function caches its results; it serves as :func:`select_extensions`'s ``wcs_of``.
    """
    cache: dict[int, WCS | None] = {}

    def wcs_of(i: int) -> WCS | None:
        if i not in cache:
            cache[i] = celestial_wcs(hdulist[i].header, hdulist)
        return cache[i]

    return wcs_of


def world_to_pixel(wcs: WCS, coords: SkyCoord) -> list[tuple[float, float]]:
    """0-based pixel ``(x, y)`` of ``coords`` (array SkyCoord) in a celestial ``wcs`` (SIP applied).

    Coordinates are transformed to the WCS's celestial frame first (nothing to do for ICRS images). Points
    for which the SIP inversion diverges (far off the image) get NaN, i.e. "not on this image".
    """
    from astropy.coordinates import ICRS
    from astropy.wcs import NoConvergence
    from astropy.wcs.utils import wcs_to_celestial_frame

    try:
        frame = wcs_to_celestial_frame(wcs)
    except Exception:
        frame = ICRS()
    if isinstance(frame, ICRS):
        lon, lat = coords.ra.deg, coords.dec.deg
    else:
        sph = coords.transform_to(frame).spherical
        lon, lat = sph.lon.deg, sph.lat.deg
    world = (lon, lat) if wcs.wcs.lng == 0 else (lat, lon)
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            x, y = wcs.all_world2pix(*world, 0)
        except NoConvergence as exc:
            sol = np.array(exc.best_solution, dtype=float)
            if exc.divergent is not None:
                sol[np.asarray(exc.divergent, dtype=int)] = np.nan
            x, y = sol[:, 0], sol[:, 1]
    return [(float(a), float(b)) for a, b in zip(np.atleast_1d(x), np.atleast_1d(y), strict=True)]


def _is_image_with_data(hdu: Any) -> bool:
    from astropy.io import fits

    if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
        return False
    h = hdu.header
    naxis = h.get("NAXIS", 0)
    return naxis >= 2 and all(h.get(f"NAXIS{i}", 0) > 0 for i in range(1, naxis + 1))


def select_extensions(hdul: fits.HDUList, extension: Any, name: str, wcs_of: Any = None) -> list[int]:
    """Return the indices of the HDUs to cut.

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The open file.
    extension : None, "all", int, str, tuple, or list of those
        ``None``: every image HDU with data and a celestial WCS; ``"all"``: every image HDU with data; an int
        or an EXTNAME (or ``(EXTNAME, EXTVER)``); or a list of those (missing ones -> DataWarning).
    name : str
        The file's name, for messages.
    wcs_of : callable, optional
        ``wcs_of(index)`` returns the celestial WCS of an HDU (default :func:`celestial_wcs` of its header).

    Returns
    -------
    list of int
        HDU indices, in order, without duplicates.

    Raises
    ------
    InvalidInputError
        No HDU qualifies, a single requested extension is missing, or a requested one is not an image with
        data.
    """
    hdus = list(hdul)
    if wcs_of is None:

        def wcs_of(i: int) -> WCS | None:
            return celestial_wcs(hdus[i].header, hdul)

    if extension is None or (isinstance(extension, str) and extension.lower() == "all"):
        idx = [i for i, h in enumerate(hdus) if _is_image_with_data(h)]
        if extension is None:
            idx = [i for i in idx if wcs_of(i) is not None]
            if not idx:
                raise InvalidInputError(f"{name} has no image HDU with data and a celestial WCS")
        elif not idx:
            raise InvalidInputError(f"{name} has no image HDU with data")
        return idx
    wanted = extension if isinstance(extension, list) else [extension]
    idx: list[int] = []
    for ext in wanted:
        try:
            if isinstance(ext, (int, np.integer)) and not isinstance(ext, bool):
                i = int(ext)
                hdus[i]  # noqa: B018 - IndexError if missing
                i = i % len(hdus)
            elif isinstance(ext, (str, tuple)):
                i = hdul.index_of(ext)
            else:
                raise InvalidInputError(
                    f"extension {ext!r} must be an int, an EXTNAME, a list of those, or 'all'"
                )
        except (KeyError, IndexError):
            if len(wanted) == 1:
                raise InvalidInputError(f"{name} has no extension {ext!r}") from None
            warnings.warn(f"{name} has no extension {ext!r}; skipped", DataWarning, stacklevel=3)
            continue
        if not _is_image_with_data(hdus[i]):
            raise InvalidInputError(f"extension {ext!r} of {name} is not an image HDU with data")
        if i not in idx:
            idx.append(i)
    if not idx:
        raise InvalidInputError(f"{name} has none of the extensions {wanted!r}")
    return idx


def check_complete(handle: Any, index: int) -> None:
    """Raise an error naming the file if it ends before the data of HDU ``index`` do (a truncated file).

    Parameters
    ----------
    handle : skycut.core.fits_open.FITSHandle
        The opened file (local or remote). Whole-file compressed files (their offsets refer to the decompressed
        stream) and tile-compressed HDUs (their header describes the image, not the stored table) are not checked.
    index : int
        The HDU about to be read.

    Raises
    ------
    InvalidInputError
        ``"FITS file '<name>' is truncated: its headers need N bytes, the file has M"``.
    """
    from astropy.io import fits

    hdu = handle.hdul[index]
    if not handle.plain or isinstance(
        hdu, fits.CompImageHDU
    ):  # a tile-compressed image's header is the image's
        return
    header = hdu.header
    try:
        start = handle.data_offset(index)
        axes = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, int(header.get("NAXIS", 0)) + 1)]
        if header.get("GROUPS") and axes and axes[0] == 0:  # random groups: NAXIS1 = 0 does not count
            axes = axes[1:]
        count = int(np.prod(axes, dtype=np.int64)) if axes else 0
        nbytes = (
            abs(int(header["BITPIX"]))
            // 8
            * int(header.get("GCOUNT", 1))
            * (int(header.get("PCOUNT", 0)) + count)
        )
    except Exception:  # noqa: BLE001 - an odd header: astropy reports it when reading
        return
    size = handle.size()  # a remote file's size is known from opening it
    if size < start + nbytes:
        raise truncated_error(handle.name, start + nbytes, size)


def linearize_asinh(data: np.ndarray, header: fits.Header) -> np.ndarray:
    """Undo Pan-STARRS asinh scaling: ``BOFFSET + BSOFTEN * 2 sinh(data * 0.4 ln 10)``."""
    x = np.asarray(data, dtype=np.float64) * (0.4 * math.log(10.0))
    out = header["BOFFSET"] + header["BSOFTEN"] * 2.0 * np.sinh(x)
    return out.astype(data.dtype if data.dtype.kind == "f" else np.float64, copy=False)


def cutout_header(
    original: fits.Header,
    wcs: WCS,
    xmin: int,
    ymin: int,
    *,
    orig_file: str,
    orig_ext: int,
    linearized: bool = False,
    empty: bool = False,
) -> fits.Header:
    """Build the header of a ``CUTOUT`` HDU.

    The original keywords with the WCS replaced by ``wcs`` (already shifted by ``(xmin, ymin)``), alternate
    WCSs shifted, a physical WCS, and the provenance keywords.

    Parameters
    ----------
    original : astropy.io.fits.Header
        Header of the original extension.
    wcs : astropy.wcs.WCS
        The cutout's WCS (already shifted).
    xmin, ymin : int
        0-based original column and row of the cutout's pixel ``(0, 0)``.
    orig_file : str
        ``ORIG_FLE`` value (the original's ``FILENAME`` card takes precedence).
    orig_ext : int
        ``ORIG_EXT`` value: the extension's index in the original file.
    linearized : bool
        The data were linearised from Pan-STARRS asinh scaling (``BSOFTEN``/``BOFFSET`` dropped, a
        ``HISTORY`` card added).
    empty : bool
        Add ``EMPTY = T``.

    Returns
    -------
    astropy.io.fits.Header
    """
    from astropy.wcs import FITSFixedWarning

    naxis = original.get("NAXIS", 0)
    drop = _STRUCTURAL | {f"NAXIS{i}" for i in range(1, naxis + 1)}
    if linearized:
        drop = drop | {"BSOFTEN", "BOFFSET"}
    cards: list[Any] = []
    # a DSS plate solution (which astropy and DS9 prefer) maps pixels through the plate corner CNPIX: keep the
    # original's own WCS cards with CNPIX and CRPIX shifted (wcslib's translation of it does not read back)
    dss = "PLTRAH" in original and "AMDX1" in original and "CNPIX1" in original and "CNPIX2" in original
    for card in _modernize(original).cards:
        key = card.keyword
        if dss and key in ("CNPIX1", "CNPIX2", "CRPIX1", "CRPIX2") and isinstance(card.value, (int, float)):
            shift = xmin if key.endswith("1") else ymin
            cards.append((key, card.value + (shift if key.startswith("CN") else -shift), card.comment))
            continue
        if dss and _WCS_KEY.match(key) and key not in drop:
            cards.append(card)
            continue
        if key in drop or _WCS_KEY.match(key) or _DISTORTION_KEY.match(key) or key.startswith(("LTV", "LTM")):
            continue
        m = _ALT_CRPIX.match(key)
        if m and m[2] != "P" and isinstance(card.value, (int, float)):  # shift alternate WCSs too
            card = (key, card.value - (xmin if m[1] == "1" else ymin), card.comment)
        elif m or key.endswith("P") and key[:-1] in _PHYSICAL_KEYS:  # our physical WCS replaces any old one
            continue
        cards.append(card)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs_header = wcs.to_header(relax=True)
    if wcs.sip is not None and not wcs_header.get("CTYPE1", "").endswith("-SIP"):  # keep SIP explicitly
        wcs_header["CTYPE1"] = wcs_header["CTYPE1"] + "-SIP"
        wcs_header["CTYPE2"] = wcs_header["CTYPE2"] + "-SIP"
    # DATE-OBS once: the original's card as written (an old-style '02/01/95' too), never wcslib's ISO echo of it
    added_by_wcslib = {"MJD-OBS", "DATEREF", "MJDREF"} - set(original.keys()) | {"DATE-OBS"}
    if not dss:
        cards += [c for c in wcs_header.cards if c.keyword not in added_by_wcslib]
        cards += lookup_tables(wcs)[0]
    # physical coordinates: pixel (1-based) in the original image, as IRAF LTV/LTM and an alternate WCS "P"
    for axis, lo in (("1", xmin), ("2", ymin)):
        cards.append((f"LTV{axis}", float(original.get(f"LTV{axis}", 0.0)) - lo, "IRAF physical offset"))
        cards.append(
            (f"LTM{axis}_{axis}", float(original.get(f"LTM{axis}_{axis}", 1.0)), "IRAF physical scale")
        )
    cards += [("WCSNAMEP", "PHYSICAL", "pixel coordinates in the original image"), ("WCSAXESP", 2, "")]
    for axis, lo, ctype in (("1", xmin, "RAWX"), ("2", ymin, "RAWY")):
        cards += [
            (f"CTYPE{axis}P", ctype, ""),
            (f"CUNIT{axis}P", "PIXEL", ""),
            (f"CRPIX{axis}P", 1.0, ""),
            (f"CRVAL{axis}P", float(lo + 1), "original 1-based pixel of cutout pixel 1"),
            (f"CDELT{axis}P", 1.0, ""),
        ]
    filename = original.get("FILENAME")
    cards += [
        ("EXTNAME", "CUTOUT", ""),
        ("O_EXT_NM", original.get("EXTNAME"), "Original extension name."),
        orig_file_card(filename if filename else orig_file),
        ("ORIG_EXT", orig_ext, "Extension in original file."),
    ]
    if linearized:
        cards.append(
            (
                "HISTORY",
                f"Asinh-scaled data linearised with BSOFTEN={original['BSOFTEN']}, "
                f"BOFFSET={original['BOFFSET']} (keywords removed).",
            )
        )
    if empty:
        cards.append(("EMPTY", True, "Indicates no data in cutout image."))
    return header_from_cards(cards)


_LOOKUP_REFS = (("DP", "WCSDVARR"), ("D2IM", "D2IMARR"))


def lookup_tables(wcs: WCS) -> tuple[list[Any], list[fits.ImageHDU]]:
    """Return the lookup-table distortions of ``wcs`` (``cpdis1/2``, ``det2im1/2``) as FITS.

    Returns
    -------
    cards : list
        The header cards (``CPDISj``/``DPj``, ``D2IMDISj``/``D2IMj``, written by astropy's ``WCS.to_fits``).
    tables : list of astropy.io.fits.ImageHDU
        The ``WCSDVARR`` and ``D2IMARR`` extensions they reference (``EXTVER`` 1 and 2, see
        :func:`number_lookup_tables`). ``([], [])`` for a WCS without them.
    """
    if all(getattr(wcs, name, None) is None for name in ("cpdis1", "cpdis2", "det2im1", "det2im2")):
        return [], []
    from astropy.wcs import FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        hdulist = wcs.to_fits(relax=True)
    cards = [
        c
        for c in hdulist[0].header.cards
        if c.keyword.split(".")[0].rstrip("12") in ("CPDIS", "DP", "D2IMDIS", "D2IM")
    ]
    return cards, list(hdulist[1:])


def number_lookup_tables(header: fits.Header, tables: list[fits.ImageHDU], counters: dict[str, int]) -> None:
    """Assign one cutout's lookup-table extensions their ``EXTVER``s within the output file, in place.

    Gives ``tables`` (one cutout's :func:`lookup_tables` extensions) the next free ``EXTVER`` of their
    ``EXTNAME`` in the output file (``counters``: the last one used per EXTNAME, updated) and points the
    cutout's ``header`` (``DPj.EXTVER``, ``D2IMj.EXTVER``) at them; both are changed in place.
    """
    new = {}
    for hdu in tables:
        counters[hdu.name] = counters.get(hdu.name, 0) + 1
        new[(hdu.name, int(hdu.ver))] = counters[hdu.name]
    for hdu in tables:
        hdu.ver = new[(hdu.name, int(hdu.ver))]
    for prefix, extname in _LOOKUP_REFS:
        for axis in (1, 2):
            key = f"{prefix}{axis}.EXTVER"
            if key in header:
                header[key] = new[(extname, int(header[key]))]


def header_from_cards(cards: list[Any]) -> fits.Header:
    """Build a Header from astropy Cards, 80-character card images and ``(key, value, comment)`` tuples.

    Cards and card images are kept as they are; tuples are formatted by
    :func:`skycut.core.fits_bytes.format_card`. The header is built by parsing one string (much faster than
    appending cards one by one, which re-reads astropy's configuration per card).
    """
    from astropy.io import fits

    images = (
        format_card(*c) if isinstance(c, tuple) else c if isinstance(c, str) else c.image for c in cards
    )
    return fits.Header.fromstring("".join(images))


def orig_file_card(value: str) -> str:
    """Format the ``ORIG_FLE`` card; its comment is dropped when value and comment do not fit in one card."""
    comment = "Original image filename."
    if len(value) + len(comment) > 80 - 16:
        comment = ""
    return format_card("ORIG_FLE", value, comment)


def primary_hdu(coordinate: SkyCoord) -> fits.PrimaryHDU:
    """Build the data-less primary HDU of a cutout file (``ORIGIN, DATE, PROCVER, RA_OBJ, DEC_OBJ``)."""
    from astropy.io import fits

    ra, dec = float(coordinate.ra.deg), float(coordinate.dec.deg)
    cards = [
        ("SIMPLE", True, "conforms to FITS standard"),
        ("BITPIX", 8, "array data type"),
        ("NAXIS", 0, "number of array dimensions"),
        ("EXTEND", True, ""),
        ("ORIGIN", ORIGIN, "institution responsible for creating this file"),
        ("DATE", creation_date(), "file creation date"),
        ("PROCVER", __version__, "software version"),
        ("RA_OBJ", ra, "[deg] right ascension"),
        ("DEC_OBJ", dec, "[deg] declination"),
    ]
    return fits.PrimaryHDU(header=header_from_cards(cards))


def is_empty(block: np.ndarray) -> bool:
    """Return True if ``block`` holds no data: no pixels, or all NaN or zero (all zero for integer data)."""
    if block.size == 0:
        return True
    if block.dtype.kind == "f":
        return bool(np.all(np.isnan(block) | (block == 0)))
    return not np.any(block)


def rounded_limits(center_xy: tuple[float, float], shape_xy: tuple[int, int], method: str) -> np.ndarray:
    """Return half-open limits ``[[xmin, xmax], [ymin, ymax]]`` (0-based) of a box around ``center_xy``.

    This is :func:`skycut.core.geometry.cutout_limits`; ``method`` rounds ``x - n/2`` as astrocut's
    ``limit_rounding_method`` does.
    """
    return cutout_limits(center_xy, shape_xy, method)
