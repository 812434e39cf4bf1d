"""Pure helpers shared by every cutout class: coordinates, sizes, pixel limits, padding, WCS shifts.

Conventions (the same as astropy and astrocut):

* Pixel coordinates are 0-based with pixel centres on integers; pixel ``i`` covers ``[i - 0.5, i + 0.5)``.
* ``x`` is the column (FITS axis 1, numpy axis -1), ``y`` the row (FITS axis 2, numpy axis -2).
* A two-element ``cutout_size`` is ``(x, y)``: ``[200, 300]`` gives FITS dimensions ``(200, 300)``,
  i.e. a numpy array of shape ``(300, 200)``, as astrocut's examples show.
* Limits are half-open ``[[xmin, xmax], [ymin, ymax]]`` in the original image's pixels, not clipped to the
  image; the part outside the image is padded with ``fill_value``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.coordinates import SkyCoord
    from astropy.units import Quantity
    from astropy.wcs import WCS

_SEXAGESIMAL = re.compile(r"[hms:dD°'\"]|\d\s+\d+\s+\d")


def _coordinate_from_string(text: str) -> SkyCoord:
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    text = text.strip()
    parts = text.replace(",", " ").split()
    try:
        if len(parts) == 2 and not _SEXAGESIMAL.search(text):
            return SkyCoord(float(parts[0]), float(parts[1]), unit="deg")
        return SkyCoord(text, unit=(u.hourangle, u.deg))
    except Exception as exc:  # astropy raises several types here
        raise InvalidInputError(
            f"cannot parse coordinates {text!r}: give 'ra dec' in degrees or sexagesimal 'hh:mm:ss dd:mm:ss'"
        ) from exc


def _coordinate_from_mapping(value: dict) -> SkyCoord:
    from astropy.coordinates import SkyCoord

    if set(value) - {"ra", "dec", "frame"} or not {"ra", "dec"} <= set(value):
        raise InvalidInputError("a coordinate mapping needs exactly the keys ra, dec and optionally frame")
    unit = "deg" if isinstance(value["ra"], (int, float)) else ("hourangle", "deg")
    try:
        return SkyCoord(value["ra"], value["dec"], unit=unit, frame=value.get("frame", "icrs"))
    except Exception as exc:  # astropy raises several types here
        raise InvalidInputError(f"cannot parse coordinates {value!r}: {exc}") from None


def parse_coordinates(coordinates: Any) -> SkyCoord:
    """Normalise coordinates to a one-dimensional ICRS ``SkyCoord``.

    Parameters
    ----------
    coordinates : SkyCoord, str, (ra, dec) tuple, {ra, dec[, frame]} mapping, or a list of those
        A string is ``"ra dec"`` in degrees, or sexagesimal (``"10:00:22.7 +02:23:12.5"``, hours and degrees);
        a mapping holds numbers in degrees or strings with units, in ``frame`` (default ICRS).

    Returns
    -------
    SkyCoord
        Array-valued (at least one element), in ICRS.
    """
    from astropy.coordinates import SkyCoord

    if isinstance(coordinates, SkyCoord):
        sc = coordinates
    elif isinstance(coordinates, str):
        sc = _coordinate_from_string(coordinates)
    elif isinstance(coordinates, dict):
        sc = _coordinate_from_mapping(coordinates)
    elif (
        isinstance(coordinates, Sequence)
        and len(coordinates) == 2
        and all(isinstance(v, (int, float, np.floating, np.integer)) for v in coordinates)
    ):
        sc = SkyCoord(float(coordinates[0]), float(coordinates[1]), unit="deg")
    elif isinstance(coordinates, (Sequence, np.ndarray)) and len(coordinates) > 0:
        parts = [parse_coordinates(c) for c in coordinates]
        sc = SkyCoord(ra=np.concatenate([p.ra.deg for p in parts]), dec=np.concatenate([p.dec.deg for p in parts]),
                      unit="deg")
    else:
        raise InvalidInputError(f"cannot interpret coordinates {coordinates!r}")
    sc = sc.icrs
    if sc.isscalar:
        sc = sc.reshape((1,))
    return sc.ravel()


def size_pair(cutout_size: Any) -> list[Any]:
    """Split a cutout size into its two raw values ``[x, y]`` (a scalar is used for both).

    Raises :class:`InvalidInputError` unless there are one or two values.
    """
    if _is_quantity(cutout_size):
        values = [cutout_size] if cutout_size.isscalar else list(cutout_size.ravel())
    elif isinstance(cutout_size, (list, tuple, np.ndarray)):
        values = list(cutout_size)
    else:
        values = [cutout_size]
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise InvalidInputError(f"cutout size needs one or two values, got {cutout_size!r}")
    return values


def _is_quantity(value: Any) -> bool:
    """An astropy Quantity, recognised without importing astropy (plain sizes stay astropy-free)."""
    return hasattr(value, "unit") and type(value).__module__.startswith("astropy.")


def parse_size_input(cutout_size: Any) -> tuple[Quantity, Quantity]:
    """Normalise a cutout size to ``(size_x, size_y)`` Quantities (unit ``pix`` or angular).

    Parameters
    ----------
    cutout_size : int, float, two-element sequence, Quantity, or str
        An int is a square in pixels; ``[nx, ny]`` is ordered as FITS ``(NAXIS1, NAXIS2)``; a Quantity or a
        string such as ``"30 arcsec"`` may be angular. Sizes must be positive.
    """
    from astropy import units as u

    def one(value: Any) -> Quantity:
        if isinstance(value, str):
            try:
                value = u.Quantity(value)
            except Exception as exc:
                raise InvalidInputError(f"cannot parse cutout size {value!r}") from exc
            if value.unit == u.dimensionless_unscaled:
                value = value.value * u.pix
        if isinstance(value, u.Quantity):
            if value.unit.physical_type not in ("angle",) and value.unit != u.pix:
                raise InvalidInputError(f"cutout size {value} must be in pixels or an angular unit")
            q = value
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            q = float(value) * u.pix
        else:
            raise InvalidInputError(f"cannot interpret cutout size {value!r}")
        if not np.isfinite(q.value) or q.value <= 0:
            raise InvalidInputError(f"cutout size must be positive, got {value!r}")
        return q

    values = size_pair(cutout_size)
    return one(values[0]), one(values[1])


def size_label(cutout_size: Any) -> str:
    """The ``{s0}-x-{s1}`` part of astrocut-style file names, as the user gave the size.

    ``25 -> "25-x-25"``, ``[200, 300] -> "200-x-300"``, ``5 * u.arcmin -> "5.0arcmin-x-5.0arcmin"``.
    """
    def text(value: Any) -> str:
        if _is_quantity(value):
            return f"{value.value}{value.unit.to_string()}".replace(" ", "")
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value).replace(" ", "")

    values = size_pair(cutout_size)
    return f"{text(values[0])}-x-{text(values[1])}"


def cutout_basename(prefix: str, coordinate: SkyCoord, cutout_size: Any) -> str:
    """``{prefix}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut`` (no extension), astrocut's naming."""
    return f"{prefix}_{coordinate.ra.deg:.7f}_{coordinate.dec.deg:.7f}_{size_label(cutout_size)}_astrocut"


def size_in_pixels(size: tuple[Quantity, Quantity], wcs: WCS | None = None) -> tuple[int, int]:
    """Convert a parsed ``(size_x, size_y)`` to whole pixels ``(nx, ny)``, at least 1 each.

    Angular sizes use the WCS's projected pixel scale along each axis.
    """
    from astropy import units as u

    out = []
    for axis, q in enumerate(size):
        if q.unit == u.pix:
            n = q.value
        else:
            if wcs is None:
                raise InvalidInputError("an angular cutout size needs a WCS to convert it to pixels")
            from astropy.wcs.utils import proj_plane_pixel_scales

            scale = proj_plane_pixel_scales(wcs.celestial)[axis] * u.Unit(wcs.celestial.wcs.cunit[axis] or "deg")
            n = (q / scale).decompose().value
        out.append(max(1, int(math.floor(n + 0.5))))
    return out[0], out[1]


ROUNDING_METHODS = ("round", "ceil", "floor")


def cutout_limits(center_xy: tuple[float, float], shape_xy: tuple[int, int], method: str = "round") -> np.ndarray:
    """Half-open pixel limits ``[[xmin, xmax], [ymin, ymax]]`` of a box of ``shape_xy`` pixels centred on
    ``center_xy`` (0-based pixel coordinates); the box always holds exactly ``nx`` x ``ny`` pixels.

    ``method`` rounds the lower edge ``x - nx/2`` (astrocut's ``limit_rounding_method``):

    * ``"round"`` (astrocut's default for FITS and cube cutouts): nearest integer, halves up. The box middle
      ``xmin + (nx - 1)/2`` can be up to one pixel from ``x``.
    * ``"ceil"``: astropy ``Cutout2D``'s rule (astrocut's ASDF rule): the middle lies within half a pixel of
      ``x``, so for odd ``nx`` the middle pixel is the one containing the target.
    * ``"floor"``.

    The centre is first rounded to 1e-6 px, so world-to-pixel round-off cannot move a box (a target on a pixel
    centre gives a box centred on that pixel for odd sizes).
    """
    if method not in ROUNDING_METHODS:
        raise InvalidInputError(f"limit_rounding_method must be one of {ROUNDING_METHODS}, got {method!r}")
    lims = np.zeros((2, 2), dtype=np.int64)
    for axis in range(2):
        c = float(center_xy[axis])
        if not np.isfinite(c):
            raise InvalidInputError("the cutout centre does not project onto the image (non-finite pixel)")
        edge = round(c, 6) - shape_xy[axis] / 2.0
        if method == "round":
            lo = int(math.floor(edge + 0.5))
        elif method == "ceil":
            lo = int(math.ceil(edge))
        else:
            lo = int(math.floor(edge))
        lims[axis] = (lo, lo + int(shape_xy[axis]))
    return lims


def window_key(key: Any, shape: tuple[int, ...], owner: str) -> tuple[int, int, int, int, int]:
    """Resolve an ``[..., y0:y1, x0:x1]`` index on an array of ``shape`` to ``(y0, y1, x0, x1, nplanes)``.

    For lazy array views that read only a window (ranged remote reads, compressed blocks); ``owner`` names the
    view in the ``TypeError`` raised for anything but two unit-step slices (after an optional ``...``).
    ``nplanes`` is the product of the leading dimensions.
    """
    if not isinstance(key, tuple):
        key = (key,)
    if key and key[0] is Ellipsis:
        key = key[1:]
    if len(key) != 2 or not all(isinstance(k, slice) for k in key):
        raise TypeError(f"{owner} supports only [..., y0:y1, x0:x1]")
    ny, nx = shape[-2:]
    (y0, y1, ystep), (x0, x1, xstep) = key[0].indices(ny), key[1].indices(nx)
    if ystep != 1 or xstep != 1:
        raise TypeError(f"{owner} does not support steps")
    lead = shape[:-2]
    return y0, max(y0, y1), x0, max(x0, x1), int(np.prod(lead)) if lead else 1


def overlap(limits: np.ndarray, image_shape: tuple[int, ...]) -> tuple[slice, slice, slice, slice] | None:
    """Intersect ``limits`` with an image of numpy shape ``(..., ny, nx)``.

    Returns ``(src_y, src_x, dst_y, dst_x)`` slices (into the image and into the cutout), or ``None`` when the
    box misses the image entirely.
    """
    ny, nx = image_shape[-2], image_shape[-1]
    (xmin, xmax), (ymin, ymax) = limits
    x0, x1 = max(xmin, 0), min(xmax, nx)
    y0, y1 = max(ymin, 0), min(ymax, ny)
    if x0 >= x1 or y0 >= y1:
        return None
    return (
        slice(int(y0), int(y1)),
        slice(int(x0), int(x1)),
        slice(int(y0 - ymin), int(y1 - ymin)),
        slice(int(x0 - xmin), int(x1 - xmin)),
    )


def extract_padded(source: Any, limits: np.ndarray, image_shape: tuple[int, ...], fill_value: float = np.nan,
                   dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``limits`` out of ``source`` (an ndarray, astropy ``Section`` or anything sliceable as
    ``source[..., y0:y1, x0:x1]``), padding outside the image with ``fill_value``.

    Only the overlapping rows and columns are read from ``source``.

    Returns
    -------
    data : ndarray of shape ``(..., ny, nx)``
    aperture : int32 ndarray of shape ``(ny, nx)``, 1 where the pixel is on the image, 0 for padding.
    """
    (xmin, xmax), (ymin, ymax) = limits
    lead = tuple(image_shape[:-2])
    src = overlap(limits, image_shape)
    aperture = np.zeros((ymax - ymin, xmax - xmin), dtype=np.int32)
    if src is None:
        if dtype is None:
            dtype = np.float32
        out = np.full(lead + aperture.shape, fill_value, dtype=_fill_dtype(np.dtype(dtype), fill_value))
        return out, aperture
    sy, sx, dy, dx = src
    block = np.asarray(source[(Ellipsis, sy, sx)])
    if dtype is None:
        dtype = block.dtype.newbyteorder("=")
    out_dtype = _fill_dtype(np.dtype(dtype), fill_value)
    if block.shape[-2:] == aperture.shape:
        out = block.astype(out_dtype, copy=False)
    else:
        out = np.full(lead + aperture.shape, fill_value, dtype=out_dtype)
        out[(Ellipsis, dy, dx)] = block
    aperture[dy, dx] = 1
    return out, aperture


def _fill_dtype(dtype: np.dtype, fill_value: Any) -> np.dtype:
    """Integer data padded with NaN must become floating point; otherwise keep the input dtype."""
    if dtype.kind in "iub" and isinstance(fill_value, float) and not float(fill_value).is_integer():
        return np.dtype(np.float64 if dtype.itemsize > 2 else np.float32)
    return dtype


def shifted_wcs(wcs: WCS, xmin: int, ymin: int, shape_xy: tuple[int, int] | None = None) -> WCS:
    """A copy of ``wcs`` whose pixel origin is moved to ``(xmin, ymin)`` (SIP distortion kept).

    ``shape_xy`` sets ``pixel_shape`` of the result (``(nx, ny)``).
    """
    from astropy.wcs import Sip

    out = wcs.deepcopy()
    out.wcs.crpix = out.wcs.crpix - np.array([xmin, ymin], dtype=float)
    if out.sip is not None:
        s = out.sip
        out.sip = Sip(s.a, s.b, s.ap, s.bp, (s.crpix[0] - xmin, s.crpix[1] - ymin))
    if shape_xy is not None:
        out.pixel_shape = tuple(int(v) for v in shape_xy)
    return out
