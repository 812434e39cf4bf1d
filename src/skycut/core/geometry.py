"""Pure cutout geometry shared by every cutout class: pixel limits, overlaps, padding, WCS shifts, file names.

Coordinates and sizes are parsed in :mod:`skycut.core.coords`.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import InvalidInputError
from .coords import size_label

if TYPE_CHECKING:  # pragma: no cover
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS


def cutout_basename(prefix: str, coordinate: SkyCoord, cutout_size: Any) -> str:
    """Return ``{prefix}_{ra:.7f}_{dec:.7f}_{s0}-x-{s1}_astrocut`` (no extension), astrocut's naming."""
    return f"{prefix}_{coordinate.ra.deg:.7f}_{coordinate.dec.deg:.7f}_{size_label(cutout_size)}_astrocut"


ROUNDING_METHODS = ("round", "ceil", "floor")


def check_rounding_method(method: str) -> str:
    """Return ``method`` (``limit_rounding_method``) if it is one of :data:`ROUNDING_METHODS`.

    Raises
    ------
    InvalidInputError
        ``"limit_rounding_method must be one of ('round', 'ceil', 'floor'), got <method>"``.
    """
    if method not in ROUNDING_METHODS:
        raise InvalidInputError(f"limit_rounding_method must be one of {ROUNDING_METHODS}, got {method!r}")
    return method


def check_fill_value(fill_value: Any) -> float:
    """Return ``fill_value`` (the value of pixels off the image) as a float if it is an int or a float.

    Raises
    ------
    InvalidInputError
        ``"fill_value must be an int or float, got <value>"`` (a bool is neither).
    """
    if isinstance(fill_value, bool) or not isinstance(fill_value, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"fill_value must be an int or float, got {fill_value!r}")
    return float(fill_value)


def cutout_limits(
    center_xy: tuple[float, float], shape_xy: tuple[int, int], method: str = "round"
) -> np.ndarray:
    """Return the half-open pixel limits ``[[xmin, xmax], [ymin, ymax]]`` of a box centred on a position.

    The box has ``shape_xy`` pixels and is centred on ``center_xy`` (0-based pixel coordinates); it always holds
    exactly ``nx`` x ``ny`` pixels.

    ``method`` rounds the lower edge ``x - nx/2`` (astrocut's ``limit_rounding_method``):

    * ``"round"`` (astrocut's default for FITS and cube cutouts): nearest integer, halves up. The box middle
      ``xmin + (nx - 1)/2`` can be up to one pixel from ``x``.
    * ``"ceil"``: astropy ``Cutout2D``'s rule (astrocut's ASDF rule): the middle lies within half a pixel of
      ``x``, so for odd ``nx`` the middle pixel is the one containing the target.
    * ``"floor"``.

    The centre is first rounded to 1e-6 px, so world-to-pixel round-off cannot move a box (a target on a pixel
    centre gives a box centred on that pixel for odd sizes).
    """
    check_rounding_method(method)
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


def extract_padded(
    source: Any,
    limits: np.ndarray,
    image_shape: tuple[int, ...],
    fill_value: float = np.nan,
    dtype: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``limits`` out of ``source``, padding outside the image with ``fill_value``.

    ``source`` is an ndarray, an astropy ``Section`` or anything sliceable as ``source[..., y0:y1, x0:x1]``.
    Only the overlapping rows and columns are read from ``source``.

    Returns
    -------
    data : ndarray of shape ``(..., ny, nx)``
        The cutout.
    aperture : int32 ndarray of shape ``(ny, nx)``
        1 where the pixel is on the image, 0 for padding.
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
    """Return a copy of ``wcs`` whose pixel origin is moved to ``(xmin, ymin)``.

    SIP distortion and lookup-table distortions (``cpdis1/2``, ``det2im1/2``) are kept: a table's ``crval`` is
    the image pixel of its reference point, so it moves with the origin.

    ``shape_xy`` sets ``pixel_shape`` of the result (``(nx, ny)``).
    """
    from astropy.wcs import DistortionLookupTable, Sip

    out = wcs.deepcopy()
    out.wcs.crpix = out.wcs.crpix - np.array([xmin, ymin], dtype=float)
    if out.sip is not None:
        s = out.sip
        out.sip = Sip(s.a, s.b, s.ap, s.bp, (s.crpix[0] - xmin, s.crpix[1] - ymin))
    for name in ("cpdis1", "cpdis2", "det2im1", "det2im2"):
        t = getattr(out, name, None)
        if t is not None:
            setattr(
                out,
                name,
                DistortionLookupTable(
                    np.asarray(t.data, dtype=np.float32),
                    tuple(t.crpix),
                    (t.crval[0] - xmin, t.crval[1] - ymin),
                    tuple(t.cdelt),
                ),
            )
    if shape_xy is not None:
        out.pixel_shape = tuple(int(v) for v in shape_xy)
    return out
