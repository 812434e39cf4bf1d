"""Every TESS sector, camera and CCD that holds a target, found offline and vectorised with numpy.

The geometry is tess-point's (``tess_stars2px``, a dependency): its sector pointing table, its sky-to-camera
rotation matrices, and its focal-plane model (the radial optics polynomial, the azimuthal asymmetry terms, each
CCD's origin, rotation angle and pixel size). They are read from tess-point's own objects at run time
(:func:`tess_geometry`) and then applied to all targets at once with array arithmetic, instead of tess-point's
per-target, per-sector Python loop.

Conventions
-----------
* Pixel coordinates are tess-point's: ``column`` and ``row`` are **1-based** coordinates of a SPOC calibrated
  FFI (the cube's image), pixel centres at integers. The science pixels are columns 45..2092 and rows 1..2048
  (the first 44 columns are collateral); column = tess-point's CCD ``x`` + 45, row = CCD ``y`` + 1. A cube
  cutout's 0-based ``x`` (FITS axis 1) is ``column - 1``, its ``y`` is ``row - 1``.
* Sectors, cameras (1..4) and CCDs (1..4) are numbered as tess-point and MAST number them.
* Positions are ICRS degrees, without tess-point's optional aberration correction (its default).
* A target counts for a (sector, camera, CCD) when its cutout box touches that CCD's science pixels. The box is
  ``nx`` columns by ``ny`` rows (pixels, or an angle divided by ``pixel_scale``, 21"/pixel by default), centred
  on the target's pixel position and aligned with the CCD; it touches when it overlaps the science area
  ``44.5 < column < 2092.5``, ``0.5 < row < 2048.5`` (the outer edges of the edge pixels) by more than zero.
  ``cutout_size=0`` asks for the target's own pixel. ``edge_margin`` widens that area on every side:
  tess-point's own acceptance window is ``44 < column < 2093``, ``0 < row < 2049``, i.e. ``edge_margin=0.5``
  with ``cutout_size=0`` reproduces its answer exactly. The cube cutter rounds the box to whole pixels, which
  can move it by up to half a pixel: a box touching by less than that may yield only collateral pixels.
* Right across RA 0/360 and at the poles: all work is on unit vectors, never on RA differences.

MAST's footprint file (:mod:`skycut.tess.footprint`, ``footprint_uri``) remains the alternative that needs the
network; this module needs none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.coords import parse_size
from ..exceptions import InvalidInputError, InvalidQueryError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.table import Table

log = logging.getLogger(__name__)

ARCSEC_PER_PX = 21.0
"""Nominal TESS pixel scale (arcsec per pixel), used to turn angular cutout sizes into pixels."""
CUBE_BASE_URI = "s3://stpubdata/tess/public/mast/"
"""Prefix of MAST's public TESS cubes (astrocut's ``S3_BASE_FILE_PATH``)."""

COLLATERAL_COLUMNS = 44
"""Collateral columns before the first science column of a SPOC FFI (tess-point adds 45 = 44 + 1-based)."""
SCIENCE_PIXELS = 2048
"""Science pixels per CCD side."""
FIRST_COLUMN, LAST_COLUMN = COLLATERAL_COLUMNS + 1, COLLATERAL_COLUMNS + SCIENCE_PIXELS  # 45, 2092 (1-based)
FIRST_ROW, LAST_ROW = 1, SCIENCE_PIXELS  # 1, 2048 (1-based)

# tess-point's field-of-view gate (Levine_FPG.star_in_fov): camera latitude above 70 deg and both projected
# angles within 12.5 deg of the boresight. Every science pixel lies inside it (tests/test_sectors.py checks).
_FOV_HALF_WIDTH_DEG = 12.5
_FOV_MIN_LAT_DEG = 70.0
_MAX_BOX_HALF_DIAGONAL_DEG = 6.0  # the optics polynomial is a fit to the field; do not extrapolate far beyond
_CHUNK = 4096  # targets per block: bounds the (targets x pointings) work arrays to ~20 MB

MATCH_DTYPE = np.dtype(
    [
        ("target", np.int64),
        ("sector", np.int32),
        ("camera", np.int8),
        ("ccd", np.int8),
        ("column", np.float64),
        ("row", np.float64),
        ("inside", np.bool_),
    ]
)
"""One match: target index, sector, camera, CCD, 1-based column/row, and whether the centre is on a science
pixel (``inside``; with a cutout box the centre may lie off the CCD while the box touches it)."""


# --------------------------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class TessGeometry:
    """tess-point's pointing table and focal-plane model as arrays (read by :func:`tess_geometry`).

    Attributes
    ----------
    sectors : ndarray of int, shape (S,)
        Sector numbers, in tess-point's order.
    ra, dec, roll : ndarray of float, shape (S,)
        Spacecraft boresight and roll per sector (degrees).
    rotations : ndarray, shape (S, 4, 3, 3)
        Sky (ICRS unit vector) to camera frame rotation per sector and camera (tess-point's ``rmat4``).
    optcon : ndarray, shape (4, 6)
        Per camera: focal length (mm) then the coefficients of the radial polynomial in ``tan(theta)**2``.
    asymang, asymfac : ndarray, shape (4,)
        Azimuthal asymmetry angle (degrees) and factor per camera.
    ccdxy0 : ndarray, shape (4, 4, 2)
        Focal-plane origin (mm) of each camera's CCDs.
    ccdang : ndarray, shape (4, 4)
        CCD rotation angles (degrees).
    pixsz : ndarray, shape (4, 4, 2)
        Pixel sizes (mm) along x and y.
    version : str
        tess-point's version.
    """

    sectors: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    roll: np.ndarray
    rotations: np.ndarray
    optcon: np.ndarray
    asymang: np.ndarray
    asymfac: np.ndarray
    ccdxy0: np.ndarray
    ccdang: np.ndarray
    pixsz: np.ndarray
    version: str


@lru_cache(maxsize=1)
def tess_geometry() -> TessGeometry:
    """Read tess-point's pointing table and camera geometry once per process.

    Importing ``tess_stars2px`` (which imports astropy.coordinates and scipy) is most of the cost, about 1 s in
    a fresh process; building its pointing objects adds about 0.05 s.
    """
    import tess_stars2px

    try:
        from importlib.metadata import version

        tp_version = version("tess-point")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        tp_version = "unknown"
    scinfo = tess_stars2px.TESS_Spacecraft_Pointing_Data()
    fpgs = scinfo.fpgObjs
    first = fpgs[0]
    for name in ("optcon", "asymang", "asymfac", "ccdxy0", "ccdang", "pixsz"):
        if any(not np.array_equal(getattr(f, name), getattr(first, name)) for f in fpgs):
            raise InvalidInputError(
                f"tess-point {tp_version}: focal-plane parameter {name} differs between "
                "sectors; skycut.tess.sectors assumes one focal-plane model"
            )

    def frozen(a: Any, dtype: Any = np.float64) -> np.ndarray:
        out = np.array(a, dtype=dtype)
        out.setflags(write=False)
        return out

    geometry = TessGeometry(
        sectors=frozen(scinfo.sectors, np.int64),
        ra=frozen(scinfo.ras),
        dec=frozen(scinfo.decs),
        roll=frozen(scinfo.rolls),
        rotations=frozen(np.stack([f.rmat4 for f in fpgs])),
        optcon=frozen(first.optcon),
        asymang=frozen(first.asymang),
        asymfac=frozen(first.asymfac),
        ccdxy0=frozen(first.ccdxy0),
        ccdang=frozen(first.ccdang),
        pixsz=frozen(first.pixsz),
        version=tp_version,
    )
    log.debug(
        "tess-point %s geometry: %d sectors (%d..%d)",
        tp_version,
        len(geometry.sectors),
        geometry.sectors.min(),
        geometry.sectors.max(),
    )
    return geometry


def available_sectors() -> np.ndarray:
    """Sector numbers in tess-point's pointing table (its order; includes its special pointings)."""
    return tess_geometry().sectors.copy()


# --------------------------------------------------------------------------------------------- inputs


def _size_px(cutout_size: Any, pixel_scale: float) -> tuple[float, float]:
    """Return ``(nx, ny)`` in pixels (x = columns), each read by :func:`skycut.core.coords.parse_size`.

    Plain numbers are pixels, angles are divided by ``pixel_scale`` (arcsec per pixel). Not rounded: the box is
    the continuous one. A value of 0 (astrocut's footprint convention) is no extent along that axis.
    """

    def px(value: float, unit: str) -> float:
        return float(value) if unit == "pixel" else float(value) * 3600.0 / pixel_scale

    if not isinstance(cutout_size, (list, tuple)):
        if _is_zero(cutout_size):
            return 0.0, 0.0
        size = parse_size(cutout_size)
        return px(size.x, size.units[0]), px(size.y, size.units[1])
    values = list(cutout_size) * (2 if len(cutout_size) == 1 else 1)
    if len(values) != 2:
        raise InvalidInputError(f"cutout_size needs one or two values [nx, ny], got {cutout_size!r}")
    out = [0.0 if _is_zero(v) else px(parse_size(v).x, parse_size(v).units[0]) for v in values]
    return out[0], out[1]


def _is_zero(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and value == 0
    )


def _positions(ra: Any, dec: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        ra_a = np.atleast_1d(np.asarray(ra, dtype=np.float64))
        dec_a = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"ra and dec must be numbers in degrees: {exc}") from exc
    if ra_a.ndim != 1 or dec_a.ndim != 1 or ra_a.shape != dec_a.shape:
        raise InvalidInputError(
            f"ra and dec must be scalars or 1-D arrays of one length, got shapes "
            f"{ra_a.shape} and {dec_a.shape}"
        )
    with np.errstate(invalid="ignore"):
        bad = ~(
            np.isfinite(ra_a) & np.isfinite(dec_a) & (np.abs(dec_a) <= 90.0) & (ra_a >= 0.0) & (ra_a <= 360.0)
        )
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"target {i}: (ra, dec) = ({ra_a[i]!r}, {dec_a[i]!r}) breaks the coordinate "
            f"rule (finite degrees, 0 <= ra <= 360, -90 <= dec <= 90); "
            f"{int(bad.sum())} bad target(s)"
        )
    return ra_a, dec_a


def _pointing_index(geometry: TessGeometry, sectors: Any) -> np.ndarray:
    if sectors is None:
        return np.arange(len(geometry.sectors))
    wanted = np.atleast_1d(np.asarray(sectors))
    if wanted.ndim != 1 or not (np.issubdtype(wanted.dtype, np.integer) or wanted.size == 0):
        raise InvalidInputError(f"sectors must be an int or a list of ints, got {sectors!r}")
    wanted = np.unique(wanted.astype(np.int64))
    unknown = np.setdiff1d(wanted, geometry.sectors)
    if unknown.size:
        raise InvalidQueryError(
            f"sector(s) {', '.join(map(str, unknown))} not in tess-point "
            f"{geometry.version}'s pointing table (sectors {geometry.sectors.min()}.."
            f"{geometry.sectors.max()})"
        )
    return np.flatnonzero(np.isin(geometry.sectors, wanted))


# --------------------------------------------------------------------------------------------- the search


def _rotate(angle_deg: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tess-point's ``xyrotate`` sense: ``(c x + s y, -s x + c y)``."""
    a = np.radians(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return c * x + s * y, -s * x + c * y


def _focal_plane(
    g: TessGeometry, cam: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Focal-plane position (mm) of camera-frame vectors ``(x, y, z)`` (``z > 0``) for 0-based cameras."""
    px, py = x / z, y / z  # tan(theta) * (cos(phi), sin(phi))
    t2 = px * px + py * py
    coef = g.optcon[cam]  # (K, 6)
    poly = coef[:, 5]
    for k in (4, 3, 2, 1):
        poly = poly * t2 + coef[:, k]
    scale = -coef[:, 0] * poly
    fx, fy = scale * px, scale * py
    ang, fac = g.asymang[cam], g.asymfac[cam]
    if np.any(fac != 1.0):
        rx, ry = _rotate(ang, fx, fy)
        fx, fy = _rotate(-ang, rx * fac, ry)
    return fx, fy


def find_sectors(
    ra: Any,
    dec: Any,
    cutout_size: Any = 0,
    sectors: Any = None,
    *,
    pixel_scale: float = ARCSEC_PER_PX,
    edge_margin: float = 0.0,
) -> np.ndarray:
    """Every (target, sector, camera, CCD) whose science pixels the target's cutout box touches.

    Parameters
    ----------
    ra, dec : float or array-like of float, shape (N,)
        ICRS positions in degrees, ``0 <= ra <= 360``, ``-90 <= dec <= 90`` (skycut's coordinate rule).
    cutout_size : int, float, (nx, ny), str or Quantity
        Cutout box, ``nx`` columns by ``ny`` rows; plain numbers are pixels, angles are divided by
        ``pixel_scale``. ``0`` (default) asks for the target's own pixel. The box's half-diagonal may reach
        6 degrees at most.
    sectors : int or sequence of int, optional
        Sectors to search (default: all of tess-point's pointing table, see :func:`available_sectors`).
    pixel_scale : float
        Arcseconds per pixel for angular sizes (TESS: 21).
    edge_margin : float
        Pixels added to the science area on every side (``0.5`` reproduces tess-point's acceptance window).

    Returns
    -------
    ndarray of :data:`MATCH_DTYPE`
        One record per match, sorted by target index, sector, camera and CCD: ``target`` (index into the
        inputs), ``sector``, ``camera``, ``ccd``, ``column`` and ``row`` (1-based FFI pixel coordinates of the
        target, tess-point's convention; may lie off the science area when only the box touches), ``inside``
        (the target's own pixel is a science pixel). Empty input or no match gives an empty array.

    Raises
    ------
    InvalidInputError
        Bad positions (non-finite, ``|dec| > 90``, mismatched shapes), sizes or margin.
    InvalidQueryError
        A requested sector is not in tess-point's table.
    """
    ra_a, dec_a = _positions(ra, dec)
    nx, ny = _size_px(cutout_size, float(pixel_scale))
    if not np.isfinite(edge_margin) or edge_margin < 0:
        raise InvalidInputError(f"edge_margin must be zero or positive pixels, got {edge_margin!r}")
    half_diag_deg = 0.5 * np.hypot(nx, ny) * float(pixel_scale) / 3600.0
    if half_diag_deg > _MAX_BOX_HALF_DIAGONAL_DEG:
        raise InvalidInputError(
            f"cutout_size {cutout_size!r} is too large: its half-diagonal "
            f"({half_diag_deg:.2f} deg) exceeds {_MAX_BOX_HALF_DIAGONAL_DEG} deg"
        )
    g = tess_geometry()
    pointings = _pointing_index(g, sectors)
    if ra_a.size == 0 or pointings.size == 0:
        return np.zeros(0, dtype=MATCH_DTYPE)

    # Camera gate: tess-point's, widened by the box (a centre can sit off the field while its box reaches in).
    widen = np.radians(1.1 * half_diag_deg) + (
        np.radians(edge_margin * float(pixel_scale) / 3600.0 * 1.1) if edge_margin else 0.0
    )
    tan_gate = np.tan(np.radians(_FOV_HALF_WIDTH_DEG) + widen)
    sin_lat = np.sin(np.radians(_FOV_MIN_LAT_DEG) - widen)
    cos_pre = min(sin_lat, 1.0 / np.sqrt(1.0 + 2.0 * tan_gate**2))  # circle around the gate's square

    rot = g.rotations[pointings].reshape(-1, 3, 3)  # (P, 3, 3), P = pointings x 4 cameras
    xs_axis, ys_axis, zs_axis = rot[:, 0, :], rot[:, 1, :], rot[:, 2, :]
    zs32 = np.ascontiguousarray(zs_axis.T, dtype=np.float32)  # (3, P)
    cos_pre32 = np.float32(np.cos(np.arccos(cos_pre) + 1e-4))
    ccd_cos, ccd_sin = np.cos(np.radians(g.ccdang)), np.sin(np.radians(g.ccdang))  # (4 cameras, 4 CCDs)
    ra_r, dec_r = np.radians(ra_a), np.radians(dec_a)
    cd = np.cos(dec_r)
    vec = np.stack([np.cos(ra_r) * cd, np.sin(ra_r) * cd, np.sin(dec_r)], axis=1)  # (N, 3)

    lo_col, hi_col = FIRST_COLUMN - 0.5 - edge_margin - nx / 2, LAST_COLUMN + 0.5 + edge_margin + nx / 2
    lo_row, hi_row = FIRST_ROW - 0.5 - edge_margin - ny / 2, LAST_ROW + 0.5 + edge_margin + ny / 2
    parts = []
    for start in range(0, len(vec), _CHUNK):
        block = vec[start : start + _CHUNK]
        # float32 pre-selection (cos of the angle to every camera boresight), loosened by far more than its
        # rounding error; the exact float64 gate follows on the few candidates
        ti, pi = np.nonzero(block.astype(np.float32) @ zs32 > cos_pre32)
        if ti.size == 0:
            continue
        v = block[ti]
        z = np.einsum("kj,kj->k", v, zs_axis[pi])
        x = np.einsum("kj,kj->k", v, xs_axis[pi])
        y = np.einsum("kj,kj->k", v, ys_axis[pi])
        gate = (z > sin_lat) & (np.abs(x) <= tan_gate * z) & (np.abs(y) <= tan_gate * z)
        ti, pi, x, y, z = ti[gate], pi[gate], x[gate], y[gate], z[gate]
        cam = pi % 4
        fx, fy = _focal_plane(g, cam, x, y, z)
        # every CCD of the camera: a box in the gap between CCDs can touch two of them
        x0, y0 = g.ccdxy0[cam, :, 0], g.ccdxy0[cam, :, 1]  # (K, 4)
        dx, dy = fx[:, None] - x0, fy[:, None] - y0
        c, sn = ccd_cos[cam], ccd_sin[cam]
        cx, cy = c * dx + sn * dy, c * dy - sn * dx  # tess-point's xyrotate by the CCD angle
        column = cx / g.pixsz[cam, :, 0] - 0.5 + FIRST_COLUMN
        row = cy / g.pixsz[cam, :, 1] - 0.5 + FIRST_ROW
        hit = (column > lo_col) & (column < hi_col) & (row > lo_row) & (row < hi_row)
        k, ccd = np.nonzero(hit)
        out = np.empty(k.size, dtype=MATCH_DTYPE)
        out["target"] = ti[k] + start
        out["sector"] = g.sectors[pointings[pi[k] // 4]]
        out["camera"] = cam[k] + 1
        out["ccd"] = ccd + 1
        out["column"] = column[k, ccd]
        out["row"] = row[k, ccd]
        parts.append(out)
    result = np.concatenate(parts) if parts else np.zeros(0, dtype=MATCH_DTYPE)
    result["inside"] = (
        (result["column"] > FIRST_COLUMN - 0.5)
        & (result["column"] < LAST_COLUMN + 0.5)
        & (result["row"] > FIRST_ROW - 0.5)
        & (result["row"] < LAST_ROW + 0.5)
    )
    order = np.lexsort((result["ccd"], result["camera"], result["sector"], result["target"]))
    result = result[order]
    log.debug("%d target(s) x %d sector(s): %d match(es)", ra_a.size, pointings.size, result.size)
    return result


# --------------------------------------------------------------------------------------------- cubes, plans


def cube_name(sector: int, camera: int, ccd: int) -> str:
    """MAST's cube file name ``tess-sSSSS-C-D-cube.fits`` (sector zero-padded to 4 digits)."""
    return f"{obs_id(sector, camera, ccd)}-cube.fits"


def obs_id(sector: int, camera: int, ccd: int) -> str:
    """Return MAST's FFI observation id ``tess-sSSSS-C-D``.

    The footprint file's ``obs_id``, astrocut's ``sectorName``.

    Raises
    ------
    InvalidInputError
        No TESS cube can have this sector (1-9999), camera (1-4) or CCD (1-4).
    """
    sector, camera, ccd = int(sector), int(camera), int(ccd)
    if not (0 < sector <= 9999 and 1 <= camera <= 4 and 1 <= ccd <= 4):
        raise InvalidInputError(f"no TESS cube for sector {sector}, camera {camera}, CCD {ccd}")
    return f"tess-s{sector:04d}-{camera}-{ccd}"


def cube_uri(sector: int, camera: int, ccd: int, base_uri: str = CUBE_BASE_URI) -> str:
    """Return the cube's URI: ``{base_uri}tess-sSSSS-C-D-cube.fits``.

    By default on MAST's public S3 bucket (``s3://stpubdata/tess/public/mast/tess-s0038-2-2-cube.fits``,
    astrocut's naming); a ``/`` is added to ``base_uri`` when missing.
    """
    base = base_uri if base_uri.endswith("/") else base_uri + "/"
    return base + cube_name(sector, camera, ccd)


def group_by_cube(matches: np.ndarray, base_uri: str | None = None) -> dict[str, np.ndarray]:
    """Target indices per cube: ``{cube: sorted unique target indices}``.

    Parameters
    ----------
    matches : ndarray of :data:`MATCH_DTYPE`
        From :func:`find_sectors`.
    base_uri : str, optional
        Keys are cube file names (:func:`cube_name`) without it, URIs (:func:`cube_uri`) with it.

    Returns
    -------
    dict
        Ordered by (sector, camera, CCD); one entry per cube, so one job can open each cube once.
    """
    if matches.size == 0:
        return {}
    key = (
        matches["sector"].astype(np.int64) * 100
        + matches["camera"].astype(np.int64) * 10
        + matches["ccd"].astype(np.int64)
    )
    order = np.lexsort((matches["target"], key))
    key_sorted, targets = key[order], matches["target"][order]
    starts = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1]])
    out: dict[str, np.ndarray] = {}
    for s, chunk in zip(starts, np.split(targets, starts[1:]), strict=True):
        k = int(key_sorted[s])
        sector, camera, ccd = k // 100, (k // 10) % 10, k % 10
        name = cube_name(sector, camera, ccd) if base_uri is None else cube_uri(sector, camera, ccd, base_uri)
        out[name] = np.unique(chunk)
    return out


def plan_cubes(
    ra: Any,
    dec: Any,
    cutout_size: Any,
    sectors: Any = None,
    *,
    base_uri: str | None = CUBE_BASE_URI,
    pixel_scale: float = ARCSEC_PER_PX,
) -> dict[str, np.ndarray]:
    """Footprint-cutout plan without the network: ``{cube URI: target indices}`` (see :func:`find_sectors`)."""
    return group_by_cube(find_sectors(ra, dec, cutout_size, sectors, pixel_scale=pixel_scale), base_uri)


def get_tess_sectors(
    coordinates: Any, cutout_size: Any = 0, *, sequence: Any = None, pixel_scale: float = ARCSEC_PER_PX
) -> Table:
    """Offline counterpart of :func:`skycut.tess.footprint.get_tess_sectors` (same columns).

    Parameters
    ----------
    coordinates : SkyCoord, str, or list
        Cutout centre(s) (anything :func:`skycut.core.coords.radec_arrays` reads).
    cutout_size : int, (nx, ny), str or Quantity
        As :func:`find_sectors`.
    sequence : int or list of int, optional
        Restrict to these sectors.

    Returns
    -------
    Table
        ``sectorName`` (``tess-sSSSS-C-D``), ``sector``, ``camera``, ``ccd`` (int32): one row per distinct CCD
        any coordinate's box touches, sorted by sector, camera, CCD; empty (same columns) when none.
    """
    from astropy.table import Table

    from ..core.coords import radec_arrays

    ra, dec = radec_arrays(coordinates)
    found = find_sectors(ra, dec, cutout_size, sequence, pixel_scale=pixel_scale)
    triples = sorted({(int(r["sector"]), int(r["camera"]), int(r["ccd"])) for r in found})
    return Table(
        rows=[(obs_id(*t), *t) for t in triples] or None,
        names=["sectorName", "sector", "camera", "ccd"],
        dtype=["U20", "i4", "i4", "i4"],
    )
