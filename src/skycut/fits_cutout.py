"""Cutouts from FITS images: :class:`FITSCutout`, and the functional :func:`fits_cut` and :func:`img_cut`.

Conventions (see :mod:`skycut.geometry`): pixels are 0-based, ``x`` is the column (FITS axis 1) and ``y``
the row (FITS axis 2); ``cutout_size=[200, 300]`` gives FITS dimensions ``(200, 300)``, i.e. numpy arrays of
shape ``(300, 200)``. A cutout of ``nx`` pixels centred on pixel coordinate ``x`` spans the original columns
``floor(x - nx/2 + 0.5) ... + nx - 1``; parts outside the image are filled with ``fill_value``.

Only the needed rows are read: local files are memory-mapped, tile-compressed HDUs are read through
``hdu.section`` (only the needed tiles are decompressed) and remote (https/s3) files are read as byte ranges
(:mod:`skycut.remote`).

Output layout (as astrocut 1.4.0): a ``PRIMARY`` HDU without data carrying ``ORIGIN``, ``DATE``, ``PROCVER``,
``RA_OBJ`` and ``DEC_OBJ``, then one ``CUTOUT`` image HDU per (file, extension) cutout, whose header is the
original extension's header with the WCS replaced by the cutout's (SIP kept, ``CRPIX`` shifted), plus
``O_EXT_NM``, ``ORIG_FLE``, ``ORIG_EXT`` and, for kept empty cutouts, ``EMPTY = T``. Unlike astrocut, skycut
also writes a physical alternate WCS (``WCSNAMEP = 'PHYSICAL'``, ``CRVAL1P`` = original 1-based column of
cutout column 1) and IRAF ``LTV1/LTV2``, and shifts ``CRPIX`` of any other alternate WCS.

Several coordinates (astrocut keeps only the first): every coordinate is cut from every file. With
``single_outfile=True`` there is one HDUList (and one file) per coordinate holding the cutouts of all files;
with ``single_outfile=False`` one per (file, coordinate).
"""

from __future__ import annotations

import io
import logging
import math
import re
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from . import __version__
from .atomic import atomic_output, write_bytes
from .exceptions import DataWarning, InvalidInputError, InvalidQueryError
from .geometry import (
    cutout_basename,
    cutout_limits,
    extract_padded,
    overlap,
    parse_coordinates,
    parse_size_input,
    shifted_wcs,
    size_in_pixels,
    size_label,
)
from .remote import is_remote, open_fits_handle

if TYPE_CHECKING:  # pragma: no cover
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS
    from PIL import Image

log = logging.getLogger(__name__)

ORIGIN = "skycut"
_ROUNDING = ("round", "ceil", "floor")
# primary-WCS keywords of the original header, replaced by the cutout WCS (alternate WCSs are shifted instead)
_WCS_KEY = re.compile(
    r"^(WCSAXES|WCSNAME|CRPIX\d|CRVAL\d|CDELT\d|CUNIT\d|CTYPE\d|CROTA\d|CD\d_\d|PC\d_\d|CD0\d0\d|PC0\d0\d|"
    r"PV\d_\d+|PS\d_\d+|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|"
    r"[AB]P?_ORDER|[AB]P?_\d+_\d+|[AB]_DMAX|CRDER\d|CSYER\d)$"
)
_DISTORTION_KEY = re.compile(r"^(CPDIS\d|CPERR\d|DP\d|D2IMDIS\d|D2IM\d|D2IMERR\d|D2IMEXT|NPOLEXT)")
_ARCHAIC = re.compile(r"^(PC|CD)0*(\d)0*(\d)$")
_ALT_CRPIX = re.compile(r"^CRPIX([12])([A-Z])$")
_PHYSICAL_KEYS = frozenset({"WCSNAME", "WCSAXES", "CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRPIX1", "CRPIX2",
                            "CRVAL1", "CRVAL2", "CDELT1", "CDELT2"})
_STRUCTURAL = frozenset({"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "GROUPS", "BSCALE",
                         "BZERO", "BLANK", "CHECKSUM", "DATASUM", "ZIMAGE", "EXTNAME", "EXTVER", "INHERIT",
                         "FILENAME"})


# ----------------------------------------------------------------------------------------------- helpers


def _input_name(path: Any) -> str:
    if isinstance(path, str):
        return path
    if hasattr(path, "__fspath__"):
        return str(Path(path))
    raise InvalidInputError(f"input file must be a str, pathlib.Path, https:// URL or s3:// URI, got {path!r}")


def input_stem(name: str) -> str:
    """File-name stem of a local path or URL (``.../hst_f606w_drz.fits?x=1`` -> ``hst_f606w_drz``)."""
    if is_remote(name):
        return PurePosixPath(urlparse(name).path).stem or "remote"
    return Path(name).stem


def _modernize(header: fits.Header) -> fits.Header:
    """``header`` with archaic ``PC00i00j``/``CD00i00j`` keywords renamed to ``PCi_j``/``CDi_j`` (a copy if any
    was renamed; the header itself otherwise)."""
    if not any(_ARCHAIC.match(k) and "_" not in k for k in header.keys()):
        return header
    out = header.copy()
    for key in list(out.keys()):
        m = _ARCHAIC.match(key)
        if m and "_" not in key and f"{m[1]}{m[2]}_{m[3]}" not in out:
            out.rename_keyword(key, f"{m[1]}{m[2]}_{m[3]}")
    return out


def celestial_wcs(header: fits.Header) -> WCS | None:
    """The celestial WCS of an image header (SIP kept; lookup-table distortions ignored), or None."""
    from astropy.wcs import WCS, FITSFixedWarning

    header = _modernize(header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, relax=True)
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


def select_extensions(hdul: fits.HDUList, extension: Any, name: str,
                      wcs_of: Any = None) -> list[int]:
    """Indices of the HDUs to cut.

    ``None``: every image HDU with data and a celestial WCS; ``"all"``: every image HDU with data; an int or
    an EXTNAME (or ``(EXTNAME, EXTVER)``); or a list of those (missing ones -> DataWarning).
    ``wcs_of(index)`` returns the celestial WCS of an HDU (default :func:`celestial_wcs` of its header).
    """
    hdus = list(hdul)
    if wcs_of is None:
        def wcs_of(i: int) -> WCS | None:
            return celestial_wcs(hdus[i].header)
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
                raise InvalidInputError(f"extension {ext!r} must be an int, an EXTNAME, a list of those, or 'all'")
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


def linearize_asinh(data: np.ndarray, header: fits.Header) -> np.ndarray:
    """Undo Pan-STARRS asinh scaling: ``BOFFSET + BSOFTEN * 2 sinh(data * 0.4 ln 10)``."""
    x = np.asarray(data, dtype=np.float64) * (0.4 * math.log(10.0))
    out = header["BOFFSET"] + header["BSOFTEN"] * 2.0 * np.sinh(x)
    return out.astype(data.dtype if data.dtype.kind == "f" else np.float64, copy=False)


def cutout_header(original: fits.Header, wcs: WCS, xmin: int, ymin: int, *, orig_file: str, orig_ext: int,
                  linearized: bool = False, empty: bool = False) -> fits.Header:
    """The header of a ``CUTOUT`` HDU: the original keywords with the WCS replaced by ``wcs`` (already
    shifted by ``(xmin, ymin)``), alternate WCSs shifted, a physical WCS, and the provenance keywords."""
    from astropy.io import fits
    from astropy.wcs import FITSFixedWarning

    naxis = original.get("NAXIS", 0)
    drop = _STRUCTURAL | {f"NAXIS{i}" for i in range(1, naxis + 1)}
    if linearized:
        drop = drop | {"BSOFTEN", "BOFFSET"}
    cards: list[Any] = []
    for card in _modernize(original).cards:
        key = card.keyword
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
    added_by_wcslib = {"MJD-OBS", "DATE-OBS", "DATEREF", "MJDREF"} - set(original.keys())
    cards += [c for c in wcs_header.cards if c.keyword not in added_by_wcslib]
    # physical coordinates: pixel (1-based) in the original image, as IRAF LTV/LTM and an alternate WCS "P"
    for axis, lo in (("1", xmin), ("2", ymin)):
        cards.append((f"LTV{axis}", float(original.get(f"LTV{axis}", 0.0)) - lo, "IRAF physical offset"))
        cards.append((f"LTM{axis}_{axis}", float(original.get(f"LTM{axis}_{axis}", 1.0)), "IRAF physical scale"))
    cards += [("WCSNAMEP", "PHYSICAL", "pixel coordinates in the original image"), ("WCSAXESP", 2, "")]
    for axis, lo, ctype in (("1", xmin, "RAWX"), ("2", ymin, "RAWY")):
        cards += [(f"CTYPE{axis}P", ctype, ""), (f"CUNIT{axis}P", "PIXEL", ""), (f"CRPIX{axis}P", 1.0, ""),
                  (f"CRVAL{axis}P", float(lo + 1), "original 1-based pixel of cutout pixel 1"),
                  (f"CDELT{axis}P", 1.0, "")]
    filename = original.get("FILENAME")
    cards += [("EXTNAME", "CUTOUT", ""),
              ("O_EXT_NM", original.get("EXTNAME"), "Original extension name."),
              _fitting_card("ORIG_FLE", filename if filename else orig_file, "Original image filename."),
              ("ORIG_EXT", orig_ext, "Extension in original file.")]
    if linearized:
        cards.append(("HISTORY", f"Asinh-scaled data linearised with BSOFTEN={original['BSOFTEN']}, "
                                 f"BOFFSET={original['BOFFSET']} (keywords removed)."))
    if empty:
        cards.append(("EMPTY", True, "Indicates no data in cutout image."))
    return fits.Header(cards)


def _fitting_card(key: str, value: Any, comment: str) -> tuple[str, Any, str]:
    """A card whose comment is dropped when value and comment would not fit in 80 characters."""
    if isinstance(value, str) and len(value) + len(comment) > 80 - 16:
        comment = ""
    return key, value, comment


def primary_hdu(coordinate: SkyCoord) -> fits.PrimaryHDU:
    """The data-less primary HDU of a cutout file (``ORIGIN, DATE, PROCVER, RA_OBJ, DEC_OBJ``)."""
    from astropy.io import fits

    ra, dec = float(coordinate.ra.deg), float(coordinate.dec.deg)
    cards = [("SIMPLE", True, "conforms to FITS standard"), ("BITPIX", 8, "array data type"),
             ("NAXIS", 0, "number of array dimensions"), ("EXTEND", True, ""),
             ("ORIGIN", ORIGIN, "institution responsible for creating this file"),
             ("DATE", str(date.today()), "file creation date"),
             ("PROCVER", __version__, "software version"),
             ("RA_OBJ", ra, "[deg] right ascension"), ("DEC_OBJ", dec, "[deg] declination")]
    return fits.PrimaryHDU(header=fits.Header(cards))


def _is_empty(block: np.ndarray) -> bool:
    if block.size == 0:
        return True
    if block.dtype.kind == "f":
        return bool(np.all(np.isnan(block) | (block == 0)))
    return not np.any(block)


def _rounded_limits(center_xy: tuple[float, float], shape_xy: tuple[int, int], method: str) -> np.ndarray:
    """Half-open limits; ``round`` is geometry.cutout_limits, ``floor``/``ceil`` round ``x - n/2`` that way.

    The centre is first rounded to 1e-6 pixel, so that a target on a pixel centre (up to WCS round-off) gives
    a box centred on that pixel for odd sizes."""
    center_xy = tuple(round(float(c), 6) if np.isfinite(c) else c for c in center_xy)
    if method == "round":
        return cutout_limits(center_xy, shape_xy)
    fn = math.floor if method == "floor" else math.ceil
    lims = np.zeros((2, 2), dtype=np.int64)
    for axis in range(2):
        c = float(center_xy[axis])
        if not np.isfinite(c):
            raise InvalidInputError("the cutout centre does not project onto the image (non-finite pixel)")
        lo = int(fn(c - shape_xy[axis] / 2.0 + 0.5))
        lims[axis] = (lo, lo + int(shape_xy[axis]))
    return lims


# ----------------------------------------------------------------------------------------------- cutout


@dataclass
class CutoutInstance:
    """One cutout: the pixels of one extension of one file around one coordinate.

    Attributes
    ----------
    data : ndarray, shape ``(ny, nx)`` (``(..., ny, nx)`` for images with more axes)
    wcs : astropy.wcs.WCS
        Celestial WCS of the cutout (original WCS, SIP kept, ``CRPIX`` shifted by ``(-xmin, -ymin)``).
    limits : ndarray ``[[xmin, xmax], [ymin, ymax]]``
        Half-open box in original 0-based pixels, not clipped to the image.
    original_shape : tuple
        numpy shape of the original image (astrocut calls it ``shape_input``).
    slices_original : (slice, slice)
        ``(rows, columns)`` of the original image that the cutout covers (clipped to the image).
    coordinate : SkyCoord
        The requested centre. ``input_file``, ``extension`` (HDU index) identify the source.
    """

    data: np.ndarray
    wcs: WCS
    limits: np.ndarray
    original_shape: tuple[int, ...]
    slices_original: tuple[slice, slice]
    coordinate: Any
    input_file: str
    extension: int
    aperture: np.ndarray = field(repr=False, default=None)
    empty: bool = False
    coordinate_index: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def shape_input(self) -> tuple[int, ...]:
        return self.original_shape

    @property
    def xmin_original(self) -> int:
        return self.slices_original[1].start

    @property
    def xmax_original(self) -> int:
        """End (exclusive) of the original columns in the cutout, as astrocut reports it."""
        return self.slices_original[1].stop

    @property
    def ymin_original(self) -> int:
        return self.slices_original[0].start

    @property
    def ymax_original(self) -> int:
        return self.slices_original[0].stop


class FITSCutout:
    """Cutouts from one or more FITS images around one or more sky positions (astrocut-compatible).

    Parameters
    ----------
    input_files : str, Path, or list of those
        Local paths, ``https://`` URLs or ``s3://`` URIs.
    coordinates : SkyCoord, str, or list
        Centre(s): ``"ra dec"`` in degrees, sexagesimal strings, SkyCoord (scalar or array). Every coordinate
        is cut from every file.
    cutout_size : int, [nx, ny], Quantity, or str
        Pixels or angular size (``"30 arcsec"``); ``[200, 300]`` gives FITS dimensions (200, 300).
    fill_value : int or float
        Value of pixels outside the image.
    limit_rounding_method : {"round", "ceil", "floor"}
        How the box's lower edge ``x - n/2 + 0.5`` is rounded to a whole pixel.
    extension : None, int, str, list, or "all"
        HDUs to cut; default every image HDU with data and a celestial WCS.
    single_outfile : bool
        One HDUList per coordinate with all files' cutouts, or one per (file, coordinate).
    verbose : bool
        Log progress at DEBUG level to stderr.
    fsspec_kwargs : dict, optional
        Options for remote inputs (see :func:`skycut.remote.storage_options`).
    allow_empty : bool
        Keep cutouts whose pixels are all NaN or zero (marked ``EMPTY = T``) instead of skipping them.

    Raises
    ------
    InvalidInputError
        Unreadable/missing/non-FITS file, no celestial WCS, bad arguments (the message names the file or
        argument).
    InvalidQueryError
        No cutout could be made (every target misses every image, or every cutout is empty).
    """

    def __init__(self, input_files: Any, coordinates: Any, cutout_size: Any = 25, fill_value: float = np.nan,
                 limit_rounding_method: str = "round", extension: Any = None, single_outfile: bool = True,
                 verbose: bool = False, *, fsspec_kwargs: dict | None = None, allow_empty: bool = False):
        if verbose:
            _enable_verbose()
        if isinstance(input_files, (str, Path)) or hasattr(input_files, "__fspath__"):
            input_files = [input_files]
        self.input_files = list(dict.fromkeys(_input_name(f) for f in input_files))  # unique, in order
        if not self.input_files:
            raise InvalidInputError("input_files is empty")
        self.coordinates = parse_coordinates(coordinates)
        # scalar SkyCoords and plain floats, made once (indexing/attribute access on SkyCoord is slow)
        self._coord_list = list(self.coordinates)
        self._radec = list(zip(self.coordinates.ra.deg.tolist(), self.coordinates.dec.deg.tolist(), strict=True))
        self.cutout_size = cutout_size
        self._size = parse_size_input(cutout_size)
        if isinstance(fill_value, bool) or not isinstance(fill_value, (int, float, np.integer, np.floating)):
            raise InvalidInputError(f"fill_value must be an int or float, got {fill_value!r}")
        self.fill_value = fill_value
        if limit_rounding_method not in _ROUNDING:
            raise InvalidInputError(f"limit_rounding_method must be one of {_ROUNDING}, got {limit_rounding_method!r}")
        self.limit_rounding_method = limit_rounding_method
        self.extension = extension
        self.single_outfile = single_outfile
        self.fsspec_kwargs = fsspec_kwargs
        self.allow_empty = allow_empty
        self.cutouts_by_file: dict[str, list[CutoutInstance]] = {}
        self.hdu_cutouts_by_file: dict[str, list[fits.ImageHDU]] = {}
        self._fits_cutouts: list[fits.HDUList] | None = None
        self._image_cutouts: list[Image.Image] | None = None
        self.cutout()

    # -- cutting ---------------------------------------------------------------------------------------

    def cutout(self) -> list[fits.HDUList]:
        """Make every cutout (called by the constructor) and return :attr:`fits_cutouts`."""
        self.cutouts_by_file.clear()
        self.hdu_cutouts_by_file.clear()
        self._fits_cutouts = None
        missed: list[str] = []
        empties: list[str] = []
        for name in self.input_files:
            with open_fits_handle(name, self.fsspec_kwargs) as handle:
                cache: dict[int, WCS | None] = {}

                def wcs_of(i: int, hdul=handle.hdul, cache=cache) -> WCS | None:
                    if i not in cache:
                        cache[i] = celestial_wcs(hdul[i].header)
                    return cache[i]

                for index in select_extensions(handle.hdul, self.extension, name, wcs_of):
                    self._cut_extension(handle, index, wcs_of(index), missed, empties)
        if not any(self.cutouts_by_file.values()):
            reasons = missed + empties
            raise InvalidQueryError("no cutout could be made: " + "; ".join(reasons))
        for text in missed:
            warnings.warn(text + "; skipped", DataWarning, stacklevel=3)
        for text in empties:
            warnings.warn(text + "; skipped (use allow_empty=True to keep it)", DataWarning, stacklevel=3)
        return self.fits_cutouts

    def _cut_extension(self, handle: Any, index: int, wcs: WCS | None, missed: list[str],
                       empties: list[str]) -> None:
        name = handle.name
        hdu = handle.hdul[index]
        header = hdu.header
        if wcs is None:
            single = not isinstance(self.extension, list) and not (
                isinstance(self.extension, str) and self.extension.lower() == "all")
            if single:
                raise InvalidInputError(f"extension {index} of {name} has no celestial WCS")
            warnings.warn(f"extension {index} of {name} has no celestial WCS; skipped", DataWarning, stacklevel=4)
            return
        naxis = header["NAXIS"]
        shape = tuple(int(header[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
        if len(shape) > 2 and all(n == 1 for n in shape[:-2]):
            shape_2d = shape[-2:]
        else:
            shape_2d = None
        nx, ny = size_in_pixels(self._size, wcs)
        section = None
        ext_label = f"{name}[{index}]"
        linearize = "BSOFTEN" in header and "BOFFSET" in header
        pixels = world_to_pixel(wcs, self.coordinates)
        for ci, coord in enumerate(self._coord_list):
            ra, dec = self._radec[ci]
            where = f"target ({ra:.7f}, {dec:.7f}) is outside {ext_label}"
            try:
                x, y = pixels[ci]
                limits = _rounded_limits((x, y), (nx, ny), self.limit_rounding_method)
            except InvalidInputError:
                missed.append(where + " (does not project onto the image)")
                continue
            ov = overlap(limits, shape)
            if ov is None:
                missed.append(where)
                continue
            if section is None:
                section = handle.section(index)
            data, aperture = extract_padded(section, limits, shape, self.fill_value)
            if shape_2d is not None:
                data = data.reshape(data.shape[-2:])
            on_image = data[(Ellipsis, ov[2], ov[3])]
            empty = _is_empty(on_image)
            if empty and not self.allow_empty:
                empties.append(f"cutout of {ext_label} at ({ra:.7f}, {dec:.7f}) "
                               "contains no data (all NaN or zero)")
                continue
            if linearize:
                data = linearize_asinh(data, header)
            xmin, ymin = int(limits[0][0]), int(limits[1][0])
            cwcs = shifted_wcs(wcs, xmin, ymin, (nx, ny))
            inst = CutoutInstance(data=data, wcs=cwcs, limits=limits, original_shape=shape,
                                  slices_original=(ov[0], ov[1]), coordinate=coord, input_file=name,
                                  extension=index, aperture=aperture, empty=empty,
                                  coordinate_index=ci)
            self.cutouts_by_file.setdefault(name, []).append(inst)
            self.hdu_cutouts_by_file.setdefault(name, []).append(self._make_hdu(inst, header, name, linearize))
            log.debug("cut %s at (%.7f, %.7f): limits %s", ext_label, ra, dec, limits.tolist())

    def _make_hdu(self, inst: CutoutInstance, header: fits.Header, name: str, linearized: bool) -> fits.ImageHDU:
        from astropy.io import fits

        orig_file = name if is_remote(name) else Path(name).name
        hdr = cutout_header(header, inst.wcs, int(inst.limits[0][0]), int(inst.limits[1][0]),
                            orig_file=orig_file, orig_ext=inst.extension, linearized=linearized, empty=inst.empty)
        return fits.ImageHDU(data=inst.data, header=hdr, name="CUTOUT")

    # -- results ---------------------------------------------------------------------------------------

    def _instances(self) -> Iterable[tuple[str, CutoutInstance, fits.ImageHDU]]:
        for name in self.input_files:
            for inst, hdu in zip(self.cutouts_by_file.get(name, []), self.hdu_cutouts_by_file.get(name, []),
                                 strict=True):
                yield name, inst, hdu

    def _groups(self) -> list[tuple[Any, str | None, list[tuple[str, CutoutInstance, fits.ImageHDU]]]]:
        """``(coordinate, file or None, members)`` per output HDUList, in output order."""
        groups = []
        for ci, coord in enumerate(self._coord_list):
            members = [m for m in self._instances() if m[1].coordinate_index == ci]
            if not members:
                continue
            if self.single_outfile:
                groups.append((coord, None, members))
            else:
                for name in self.input_files:
                    sub = [m for m in members if m[0] == name]
                    if sub:
                        groups.append((coord, name, sub))
        return groups

    @property
    def fits_cutouts(self) -> list[fits.HDUList]:
        """HDULists: one per coordinate (``single_outfile``) or one per (file, coordinate)."""
        if self._fits_cutouts is None:
            from astropy.io import fits

            self._fits_cutouts = [fits.HDUList([primary_hdu(coord)] + [m[2] for m in members])
                                  for coord, _name, members in self._groups()]
        return self._fits_cutouts

    @property
    def cutouts(self) -> list[CutoutInstance]:
        """All cutout instances, in input-file order."""
        return [m[1] for m in self._instances()]

    def _fits_names(self) -> list[str]:
        names, used = [], set()
        for coord, name, _members in self._groups():
            base = cutout_basename(input_stem(name) if name else self._prefix, coord, self.cutout_size)
            candidate, k = base, 1
            while candidate in used:  # two inputs with the same stem
                candidate, k = f"{base}_{k}", k + 1
            used.add(candidate)
            names.append(candidate + ".fits")
        return names

    def write_as_fits(self, output_dir: str | Path = ".", cutout_prefix: str = "cutout") -> list[str]:
        """Write :attr:`fits_cutouts` (atomically, with checksums) and return the paths.

        Names: ``{cutout_prefix}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut.fits`` with ``single_outfile``, else
        ``{input_stem}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut.fits``.
        """
        self._prefix = cutout_prefix
        paths = []
        for hdul, fname in zip(self.fits_cutouts, self._fits_names(), strict=True):
            path = Path(output_dir) / fname
            with atomic_output(path) as tmp:
                # headers were built from parsed, valid cards: skip astropy's (slow) output verification
                hdul.writeto(tmp, overwrite=True, checksum=True, output_verify="ignore")
            log.debug("wrote %s", path)
            paths.append(str(path))
        return paths

    def write_as_zip(self, output_dir: str | Path = ".", filename: str | Path | None = None) -> str:
        """Write the FITS files into one zip archive (atomically) and return its path.

        Default name ``astrocut_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}.zip`` (first coordinate).
        """
        self._prefix = "cutout"
        if filename is None:
            c = self._coord_list[0]
            filename = f"astrocut_{c.ra.deg:.7f}_{c.dec.deg:.7f}_{size_label(self.cutout_size)}.zip"
        filename = str(filename)
        if not filename.endswith(".zip"):
            filename += ".zip"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for hdul, fname in zip(self.fits_cutouts, self._fits_names(), strict=True):
                member = io.BytesIO()
                hdul.writeto(member, checksum=True)
                zf.writestr(fname, member.getvalue())
        path = Path(output_dir) / filename
        write_bytes(buf.getvalue(), path)
        return str(path)

    _prefix = "cutout"

    # -- images ----------------------------------------------------------------------------------------

    def _image_metadata(self, inst: CutoutInstance) -> dict[str, Any]:
        from astropy.wcs.utils import proj_plane_pixel_scales

        scale = float(np.mean(proj_plane_pixel_scales(inst.wcs)) * 3600.0)
        return {"input_file": inst.input_file, "cutout_size_x_pix": int(inst.data.shape[-1]),
                "cutout_size_y_pix": int(inst.data.shape[-2]), "pixel_scale_arcsec_per_pix": scale,
                "center_ra_deg": float(inst.coordinate.ra.deg), "center_dec_deg": float(inst.coordinate.dec.deg),
                "origin": ORIGIN, "version": __version__}

    def _render(self, stretch, minmax_percent, minmax_value, invert, colorize, flip_orientation):
        """``[(coordinate, [instances], [images])]`` per coordinate."""
        from .render import to_pil_images

        out = []
        for ci, coord in enumerate(self._coord_list):
            insts = [m[1] for m in self._instances() if m[1].coordinate_index == ci]
            if not insts:
                continue
            if colorize:
                insts = colour_channels(insts)
            imgs = to_pil_images([i.data for i in insts], [self._image_metadata(i) for i in insts],
                                 stretch=stretch, minmax_percent=minmax_percent, minmax_value=minmax_value,
                                 invert=invert, colorize=colorize, flip_orientation=flip_orientation)
            out.append((coord, insts, imgs))
        return out

    def get_image_cutouts(self, stretch: str = "asinh", minmax_percent: Sequence[float] | None = None,
                          minmax_value: Sequence[float] | None = None, invert: bool = False,
                          colorize: bool = False, flip_orientation: bool = True) -> list[Image.Image]:
        """8-bit PIL images of the cutouts (see :func:`skycut.render.to_pil_images`; default interval
        ``minmax_percent=[0.5, 99.5]``). With ``colorize``, one RGB image per coordinate from its first three
        cutouts (the first extension of each of the first three files when several extensions were cut,
        see :func:`colour_channels`)."""
        groups = self._render(stretch, minmax_percent, minmax_value, invert, colorize, flip_orientation)
        return [img for _c, _i, imgs in groups for img in imgs]

    @property
    def image_cutouts(self) -> list[Image.Image]:
        """:meth:`get_image_cutouts` with default options (cached)."""
        if self._image_cutouts is None:
            self._image_cutouts = self.get_image_cutouts()
        return self._image_cutouts

    def write_as_img(self, stretch: str = "asinh", minmax_percent: Sequence[float] | None = None,
                     minmax_value: Sequence[float] | None = None, invert: bool = False, colorize: bool = False,
                     output_format: str = ".jpg", output_dir: str | Path = ".", cutout_prefix: str = "cutout",
                     flip_orientation: bool = True) -> str | list[str]:
        """Write the cutouts as images; returns a list of paths (one path string for a colour image).

        Names: ``{input_stem}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut_{i}.{fmt}`` where ``i`` counts the
        cutouts of that coordinate (so every cutout, including several extensions of one file, gets its own
        file — astrocut overwrites/mislabels these); colour ``{cutout_prefix}_..._astrocut.{fmt}``.
        """
        from .render import image_format, save_image

        ext, _fmt = image_format(output_format)
        paths: list[str] = []
        for coord, insts, imgs in self._render(stretch, minmax_percent, minmax_value, invert, colorize,
                                               flip_orientation):
            if colorize:
                name = cutout_basename(cutout_prefix, coord, self.cutout_size) + ext
                paths.append(str(save_image(imgs[0], Path(output_dir) / name, ext)))
                continue
            for i, (inst, img) in enumerate(zip(insts, imgs, strict=True)):
                name = f"{cutout_basename(input_stem(inst.input_file), coord, self.cutout_size)}_{i}{ext}"
                paths.append(str(save_image(img, Path(output_dir) / name, ext)))
        if colorize and len(paths) == 1:
            return paths[0]
        return paths

    CutoutInstance = CutoutInstance
    normalize_img = staticmethod(lambda *a, **k: _normalize(*a, **k))
    parse_size_input = staticmethod(parse_size_input)


def colour_channels(insts: list[CutoutInstance]) -> list[CutoutInstance]:
    """The cutouts to use as R, G, B: with three or more input files, the first cutout (first selected
    extension) of each file, so that e.g. the SCI, WHT and CTX extensions of one HST file never become
    different colours; otherwise the cutouts in order. (Extra channels are dropped later with a warning.)"""
    files = list(dict.fromkeys(i.input_file for i in insts))
    if len(files) >= 3 and len(files) < len(insts):
        firsts = [next(i for i in insts if i.input_file == f) for f in files]
        log.info("colorize: using the first extension of each file (%s)", ", ".join(files[:3]))
        return firsts
    return insts


def _normalize(*args: Any, **kwargs: Any) -> np.ndarray:
    from .render import normalize_img

    return normalize_img(*args, **kwargs)


def _enable_verbose() -> None:
    root = logging.getLogger("skycut")
    root.setLevel(logging.DEBUG)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.NullHandler)
               for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s [%(name)s]"))
        root.addHandler(handler)


# ----------------------------------------------------------------------------------------------- functions


def fits_cut(input_files: Any, coordinates: Any, cutout_size: Any = 25, correct_wcs: bool = False,
             extension: Any = None, single_outfile: bool = True, cutout_prefix: str = "cutout",
             output_dir: str | Path = ".", memory_only: bool = False, fill_value: float = np.nan,
             limit_rounding_method: str = "round", verbose: bool = False, *, fsspec_kwargs: dict | None = None,
             allow_empty: bool = False) -> str | list[str] | list[fits.HDUList]:
    """Cut FITS images and write the cutouts (astrocut's ``fits_cut``).

    Returns the list of HDULists with ``memory_only``, else the written path (a single string when one file
    was written) or list of paths. ``correct_wcs`` is accepted for compatibility and ignored (deprecated in
    astrocut 1.0).
    """
    if correct_wcs:
        warnings.warn("correct_wcs is deprecated and ignored", DeprecationWarning, stacklevel=2)
    cut = FITSCutout(input_files, coordinates, cutout_size, fill_value=fill_value,
                     limit_rounding_method=limit_rounding_method, extension=extension,
                     single_outfile=single_outfile, verbose=verbose, fsspec_kwargs=fsspec_kwargs,
                     allow_empty=allow_empty)
    if memory_only:
        return cut.fits_cutouts
    paths = cut.write_as_fits(output_dir, cutout_prefix)
    return paths[0] if len(paths) == 1 else paths


def img_cut(input_files: Any, coordinates: Any, cutout_size: Any = 25, stretch: str = "asinh",
            minmax_percent: Sequence[float] | None = None, minmax_value: Sequence[float] | None = None,
            invert: bool = False, img_format: str = ".jpg", colorize: bool = False, cutout_prefix: str = "cutout",
            output_dir: str | Path = ".", extension: Any = None, fill_value: float = np.nan,
            limit_rounding_method: str = "round", verbose: bool = False, *,
            fsspec_kwargs: dict | None = None) -> str | list[str]:
    """Cut FITS images and write them as PNG/JPEG/... images (astrocut's ``img_cut``); a single path string
    when one image was written."""
    cut = FITSCutout(input_files, coordinates, cutout_size, fill_value=fill_value,
                     limit_rounding_method=limit_rounding_method, extension=extension, verbose=verbose,
                     fsspec_kwargs=fsspec_kwargs)
    paths = cut.write_as_img(stretch=stretch, minmax_percent=minmax_percent, minmax_value=minmax_value,
                             invert=invert, colorize=colorize, output_format=img_format, output_dir=output_dir,
                             cutout_prefix=cutout_prefix)
    if isinstance(paths, list) and len(paths) == 1:
        return paths[0]
    return paths
