"""gwcs helpers for Roman ASDF cutouts: inversion, slicing, local linear WCS, FITS approximation, wcsinfo.

Conventions (the same as :mod:`skycut.core.geometry` and gwcs):

* Pixel coordinates are 0-based with pixel centres on integers; ``x`` is the column (numpy axis -1),
  ``y`` the row (numpy axis -2). gwcs takes and returns pixel coordinates in ``(x, y)`` order.
* A gwcs ``bounding_box`` is given in ``(x, y)`` order: ``((xlow, xhigh), (ylow, yhigh))``;
  ``pixel_shape`` is ``(nx, ny)`` and ``array_shape`` is ``(ny, nx)``.
* Limits are half-open ``[[xmin, xmax], [ymin, ymax]]`` in the original image's pixels (not clipped).

gwcs and astropy are imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.geometry import shifted_wcs
from ..exceptions import DataWarning, InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.wcs import WCS

log = logging.getLogger(__name__)

__all__ = [
    "FileFitsWcs",
    "centered_limits",
    "make_cutout2d",
    "fits_approximation",
    "get_center_pixel",
    "is_gwcs",
    "local_linear_wcs",
    "pixel_scale_and_orientation",
    "s_region_polygon",
    "sky_of_pixels",
    "slice_gwcs",
    "updated_wcsinfo",
]


def is_gwcs(obj: Any) -> bool:
    """Return True if ``obj`` is a :class:`gwcs.wcs.WCS` (without importing gwcs when it cannot be one)."""
    if obj is None or type(obj).__module__.split(".")[0] != "gwcs":
        return False
    from gwcs.wcs import WCS as GWCS

    return isinstance(obj, GWCS)


def sky_of_pixels(gwcsobj: Any, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """World coordinates ``(ra, dec)`` in degrees of 0-based pixel positions ``(x, y)``.

    The bounding box is ignored, so positions outside the image (padding) still get a sky position.
    """
    ra, dec = gwcsobj(np.asarray(x, dtype=float), np.asarray(y, dtype=float), with_bounding_box=False)
    return np.asarray(getattr(ra, "value", ra), dtype=float), np.asarray(
        getattr(dec, "value", dec), dtype=float
    )


def _tangent_plane(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Project gnomonically about ``(ra0, dec0)`` to standard coordinates ``(xi, eta)`` in degrees.

    ``xi`` grows to the East (increasing RA) and ``eta`` to the North.
    """
    a, d = np.radians(ra), np.radians(dec)
    a0, d0 = math.radians(ra0), math.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return np.degrees(xi), np.degrees(eta)


def local_jacobian(gwcsobj: Any, x: float, y: float) -> tuple[float, float, np.ndarray]:
    """Sky position of pixel ``(x, y)`` and the local CD matrix (degrees per pixel, FITS convention).

    Returns
    -------
    ra, dec : float
        World coordinates of the pixel, degrees.
    cd : ndarray (2, 2)
        ``cd[i, j] = d(intermediate_i) / d(pixel_j)`` with intermediate axes ``(xi, eta)`` (East, North) and
        pixel axes ``(x, y)``, from central differences of half a pixel.
    """
    xs = np.array([x, x - 0.5, x + 0.5, x, x], dtype=float)
    ys = np.array([y, y, y, y - 0.5, y + 0.5], dtype=float)
    ra, dec = sky_of_pixels(gwcsobj, xs, ys)
    if not np.all(np.isfinite(ra)) or not np.all(np.isfinite(dec)):
        raise InvalidInputError(f"the gwcs gives no sky position near pixel ({x:.2f}, {y:.2f})")
    xi, eta = _tangent_plane(ra, dec, float(ra[0]), float(dec[0]))
    cd = np.array([[xi[2] - xi[1], xi[4] - xi[3]], [eta[2] - eta[1], eta[4] - eta[3]]])
    return float(ra[0]), float(dec[0]), cd


def local_linear_wcs(gwcsobj: Any, x: float, y: float) -> WCS:
    """Return a linear ``RA---TAN``/``DEC--TAN`` astropy WCS tangent to ``gwcsobj`` at pixel ``(x, y)``.

    ``(x, y)`` is a 0-based pixel position.

    Used for pixel scales (angular cutout sizes) near a target, where a global fit would be overkill.
    """
    from astropy.wcs import WCS

    ra, dec, cd = local_jacobian(gwcsobj, x, y)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [x + 1.0, y + 1.0]  # FITS pixels are 1-based
    w.wcs.cd = cd
    w.wcs.set()
    return w


def pixel_scale_and_orientation(gwcsobj: Any, x: float, y: float) -> tuple[float, float]:
    """Pixel scale (degrees per pixel, square root of the pixel area) and orientation at pixel ``(x, y)``.

    The orientation is the angle in degrees from celestial North to the image ``+y`` axis, positive towards
    increasing right ascension (East), wrapped to ``(-180, 180]`` (Roman's ``wcsinfo.orientation``).
    """
    _, _, cd = local_jacobian(gwcsobj, x, y)
    scale = math.sqrt(abs(float(np.linalg.det(cd))))
    orientation = math.degrees(math.atan2(cd[0, 1], cd[1, 1]))
    if orientation <= -180.0:
        orientation += 360.0
    return scale, orientation


def _invert_by_iteration(
    gwcsobj: Any, ra: float, dec: float, start: tuple[float, float], iterations: int = 20
) -> tuple[float, float]:
    """Newton iterations on the forward transform in the tangent plane of the target."""
    x, y = start
    for _ in range(iterations):
        ra_i, dec_i, cd = local_jacobian(gwcsobj, x, y)
        xi, eta = _tangent_plane(np.array([ra]), np.array([dec]), ra_i, dec_i)
        step = np.linalg.solve(cd, np.array([xi[0], eta[0]]))
        x, y = x + float(step[0]), y + float(step[1])
        if abs(step[0]) < 1e-6 and abs(step[1]) < 1e-6:
            break
    return x, y


def get_center_pixel(gwcsobj: Any, ra: float, dec: float) -> tuple[float, float]:
    """0-based pixel position ``(x, y)`` (column, row) of the sky position ``(ra, dec)`` in degrees.

    Starts from the gwcs inverse (analytic, fitted, or gwcs's numerical one) ignoring the bounding box, then
    refines it with Newton iterations on the forward transform, so the result is exact for the forward
    transform even when the gwcs inverse is only an approximation (as Roman's fitted polynomial inverses are).
    If gwcs cannot invert at all, the iterations start from the middle of the bounding box. Returns NaNs when
    the position does not project onto the detector plane.
    """
    try:
        x, y = gwcsobj.invert(ra, dec, with_bounding_box=False)
        x, y = float(getattr(x, "value", x)), float(getattr(y, "value", y))
    except Exception as exc:  # gwcs raises NotImplementedError, AttributeError, ... depending on the model
        log.debug("gwcs.invert failed (%s); inverting by iteration", exc)
        bbox = _bbox_tuple(gwcsobj)
        x, y = (0.0, 0.0) if bbox is None else ((bbox[0][0] + bbox[0][1]) / 2, (bbox[1][0] + bbox[1][1]) / 2)
    if not (math.isfinite(x) and math.isfinite(y)):
        return math.nan, math.nan
    try:
        return _invert_by_iteration(gwcsobj, float(ra), float(dec), (x, y))
    except (InvalidInputError, np.linalg.LinAlgError):
        return math.nan, math.nan


def _bbox_tuple(gwcsobj: Any) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Return the gwcs bounding box as ``((xlow, xhigh), (ylow, yhigh))``, or ``None``."""
    try:
        bbox = gwcsobj.bounding_box
    except (NotImplementedError, AttributeError):
        return None
    if bbox is None:
        return None
    try:
        (x0, x1), (y0, y1) = bbox.bounding_box(order="F")
    except AttributeError:  # a plain tuple
        (x0, x1), (y0, y1) = bbox
    return (float(x0), float(x1)), (float(y0), float(y1))


def slice_gwcs(gwcsobj: Any, limits: np.ndarray) -> Any:
    """Return a deep copy of ``gwcsobj`` for a cutout starting at original pixel ``(xmin, ymin)``.

    The cutout's pixel ``(0, 0)`` is original pixel ``(xmin, ymin)``.

    ``Shift(xmin) & Shift(ymin)`` is prepended to the transform leaving the input (detector) frame, so that
    ``sliced(x, y) == original(x + xmin, y + ymin)``. The bounding box becomes ``((0, nx - 1), (0, ny - 1))``
    in ``(x, y)`` order, ``pixel_shape = (nx, ny)`` and ``array_shape = (ny, nx)``.

    Parameters
    ----------
    gwcsobj : gwcs.wcs.WCS
        WCS of the full image.
    limits : array ``[[xmin, xmax], [ymin, ymax]]``
        Half-open cutout limits in original pixels (may extend beyond the image).

    Returns
    -------
    gwcs.wcs.WCS
        The sliced copy; ``gwcsobj`` is not changed.
    """
    from astropy.modeling.models import Shift

    (xmin, xmax), (ymin, ymax) = (int(v) for v in limits[0]), (int(v) for v in limits[1])
    nx, ny = xmax - xmin, ymax - ymin
    out = copy.deepcopy(gwcsobj)
    first = out.available_frames[0]
    out.bounding_box = None  # the original box is meaningless in cutout pixels
    out.insert_transform(first, Shift(float(xmin)) & Shift(float(ymin)), after=True)
    out.bounding_box = ((0, nx - 1), (0, ny - 1))
    out.pixel_shape = (nx, ny)
    out.array_shape = (ny, nx)
    return out


def fits_approximation(gwcsobj: Any, image_shape: tuple[int, int], *, max_pix_error: float = 0.1) -> WCS:
    """Fit a FITS (TAN-SIP) astropy WCS approximating ``gwcsobj`` over an image of numpy shape ``(ny, nx)``.

    Uses ``gwcs.WCS.to_fits_sip``; the fit covers the gwcs bounding box, or the whole image (pixel edges)
    when the gwcs has none. ``max_pix_error`` (pixels) bounds the forward and inverse fit errors.
    """
    from astropy.wcs import WCS

    ny, nx = int(image_shape[0]), int(image_shape[1])
    bbox = _bbox_tuple(gwcsobj)
    if bbox is None:
        bbox = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    header = gwcsobj.to_fits_sip(
        bounding_box=bbox, max_pix_error=max_pix_error, max_inv_pix_error=max_pix_error
    )
    w = WCS(header)
    w.pixel_shape = (nx, ny)
    return w


def s_region_polygon(gwcsobj: Any, shape: tuple[int, int]) -> str:
    """Return the S_REGION of an image of numpy shape ``(ny, nx)``: ``"POLYGON ICRS ra1 dec1 ... ra4 dec4"``.

    The polygon follows the outer pixel edges, corners in the order (xlow, ylow), (xhigh, ylow),
    (xhigh, yhigh), (xlow, yhigh).
    """
    ny, nx = int(shape[0]), int(shape[1])
    xs = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
    ys = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
    ra, dec = sky_of_pixels(gwcsobj, xs, ys)
    numbers = " ".join(f"{r % 360.0:.9f} {d:.9f}" for r, d in zip(ra, dec, strict=True))
    return f"POLYGON ICRS {numbers}"


UNSET = -999999  # roman_datamodels' placeholder for "no value"


def _unset(value: Any) -> bool:
    try:
        return float(value) == UNSET
    except (TypeError, ValueError):
        return False


def updated_wcsinfo(
    wcsinfo: Any, sliced: Any, limits: np.ndarray, parent_shape: tuple[int, int] | None = None
) -> Any:
    """Return a copy of Roman ``meta.wcsinfo`` describing a cutout.

    ``s_region`` is recomputed from ``sliced`` (the cutout's gwcs). When present in the input, ``x_ref`` and
    ``y_ref`` (pixel of the projection reference point) are moved into cutout pixels (unless they hold the
    placeholder -999999), ``image_shape`` gets the cutout shape (``(ny, nx)`` if the input listed
    ``parent_shape``, the original numpy shape, in that order and it is not square; otherwise ``(nx, ny)`` as
    the Roman schema says), and ``ra``, ``dec``, ``pixel_scale`` and ``orientation`` (which describe the image
    centre) are evaluated at the cutout centre. Other entries (``ra_ref``, ``v2_ref``, ...) are kept.
    """
    out = copy.deepcopy(wcsinfo)
    (xmin, xmax), (ymin, ymax) = limits
    nx, ny = int(xmax - xmin), int(ymax - ymin)
    out["s_region"] = s_region_polygon(sliced, (ny, nx))
    for name, shift in (("x_ref", xmin), ("y_ref", ymin)):
        if name in out and not _unset(out[name]):
            out[name] = float(out[name]) - float(shift)
    if "image_shape" in out:
        old = [int(v) for v in out["image_shape"]]
        array_order = parent_shape is not None and old[0] != old[1] and old == [int(v) for v in parent_shape]
        out["image_shape"] = [ny, nx] if array_order else [nx, ny]
    xc, yc = (nx - 1) / 2.0, (ny - 1) / 2.0
    wants_centre = any(k in out for k in ("ra", "dec", "pixel_scale", "orientation"))
    if wants_centre:
        ra, dec = sky_of_pixels(sliced, xc, yc)
        if "ra" in out:
            out["ra"] = float(ra) % 360.0
        if "dec" in out:
            out["dec"] = float(dec)
        if "pixel_scale" in out or "orientation" in out:
            scale, orientation = pixel_scale_and_orientation(sliced, xc, yc)
            if "pixel_scale" in out:
                out["pixel_scale"] = scale
            if "orientation" in out:
                out["orientation"] = orientation
    return out


def centered_limits(center_xy: tuple[float, float], shape_xy: tuple[int, int]) -> np.ndarray:
    """Return the half-open box limits ``[[xmin, xmax], [ymin, ymax]]`` of an ASDF cutout.

    This is :func:`skycut.core.geometry.cutout_limits` with ``"ceil"`` (``xmin = ceil(x - nx / 2)``, astropy
    ``Cutout2D``'s rule, as astrocut uses for ASDF).
    """
    from ..core.geometry import cutout_limits

    return cutout_limits(center_xy, shape_xy, "ceil")


class FileFitsWcs:
    """The FITS (TAN-SIP) approximation of one file's gwcs, fitted on first use only (it costs tens of ms)."""

    def __init__(self, gw: Any, parent_shape: tuple[int, int], file: str):
        self._gw, self._shape, self._file = gw, parent_shape, file
        self._done, self._wcs = False, None

    def get(self) -> Any:
        """Return the fitted FITS WCS (fitting it on the first call), or None if the gwcs cannot be fitted.

        A failed fit warns once (:class:`DataWarning`); the cutouts then have no FITS WCS.
        """
        if not self._done:
            self._done = True
            try:
                self._wcs = fits_approximation(self._gw, self._shape)
            except Exception as exc:  # gwcs raises various errors for WCSs it cannot fit
                warnings.warn(
                    f"{self._file}: cannot approximate the gwcs by a FITS WCS ({exc}); cutouts will "
                    "have no FITS WCS",
                    DataWarning,
                    stacklevel=2,
                )
        return self._wcs


@functools.cache
def _lazy_cutout2d_class() -> type:
    """``Cutout2D`` whose ``wcs`` (the FITS approximation, shifted to the cutout) is computed on first access."""
    from astropy.nddata import Cutout2D

    class LazyWcsCutout2D(Cutout2D):
        _wcs_factory: Any = None

        @property
        def wcs(self) -> Any:
            if self._wcs_factory is not None:
                factory, self._wcs_factory = self._wcs_factory, None
                self.__dict__["_wcs"] = factory()
            return self.__dict__.get("_wcs")

        @wcs.setter
        def wcs(self, value: Any) -> None:
            self._wcs_factory = None
            self.__dict__["_wcs"] = value

    LazyWcsCutout2D.__name__ = LazyWcsCutout2D.__qualname__ = "Cutout2D"
    return LazyWcsCutout2D


def make_cutout2d(
    data: np.ndarray, limits: np.ndarray, parent_shape: tuple[int, int], fits_wcs: FileFitsWcs
) -> Any:
    """Make an astropy ``Cutout2D`` for ``limits`` of an image of numpy shape ``parent_shape``, with ``data``.

    Its bookkeeping (``xmin_original``, ``slices_original``, ...) comes from astropy, computed on a zero-cost
    stand-in for the full image; the pixels are the ones already cut by :func:`skycut.image.asdf_io.cut_array`.
    ``position = (xmin + nx / 2, ymin + ny / 2)`` makes astropy's limits equal ``limits``. Its ``wcs`` is the
    file's FITS approximation with CRPIX moved by ``(xmin, ymin)`` (SIP kept), computed when first used.
    """
    (xmin, xmax), (ymin, ymax) = (int(v) for v in limits[0]), (int(v) for v in limits[1])
    nx, ny = xmax - xmin, ymax - ymin
    stand_in = np.broadcast_to(np.float32(0), tuple(parent_shape))
    cut = _lazy_cutout2d_class()(
        stand_in, (xmin + nx / 2.0, ymin + ny / 2.0), (ny, nx), wcs=None, mode="partial", fill_value=0.0
    )
    if cut.shape != data.shape or cut.xmin_original != max(xmin, 0) or cut.ymin_original != max(ymin, 0):
        raise AssertionError(
            f"Cutout2D bookkeeping {cut.bbox_original} disagrees with limits {limits.tolist()}"
        )
    cut.data = data

    def shifted() -> Any:
        full = fits_wcs.get()
        return None if full is None else shifted_wcs(full, xmin, ymin, (nx, ny))

    cut._wcs_factory = shifted
    return cut
