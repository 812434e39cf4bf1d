"""The one home of coordinate and cutout-size parsing.

Every cutout entry point (FITS, ASDF, TESS cubes, footprints, moving targets, the manifest) reads coordinates
and sizes through this module, so one rule applies everywhere.

Coordinates
-----------
Positions are returned as ICRS right ascension and declination in degrees (float64). Plain decimal input —
``"ra dec"`` strings, ``(ra, dec)`` numbers, lists of those, and ``{ra, dec}`` mappings of numbers in ICRS —
is parsed with numpy only (no astropy import), so a batch of 10,000 targets stays cheap. Sexagesimal strings,
other frames and ``SkyCoord`` objects go through astropy.

The validation rule: values are finite; declination lies in ``[-90, 90]``; a decimal right ascension lies in
``[0, 360]`` (``360`` is taken as ``0``). Anything else raises :class:`~skycut.exceptions.InvalidInputError`
naming the bad value: nothing is wrapped silently and no NaN passes through. Booleans are not numbers.

Sizes
-----
A cutout size is ``x`` (columns, FITS axis 1, numpy axis -1) and ``y`` (rows, FITS axis 2, numpy axis -2): a
two-element size ``[200, 300]`` gives FITS dimensions ``(200, 300)``, i.e. a numpy array of shape ``(300, 200)``
(astrocut's implemented behaviour). Values are positive and finite; booleans are refused.

Fractional pixel sizes: a size in pixels (given, or converted from an angle through the pixel scale) is rounded
to the nearest whole pixel, halves up (``2.5 -> 3``), and a size that rounds to 0 becomes 1 pixel — astrocut's
documented rule ("a size that rounds to 0 becomes 1 pixel"). Every cutout kind (FITS, ASDF, cubes, footprints,
moving targets) applies it through :meth:`CutoutSize.pixels`.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..exceptions import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS

_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)"
_DECIMAL_PAIR = re.compile(rf"^\s*({_NUMBER})(?:\s*,\s*|\s+)({_NUMBER})\s*$", re.IGNORECASE)
_SIZE_TEXT = re.compile(rf"^\s*({_NUMBER})\s*([A-Za-z]*)\s*$", re.IGNORECASE)
_ARCMIN = 1.0 / 60.0
_ARCSEC = _ARCMIN / 60.0
# unit words read without astropy: degrees per unit, or None for pixels
_SIZE_UNITS: dict[str, float | None] = {
    "": None,
    "pix": None,
    "pixel": None,
    "pixels": None,
    "deg": 1.0,
    "degree": 1.0,
    "degrees": 1.0,
    "arcmin": _ARCMIN,
    "arcsec": _ARCSEC,
}
_REAL_TYPES = (int, float, np.integer, np.floating)


def _is_real(value: Any) -> bool:
    """Return True for a plain real number (Python or numpy), booleans excluded."""
    return isinstance(value, _REAL_TYPES) and not isinstance(value, (bool, np.bool_))


def _is_quantity(value: Any) -> bool:
    """Return True for an astropy Quantity, recognised without importing astropy."""
    return hasattr(value, "unit") and type(value).__module__.startswith("astropy.")


def _is_skycoord(value: Any) -> bool:
    """Return True for an astropy SkyCoord, recognised without importing astropy."""
    return type(value).__name__ == "SkyCoord" and type(value).__module__.startswith("astropy.")


# ------------------------------------------------------------------------------------------------ coordinates


def check_radec(ra: float, dec: float, given: Any = None) -> tuple[float, float]:
    """Apply the coordinate rule to one decimal position; return ``(ra, dec)`` with RA 360 taken as 0.

    Parameters
    ----------
    ra, dec : float
        ICRS right ascension and declination in degrees.
    given : object, optional
        What the user wrote, named in the error message (default: the pair itself).

    Raises
    ------
    InvalidInputError
        Unless both values are finite, ``0 <= ra <= 360`` and ``-90 <= dec <= 90``.
    """
    what = f"coordinates {given!r}" if given is not None else f"coordinates ({ra!r}, {dec!r})"
    if not (math.isfinite(ra) and math.isfinite(dec)):
        raise InvalidInputError(f"{what}: ra and dec must be finite numbers")
    if not -90.0 <= dec <= 90.0:
        raise InvalidInputError(f"{what}: declination {dec!r} is outside [-90, 90] degrees")
    if not 0.0 <= ra <= 360.0:
        raise InvalidInputError(f"{what}: right ascension {ra!r} is outside [0, 360] degrees")
    return (0.0 if ra == 360.0 else float(ra)), float(dec)


def _decimal_one(value: Any) -> tuple[float, float] | None:
    """Return ``(ra, dec)`` of one plain-decimal coordinate, checked; ``None`` when it needs astropy."""
    if isinstance(value, str):
        m = _DECIMAL_PAIR.match(value)
        return check_radec(float(m[1]), float(m[2]), value) if m else None
    if isinstance(value, Mapping):
        keys = set(value)
        if not {"ra", "dec"} <= keys or keys - {"ra", "dec", "frame"}:
            raise InvalidInputError(
                f"coordinates {dict(value)!r}: a coordinate mapping needs exactly the keys ra, dec and optionally "
                "frame"
            )
        if _is_real(value["ra"]) and _is_real(value["dec"]):
            if str(value.get("frame", "icrs")).lower() == "icrs":
                return check_radec(float(value["ra"]), float(value["dec"]), dict(value))
            check_radec(float(value["ra"]), float(value["dec"]), dict(value))  # same ranges in any frame
        return None
    if _is_pair_of_numbers(value):
        return check_radec(float(value[0]), float(value[1]), _plain(value))
    return None


def _plain(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


def _is_pair_of_numbers(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.shape == (2,) and value.dtype.kind in "iuf"
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_real(v) for v in value)


def _is_sequence_of_coordinates(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 2 and value.shape[1] == 2 and value.dtype.kind in "iuf"
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def radec_arrays(coordinates: Any) -> tuple[np.ndarray, np.ndarray]:
    """ICRS ``(ra, dec)`` float64 arrays in degrees of one coordinate or a list of them.

    Parameters
    ----------
    coordinates : str, (ra, dec) numbers, {ra, dec[, frame]} mapping, SkyCoord, or a list of those
        ``"ra dec"`` decimal degrees (comma or space separated), ``(ra, dec)`` numbers in degrees and
        ``{ra, dec}`` mappings of numbers in ICRS are read with numpy only. A sexagesimal string
        (``"10:00:22.7 +02:23:12.5"``, hours and degrees), a mapping in another frame or holding strings with
        units, and a ``SkyCoord`` are read with astropy and transformed to ICRS. An ``(n, 2)`` numeric array is
        ``n`` positions.

    Returns
    -------
    ra, dec : ndarray of float64, shape ``(n,)``, ``n >= 1``
        ICRS degrees, ``0 <= ra < 360``.

    Raises
    ------
    InvalidInputError
        For anything that breaks the coordinate rule (see the module docstring) or cannot be parsed.
    """
    one = _decimal_one(coordinates) if not _is_skycoord(coordinates) else None
    if one is not None:
        return np.array([one[0]]), np.array([one[1]])
    if _is_skycoord(coordinates) or isinstance(coordinates, (str, Mapping)):
        return _astropy_radec(coordinates)
    if _is_sequence_of_coordinates(coordinates):
        items = list(coordinates)
        if not items:
            raise InvalidInputError("no coordinates given (an empty list)")
        if not any(isinstance(v, (str, Mapping, Sequence, np.ndarray)) or _is_skycoord(v) for v in items):
            raise InvalidInputError(
                f"cannot interpret coordinates {_plain(coordinates)!r}: give [ra, dec] as "
                "exactly two numbers in degrees"
            )
        ra = np.empty(len(items))
        dec = np.empty(len(items))
        for i, item in enumerate(items):
            if _is_sequence_of_coordinates(item) and not _is_pair_of_numbers(item):
                raise InvalidInputError(
                    f"cannot interpret coordinates {_plain(item)!r}: nested lists of positions"
                )
            r, d = radec_arrays(item)
            if len(r) != 1:
                raise InvalidInputError(
                    f"cannot interpret coordinates {_plain(item)!r}: one position per item"
                )
            ra[i], dec[i] = r[0], d[0]
        return ra, dec
    raise InvalidInputError(f"cannot interpret coordinates {_plain(coordinates)!r}")


def _astropy_radec(value: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sexagesimal strings, non-ICRS or unit-string mappings, and SkyCoords (astropy)."""
    sc = _astropy_skycoord(value)
    ra = np.atleast_1d(np.asarray(sc.ra.deg, dtype=np.float64)).ravel()
    dec = np.atleast_1d(np.asarray(sc.dec.deg, dtype=np.float64)).ravel()
    if ra.size == 0:
        raise InvalidInputError("no coordinates given (an empty SkyCoord)")
    bad = ~(np.isfinite(ra) & np.isfinite(dec))
    if bad.any():
        raise InvalidInputError(f"coordinates {value!r}: ra and dec must be finite numbers")
    return ra, dec


def _astropy_skycoord(value: Any) -> SkyCoord:
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    if isinstance(value, SkyCoord):
        return value.icrs
    try:
        if isinstance(value, str):
            # astropy's sexagesimal parser itself refuses hours outside [0, 24) and |dec| > 90, but an RA with
            # its own unit ("400d 10d") would be wrapped silently by astropy's Longitude: check it first
            parts = value.split()
            if len(parts) == 2:
                _check_ra_angle(parts[0], value)
            sc = SkyCoord(value.strip(), unit=(u.hourangle, u.deg))
        else:
            unit = "deg" if _is_real(value["ra"]) else (u.hourangle, u.deg)
            if not _is_real(value["ra"]):
                _check_ra_angle(value["ra"], value)
            sc = SkyCoord(value["ra"], value["dec"], unit=unit, frame=value.get("frame", "icrs"))
    except InvalidInputError:
        raise
    except Exception as exc:  # astropy raises several types here
        raise InvalidInputError(
            f"cannot parse coordinates {value!r}: give 'ra dec' in degrees or sexagesimal 'hh:mm:ss dd:mm:ss' "
            f"({exc})"
        ) from None
    return sc.icrs


def _check_ra_angle(text: Any, value: Any) -> None:
    """Refuse an RA written with its own unit outside [0, 360] degrees (astropy would wrap it)."""
    from astropy import units as u
    from astropy.coordinates import Angle

    try:
        degrees = Angle(text, unit=u.hourangle).degree
    except Exception:  # not an angle on its own: let SkyCoord parse (and judge) the whole value
        return
    if not 0 <= float(degrees) <= 360:
        raise InvalidInputError(f"right ascension {text!r} in {value!r} is outside [0, 360] degrees")


def parse_coordinates(coordinates: Any) -> SkyCoord:
    """Normalise coordinates to a one-dimensional ICRS ``SkyCoord`` (astrocut-compatible).

    Parameters
    ----------
    coordinates : SkyCoord, str, (ra, dec) numbers, {ra, dec[, frame]} mapping, or a list of those
        Read by the same rules as :func:`radec_arrays`.

    Returns
    -------
    SkyCoord
        Array-valued (at least one element), in ICRS. A ``SkyCoord`` input keeps its frame attributes.
    """
    from astropy.coordinates import SkyCoord

    if isinstance(coordinates, SkyCoord):
        _astropy_radec(coordinates)  # the same finiteness rule
        sc = coordinates.icrs
        return (sc.reshape((1,)) if sc.isscalar else sc).ravel()
    ra, dec = radec_arrays(coordinates)
    return SkyCoord(ra=ra, dec=dec, unit="deg", frame="icrs")


# ------------------------------------------------------------------------------------------------------ sizes


@dataclass(frozen=True)
class CutoutSize:
    """A parsed cutout size: ``x`` (columns, FITS axis 1) and ``y`` (rows, FITS axis 2).

    Attributes
    ----------
    x, y : float
        Positive, finite sizes along the FITS x axis (numpy axis -1) and y axis (numpy axis -2).
    units : (str, str)
        The unit of ``x`` and of ``y``: ``"pixel"``, or ``"deg"`` on the sky (any angular input is converted to
        degrees). The two may differ (``["1 arcmin", 40]``).
    label : str
        The ``{s0}-x-{s1}`` part of astrocut file names, as the user wrote the size (``25 -> "25-x-25"``,
        ``"30 arcsec" -> "30arcsec-x-30arcsec"``, ``5 * u.arcmin -> "5.0arcmin-x-5.0arcmin"``).

    A ``CutoutSize`` is accepted wherever a ``cutout_size`` is.
    """

    x: float
    y: float
    units: tuple[Literal["pixel", "deg"], Literal["pixel", "deg"]]
    label: str

    @property
    def unit(self) -> str:
        """``"pixel"`` or ``"deg"`` when both axes share it, else ``"mixed"``."""
        return self.units[0] if self.units[0] == self.units[1] else "mixed"

    @property
    def in_pixels(self) -> bool:
        """True when both axes are in pixels (no pixel scale needed)."""
        return self.units == ("pixel", "pixel")

    def pixels(
        self, scales_deg: Sequence[float] | None = None, max_pixels: int | None = None
    ) -> tuple[int, int]:
        """Whole-pixel size ``(nx, ny)`` (FITS axis order).

        Parameters
        ----------
        scales_deg : (float, float), optional
            Degrees per pixel along x and y; needed for an angular size.
        max_pixels : int, optional
            Largest allowed pixel count along either axis.

        Returns
        -------
        (int, int)
            ``(nx, ny)``, each the size rounded to the nearest whole pixel (halves up), at least 1.

        Raises
        ------
        InvalidInputError
            For an angular size without ``scales_deg``, or a result above ``max_pixels``.
        """
        values = []
        for axis, (amount, unit) in enumerate(zip((self.x, self.y), self.units, strict=True)):
            if unit == "pixel":
                values.append(amount)
            elif scales_deg is None:
                raise InvalidInputError(
                    "an angular cutout size needs a pixel scale (a WCS) to convert it to pixels"
                )
            else:
                values.append(amount / float(scales_deg[axis]))
        nx, ny = (max(1, int(math.floor(v + 0.5))) for v in values)
        _check_max(nx, ny, max_pixels if max_pixels is not None else _PIXEL_LIMIT.get(), self.label)
        return nx, ny


_PIXEL_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("skycut_pixel_limit", default=None)


@contextlib.contextmanager
def pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Bound every cutout size converted to pixels inside the block to ``max_pixels`` per axis.

    The bound applies to every :meth:`CutoutSize.pixels` conversion in the block, unless a call gives its own
    bound; ``None`` sets no bound.

    The workflow's jobs run inside the manifest's ``limits.max_cutout_pixels``, so an angular size that is
    harmless in degrees cannot become an allocation of billions of pixels on an image with tiny pixels.
    """
    token = _PIXEL_LIMIT.set(max_pixels)
    try:
        yield
    finally:
        _PIXEL_LIMIT.reset(token)


def _check_max(nx: float, ny: float, max_pixels: int | None, label: str) -> None:
    if max_pixels is not None and max(nx, ny) > max_pixels:
        raise InvalidInputError(
            f"cutout size {label} is {nx:g} x {ny:g} pixels, more than the limit of {max_pixels} pixels per axis"
        )


def _size_values(cutout_size: Any) -> list[Any]:
    if _is_quantity(cutout_size):
        values = [cutout_size] if cutout_size.isscalar else list(cutout_size.ravel())
    elif isinstance(cutout_size, (list, tuple, np.ndarray)):
        values = list(cutout_size)
    else:
        values = [cutout_size]
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise InvalidInputError(f"cutout size needs one or two values [nx, ny], got {_plain(cutout_size)!r}")
    return values


def _one_size(value: Any) -> tuple[float, str, str]:
    """Return ``(amount, unit, label text)`` of one size value; unit "pixel" or "deg"."""
    if isinstance(value, str):
        m = _SIZE_TEXT.match(value)
        if m and m[2].lower() in _SIZE_UNITS:
            per = _SIZE_UNITS[m[2].lower()]
            amount = float(m[1]) if per is None else float(m[1]) * per
            return amount, ("pixel" if per is None else "deg"), value.replace(" ", "")
        from astropy import units as u

        try:
            q = u.Quantity(value)
        except Exception:  # astropy raises several types here
            raise InvalidInputError(
                f"cannot parse cutout size {value!r}: give pixels or an angle such as '30 arcsec'"
            ) from None
        amount, unit = _quantity_size(q, value)
        return amount, unit, value.replace(" ", "")
    if _is_quantity(value):
        amount, unit = _quantity_size(value, value)
        return amount, unit, f"{value.value}{value.unit.to_string()}".replace(" ", "")
    if _is_real(value):
        text = (
            str(int(value))
            if isinstance(value, (float, np.floating)) and float(value).is_integer()
            else str(value)
        )
        return float(value), "pixel", text
    raise InvalidInputError(
        f"cannot interpret cutout size {value!r}: give pixels or an angle such as '30 arcsec'"
    )


def _quantity_size(q: Any, given: Any) -> tuple[float, str]:
    from astropy import units as u

    if np.ndim(q) != 0:
        raise InvalidInputError(f"cutout size {given!r} is not one value per axis")
    if q.unit == u.pix or q.unit == u.dimensionless_unscaled:
        return float(q.value), "pixel"
    if q.unit.physical_type == "angle":
        return float(q.to_value(u.deg)), "deg"
    raise InvalidInputError(f"cutout size {given!r} must be in pixels or an angular unit")


def parse_size(cutout_size: Any, max_pixels: int | None = None) -> CutoutSize:
    """Parse a cutout size into a :class:`CutoutSize`.

    Parameters
    ----------
    cutout_size : int, float, str, Quantity, CutoutSize, or a sequence of two of those
        A number is a square in pixels; ``[nx, ny]`` is in FITS axis order (``[200, 300]`` gives FITS dimensions
        ``(200, 300)``, numpy shape ``(300, 200)``). Strings such as ``"25 pix"``, ``"30 arcsec"``,
        ``"2 arcmin"``, ``"0.1 deg"`` are read without astropy; other unit strings and astropy Quantities (pixel
        or angular) go through astropy.
    max_pixels : int, optional
        Refuse a pixel size above this many pixels along either axis (after rounding). Angular sizes are checked
        when converted, by :meth:`CutoutSize.pixels`.

    Returns
    -------
    CutoutSize

    Raises
    ------
    InvalidInputError
        Unless there are one or two values, each positive and finite, in pixels or an angular unit (booleans are
        refused).
    """
    if isinstance(cutout_size, CutoutSize):
        size = cutout_size
    else:
        (ax, ux, lx), (ay, uy, ly) = (_one_size(v) for v in _size_values(cutout_size))
        for amount in (ax, ay):
            if not (math.isfinite(amount) and amount > 0):
                raise InvalidInputError(
                    f"cutout size must be positive and finite, got {_plain(cutout_size)!r}"
                )
        size = CutoutSize(ax, ay, (ux, uy), f"{lx}-x-{ly}")
    if size.in_pixels:
        size.pixels(max_pixels=max_pixels)
    return size


def size_label(cutout_size: Any) -> str:
    """Return the ``{s0}-x-{s1}`` part of astrocut-style file names, as the user gave the size.

    See :class:`CutoutSize`.
    """
    return parse_size(cutout_size).label


def pixel_scales_deg(wcs: WCS) -> tuple[float, float]:
    """Return the degrees per pixel along x and y of a celestial WCS (its projected plane scales)."""
    from astropy import units as u
    from astropy.wcs.utils import proj_plane_pixel_scales

    cel = wcs.celestial
    scales = proj_plane_pixel_scales(cel)
    return tuple(float((scales[i] * u.Unit(cel.wcs.cunit[i] or "deg")).to_value(u.deg)) for i in range(2))


def size_in_pixels(
    cutout_size: Any, wcs: WCS | None = None, max_pixels: int | None = None
) -> tuple[int, int]:
    """Whole-pixel ``(nx, ny)`` of any cutout size, angular sizes through ``wcs``'s pixel scale.

    Parameters
    ----------
    cutout_size : anything :func:`parse_size` accepts
    wcs : astropy WCS, optional
        Needed for an angular size; its projected plane scale along each axis converts degrees to pixels.
    max_pixels : int, optional
        Largest allowed pixel count along either axis.

    Returns
    -------
    (int, int)
        ``(nx, ny)`` in FITS axis order, rounded to whole pixels (halves up), at least 1 each.
    """
    size = parse_size(cutout_size)
    scales = pixel_scales_deg(wcs) if not size.in_pixels and wcs is not None else None
    return size.pixels(scales, max_pixels)


def parse_size_input(cutout_size: Any) -> Any:
    """Return the size as Quantities ``(x, y)``, each in pix or deg, as astrocut's ``Cutout.parse_size_input``."""
    from astropy import units as u

    size = parse_size(cutout_size)
    return tuple(
        v * (u.pix if unit == "pixel" else u.deg)
        for v, unit in zip((size.x, size.y), size.units, strict=True)
    )


__all__ = [
    "CutoutSize",
    "check_radec",
    "parse_coordinates",
    "parse_size",
    "parse_size_input",
    "pixel_scales_deg",
    "radec_arrays",
    "size_in_pixels",
    "size_label",
]
