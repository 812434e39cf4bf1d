"""Moving-target ("path-based") cutouts: astrocut's ``path_to_footprints`` and ``center_on_path``.

A *path* is a table with a ``time`` column (:class:`~astropy.time.Time`) and a ``position`` column
(:class:`~astropy.coordinates.SkyCoord`). :func:`path_to_footprints` turns a path crossing an image into
rectangles that cover it (to request ordinary cutouts); :func:`center_on_path` re-cuts TESS target pixel
files (TPFs, astrocut layout) into a TPF whose every row is a box centred on the target's interpolated position.

Conventions: pixel coordinates are 0-based, ``x`` = column = FITS axis 1, ``y`` = row; a two-element
``size`` is ``(nx, ny)`` (what astrocut's code does, though its docstrings say ``[ny, nx]``), so the re-cut
arrays have numpy shape ``(ny, nx)``. Moving boxes are placed with :func:`centered_limits` (the target within
half a pixel of the box centre). The path
is interpolated through unit vectors with :func:`scipy.interpolate.make_interp_spline` (cubic, or lower order
for short paths), so it is smooth across RA = 0/360. TPF times (``TIME``, BTJD = BJD_TDB - 2457000) are
compared with the path times converted to TDB.

Fixes relative to astrocut 1.4.0: the in-image test of ``path_to_footprints`` uses x against the number of
columns (astrocut swaps the axes); the APERTURE image is painted with rows from y and columns from x
(astrocut transposes it); rows whose box would leave the TPF are dropped instead of crashing; RA_OBJ/DEC_OBJ
(meaningless for a moving target) are not copied; the output is written atomically.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.atomic import write_hdulist
from ..core.coords import size_in_pixels, size_label
from ..core.geometry import shifted_wcs
from ..core.provenance import creation_date
from ..exceptions import InvalidInputError, InvalidQueryError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.table import Table
    from astropy.wcs import WCS

log = logging.getLogger(__name__)

TESS_TIME_OFFSET = 2457000.0
_COLUMN_KEYWORD = re.compile(
    r"^(T(TYPE|FORM|UNIT|DISP|DIM|NULL|SCAL|ZERO)\d+|TFIELDS|WCAX\d+P?|WCSN\d+P?|\d+C(TYP|RPX|RVL|UNI|DLT|TY|RP|RV|UN|DL)\d+P?"
    r"|\d\dPC\d+)$"
)


# --------------------------------------------------------------------------------------------- small helpers


def _size_xy(size: Any, wcs: WCS | None = None) -> tuple[int, int]:
    """Convert ``size`` to whole pixels ``(nx, ny)`` by :func:`skycut.core.coords.size_in_pixels`.

    The one size rule: positive, fractional pixels rounded halves up, angular sizes through ``wcs``'s pixel
    scale.
    """
    return size_in_pixels(size, wcs)


def _image_shape(img_wcs: WCS) -> tuple[int, int]:
    """Numpy ``(ny, nx)`` of the image a WCS describes (needs ``pixel_shape``)."""
    shape = img_wcs.array_shape
    if shape is None:
        raise InvalidInputError(
            "img_wcs has no image size: set img_wcs.pixel_shape = (nx, ny) (NAXIS1, NAXIS2)"
        )
    return int(shape[-2]), int(shape[-1])


def centered_limits(center_xy: tuple[float, float], shape_xy: tuple[int, int]) -> np.ndarray:
    """Return half-open limits ``[[xmin, xmax], [ymin, ymax]]`` of a box centred on ``center_xy``.

    This is :func:`skycut.core.geometry.cutout_limits` with ``"ceil"`` (the target within half a pixel of the
    box middle; for odd sizes in the middle pixel). Pixels are 0-based, ``x`` the column.
    """
    from ..core.geometry import cutout_limits

    return cutout_limits(center_xy, shape_xy, "ceil")


def _box_center(limits: np.ndarray) -> tuple[float, float]:
    """Return a centre from which a cutout of the box's size gives back exactly the box.

    The geometric centre ``xmin + (n - 1) / 2`` puts ``c - n/2 + 0.5`` exactly on an integer, so a float
    round trip through the sky can shift the box by one pixel; ``xmin + n/2 - 0.25`` is a quarter pixel away
    from every rounding boundary of both skycut's ``floor(c - n/2 + 0.5)`` and astrocut's ``rint(c - n/2)``.
    """
    (xmin, xmax), (ymin, ymax) = limits
    return xmin + (xmax - xmin) / 2.0 - 0.25, ymin + (ymax - ymin) / 2.0 - 0.25


def _densify(x: np.ndarray, y: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Insert points on each segment so consecutive points are at most ``step`` pixels apart."""
    if len(x) < 2:
        return x, y
    xs, ys = [x[:1]], [y[:1]]
    for i in range(1, len(x)):
        n = max(1, int(np.ceil(np.hypot(x[i] - x[i - 1], y[i] - y[i - 1]) / step)))
        frac = np.arange(1, n + 1) / n
        xs.append(x[i - 1] + frac * (x[i] - x[i - 1]))
        ys.append(y[i - 1] + frac * (y[i] - y[i - 1]))
    return np.concatenate(xs), np.concatenate(ys)


def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array(
        [[min(a[0, 0], b[0, 0]), max(a[0, 1], b[0, 1])], [min(a[1, 0], b[1, 0]), max(a[1, 1], b[1, 1])]]
    )


def _area(box: np.ndarray) -> int:
    return int((box[0, 1] - box[0, 0]) * (box[1, 1] - box[1, 0]))


# --------------------------------------------------------------------------------------------- path input


def _path_positions(path: Any) -> SkyCoord:
    from astropy.coordinates import SkyCoord

    if isinstance(path, SkyCoord):
        return path.icrs.ravel() if not path.isscalar else path.icrs.reshape((1,))
    try:
        pos = path["position"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError("path must be a SkyCoord or a table with a 'position' column") from exc
    if not isinstance(pos, SkyCoord):
        raise InvalidInputError("path['position'] must be a SkyCoord column")
    return pos.icrs


def _check_path_table(path: Any) -> tuple[np.ndarray, SkyCoord]:
    """TDB Julian dates (sorted, strictly increasing) and positions of a path table."""
    from astropy.time import Time

    if isinstance(path, (str, os.PathLike)):
        path = read_path_table(path)
    try:
        times = path["time"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(
            "path must be a table with 'time' (Time) and 'position' (SkyCoord) columns"
        ) from exc
    if not isinstance(times, Time):
        raise InvalidInputError("path['time'] must be an astropy Time column")
    pos = _path_positions(path)
    jd = np.atleast_1d(times.tdb.jd)
    order = np.argsort(jd, kind="stable")
    jd, pos = jd[order], pos[order]
    if len(jd) < 2:
        raise InvalidInputError("path needs at least two (time, position) points to interpolate")
    if np.any(np.diff(jd) <= 0):
        raise InvalidInputError("path times must be distinct")
    return jd, pos


def path_interpolator(jd: np.ndarray, positions: SkyCoord):
    """Build an interpolating spline through the path: ``f(jd_tdb) -> SkyCoord`` (ICRS).

    Interpolates the Cartesian unit vectors (so RA wrap-around and the poles are harmless) with
    :func:`scipy.interpolate.make_interp_spline` of order ``min(3, n - 1)`` and re-normalises.
    """
    from scipy.interpolate import make_interp_spline

    xyz = positions.icrs.cartesian.xyz.value.T  # (n, 3)
    xyz = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    spline = make_interp_spline(jd, xyz, k=min(3, len(jd) - 1))

    def evaluate(t: Any) -> SkyCoord:
        v = np.atleast_2d(spline(np.atleast_1d(np.asarray(t, dtype=float))))
        return _unit_to_sky(v / np.linalg.norm(v, axis=1, keepdims=True))

    return evaluate


def _unit_to_sky(v: np.ndarray) -> SkyCoord:
    from astropy.coordinates import SkyCoord

    ra = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(v[:, 2], -1.0, 1.0)))
    return SkyCoord(ra, dec, unit="deg")


def read_path_table(path_file: str | os.PathLike, *, time_scale: str = "tdb") -> Table:
    """Read a moving-target path from CSV or ECSV.

    Parameters
    ----------
    path_file : path-like
        Columns ``time`` (Julian dates as numbers, or ISO strings such as ``2018-12-18T18:37:11``; an ECSV
        ``Time`` column keeps its own scale), ``ra`` and ``dec`` in degrees (or one ECSV ``position`` SkyCoord
        column). Column names are case-insensitive.
    time_scale : str
        Time scale of plain numbers/strings (default ``"tdb"``, the scale of TESS ``TIME``; the simulator's
        ``write_path_table`` writes TDB Julian dates).

    Returns
    -------
    Table
        Columns ``time`` (Time) and ``position`` (SkyCoord, ICRS), sorted by time.
    """
    from astropy.coordinates import SkyCoord
    from astropy.table import Table
    from astropy.time import Time

    name = os.fspath(path_file)
    fmt = (
        "ascii.ecsv"
        if name.lower().endswith(".ecsv")
        else "ascii.csv"
        if name.lower().endswith(".csv")
        else None
    )
    try:
        raw = Table.read(name, format=fmt) if fmt else Table.read(name, format="ascii")
    except FileNotFoundError as exc:
        raise InvalidInputError(f"{name}: path file not found") from exc
    except Exception as exc:
        raise InvalidInputError(f"{name}: cannot read a path table ({exc})") from exc
    cols = {c.lower(): c for c in raw.colnames}
    if "time" not in cols:
        raise InvalidInputError(f"{name}: needs a 'time' column (got {raw.colnames})")
    tcol = raw[cols["time"]]
    try:
        if isinstance(tcol, Time):
            times = tcol
        elif np.issubdtype(np.asarray(tcol).dtype, np.number):
            times = Time(np.asarray(tcol, dtype=float), format="jd", scale=time_scale)
        else:
            times = Time([str(v) for v in tcol], scale=time_scale)
    except ValueError as exc:
        raise InvalidInputError(f"{name}: cannot parse column 'time' as JD or ISO dates ({exc})") from exc
    if "position" in cols and isinstance(raw[cols["position"]], SkyCoord):
        pos = raw[cols["position"]].icrs
    elif "ra" in cols and "dec" in cols:
        ra = np.asarray(raw[cols["ra"]], dtype=float)
        dec = np.asarray(raw[cols["dec"]], dtype=float)
        if not (np.isfinite(ra).all() and np.isfinite(dec).all()) or np.any(np.abs(dec) > 90):
            raise InvalidInputError(f"{name}: ra/dec must be finite degrees with |dec| <= 90")
        pos = SkyCoord(ra, dec, unit="deg")
    else:
        raise InvalidInputError(f"{name}: needs 'ra' and 'dec' columns in degrees (got {raw.colnames})")
    table = Table({"time": times, "position": pos})
    table.sort("time")
    return table


# --------------------------------------------------------------------------------------------- footprints


def path_to_footprints(path: Any, size: Any, img_wcs: WCS, max_pixels: int = 10000) -> list[dict]:
    """Rectangles covering the part of a path that crosses an image, for ordinary cutout requests.

    Each path point inside the image gets a ``size`` box centred on it; consecutive boxes are merged (with
    extra points inserted so no stretch of the path between points is left uncovered) as long as the merged box
    has at most ``max_pixels`` pixels. Consecutive rectangles overlap by one box, so the box around any point
    of the path lies wholly inside one rectangle (what :func:`center_on_path` needs).

    Parameters
    ----------
    path : SkyCoord or Table with a ``position`` column
        Points along the path, in path order.
    size : int, (nx, ny), str or Quantity
        Box around every path point, in pixels (x = columns); fractional pixels are rounded (halves up), angular
        sizes use ``img_wcs``'s pixel scale (:func:`skycut.core.coords.size_in_pixels`).
    img_wcs : WCS
        WCS of the image, with ``pixel_shape`` set (``(nx, ny)`` = ``(NAXIS1, NAXIS2)``).
    max_pixels : int
        Largest area of a merged rectangle (a single box may exceed it).

    Returns
    -------
    list of dict
        ``{"coordinates": SkyCoord, "size": (ny, nx)}`` per rectangle (astroquery/Tesscut order, so
        ``Tesscut.download_cutouts(**footprint)`` works; pass ``size[::-1]`` as a skycut ``cutout_size``).
        Empty if the path misses the image.
    """
    sx, sy = _size_xy(size, img_wcs)
    ny_img, nx_img = _image_shape(img_wcs)
    positions = _path_positions(path)
    x, y = (np.atleast_1d(v).astype(float) for v in img_wcs.world_to_pixel(positions))
    good = np.isfinite(x) & np.isfinite(y)
    x, y = _densify(x[good], y[good], step=max(0.5, min(sx, sy) / 2.0))
    inside = (x >= -0.5) & (x < nx_img - 0.5) & (y >= -0.5) & (y < ny_img - 0.5)
    footprints: list[dict] = []
    current = previous = None
    for xi, yi in zip(x[inside], y[inside], strict=True):
        box = centered_limits((xi, yi), (sx, sy))
        if current is None:
            current = previous = box
            continue
        merged = _merge(current, box)
        if _area(merged) > max_pixels:
            footprints.append(_footprint(current, img_wcs))
            # the next rectangle starts at the previous point, so consecutive rectangles overlap and every
            # box between two neighbouring points lies wholly inside one rectangle
            current = _merge(previous, box)
        else:
            current = merged
        previous = box
    if current is not None:
        footprints.append(_footprint(current, img_wcs))
    log.debug("path_to_footprints: %d rectangles", len(footprints))
    return footprints


def _footprint(box: np.ndarray, img_wcs: WCS) -> dict:
    xc, yc = _box_center(box)
    nx, ny = int(box[0, 1] - box[0, 0]), int(box[1, 1] - box[1, 0])
    return {"coordinates": img_wcs.pixel_to_world(xc, yc), "size": (ny, nx)}


# --------------------------------------------------------------------------------------------- TPF re-cutting


def _tpf_wcs(hdul: fits.HDUList, img_wcs: WCS | None, label: str) -> WCS:
    """Return the pixel -> sky WCS of a TPF.

    The APERTURE header's (linear) WCS, or, when ``img_wcs`` (the FFI's WCS) is given, ``img_wcs`` shifted to
    the TPF's origin in the FFI. The origin is found by projecting the TPF's centre and corners through both
    WCSs (an integer offset, robust to windowed FFIs whose physical ``CRVAL1P`` offsets differ); if the two
    disagree by more than 0.3 px the TPF's own WCS is used.
    """
    from astropy.wcs import WCS, FITSFixedWarning

    if len(hdul) < 3:
        raise InvalidInputError(f"{label}: no APERTURE extension with a WCS (not an astrocut-style TPF?)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(hdul[2].header).celestial
    if not wcs.has_celestial:
        raise InvalidInputError(f"{label}: APERTURE header holds no celestial WCS")
    if img_wcs is None:
        return wcs
    ny, nx = hdul[2].data.shape if hdul[2].data is not None else (1, 1)
    px = np.array([(nx - 1) / 2, 0, nx - 1, 0, nx - 1], dtype=float)
    py = np.array([(ny - 1) / 2, 0, 0, ny - 1, ny - 1], dtype=float)
    fx, fy = (np.asarray(v, dtype=float) for v in img_wcs.world_to_pixel(wcs.pixel_to_world(px, py)))
    dx, dy = fx - px, fy - py
    if not (np.isfinite(dx).all() and np.isfinite(dy).all()):
        return wcs
    ox, oy = int(np.round(dx[0])), int(np.round(dy[0]))
    if max(np.abs(dx - ox).max(), np.abs(dy - oy).max()) > 0.3:
        log.warning(
            "%s: the TPF's WCS does not match img_wcs by an integer shift; using the TPF's WCS", label
        )
        return wcs
    return shifted_wcs(img_wcs.celestial, ox, oy)


def _recut_tpf(
    hdul: fits.HDUList,
    label: str,
    interp,
    jd_range: tuple[float, float],
    sx: int,
    sy: int,
    img_wcs: WCS | None,
) -> dict[str, Any] | None:
    """Rows of one TPF re-cut around the path; ``None`` when no row has a full box inside the TPF."""
    if len(hdul) < 2 or not hasattr(hdul[1], "columns") or "TIME" not in hdul[1].columns.names:
        raise InvalidInputError(f"{label}: not a target pixel file (no PIXELS table with a TIME column)")
    table = hdul[1].data
    header = hdul[1].header
    cols = hdul[1].columns
    flux = np.asarray(table["FLUX"]) if "FLUX" in cols.names else None
    if flux is None or flux.ndim != 3:
        raise InvalidInputError(f"{label}: PIXELS has no FLUX image column")
    ny_t, nx_t = flux.shape[1:]
    wcs = _tpf_wcs(hdul, img_wcs, label)

    ref = float(header.get("BJDREFI", hdul[0].header.get("BJDREFI", TESS_TIME_OFFSET))) + float(
        header.get("BJDREFF", hdul[0].header.get("BJDREFF", 0.0))
    )
    time = np.asarray(table["TIME"], dtype=float)
    jd = time + ref
    rows = np.flatnonzero(np.isfinite(jd) & (jd >= jd_range[0]) & (jd <= jd_range[1]))
    if rows.size == 0:
        return None
    sky = interp(jd[rows])
    x, y = (np.atleast_1d(v).astype(float) for v in wcs.world_to_pixel(sky))
    keep, lims = [], []
    for i in range(rows.size):
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            continue
        lim = centered_limits((x[i], y[i]), (sx, sy))
        if lim[0, 0] >= 0 and lim[1, 0] >= 0 and lim[0, 1] <= nx_t and lim[1, 1] <= ny_t:
            keep.append(i)
            lims.append(lim)
    if not keep:
        return None
    keep_arr = np.array(keep)
    lims_arr = np.array(lims)
    src_rows = rows[keep_arr]
    out: dict[str, Any] = {"__header__": header, "__primary__": hdul[0].header, "__columns__": cols}
    for col in cols:
        values = np.asarray(table[col.name])[src_rows]
        if values.ndim == 3 and values.shape[1:] == (ny_t, nx_t):
            values = np.stack(
                [v[ly0:ly1, lx0:lx1] for v, ((lx0, lx1), (ly0, ly1)) in zip(values, lims_arr, strict=True)]
            )
        out[col.name] = values
    out["TGT_X"] = x[keep_arr] - lims_arr[:, 0, 0]
    out["TGT_Y"] = y[keep_arr] - lims_arr[:, 1, 0]
    out["TGT_RA"] = np.asarray(sky.ra.deg)[keep_arr]
    out["TGT_DEC"] = np.asarray(sky.dec.deg)[keep_arr]
    log.debug("%s: %d of %d rows re-cut", label, len(keep), len(time))
    return out


def _open_tpfs(cutout_fles: Any) -> list[tuple[str, Any, bool]]:
    from astropy.io import fits

    if isinstance(cutout_fles, (str, os.PathLike, fits.HDUList)):
        cutout_fles = [cutout_fles]
    cutout_fles = list(cutout_fles)  # also an astropy Column / numpy array of names
    if len(cutout_fles) == 0:
        raise InvalidInputError("cutout_fles is empty: give one or more target pixel files")
    out = []
    for item in cutout_fles:
        if isinstance(item, fits.HDUList):
            out.append((item.filename() or "HDUList", item, False))
            continue
        label = os.fspath(item)
        try:
            out.append((label, fits.open(label, memmap=False), True))
        except (OSError, TypeError) as exc:
            for _, h, own in out:
                if own:
                    h.close()
            raise InvalidInputError(f"{label}: cannot open as FITS ({exc})") from exc
    return out


def _build_pixels_hdu(parts: list[dict], sx: int, sy: int) -> fits.BinTableHDU:
    from astropy.io import fits

    from ..core.fits_headers import combine_headers

    first_cols = parts[0]["__columns__"]
    times = np.concatenate([p["TIME"] for p in parts])
    order = np.argsort(times, kind="stable")
    # TPFs that overlap may both hold the whole box at one cadence: keep the first copy of each TIME
    order = order[np.concatenate([[True], np.diff(times[order]) != 0])]
    columns = []
    for col in first_cols:
        values = np.concatenate([p[col.name] for p in parts])[order]
        if values.ndim == 3:
            code = re.sub(r"^\d*", "", col.format)[:1]
            columns.append(
                fits.Column(
                    name=col.name,
                    format=f"{sx * sy}{code}",
                    unit=col.unit,
                    disp=col.disp,
                    null=col.null,
                    dim=f"({sx},{sy})",
                    array=values,
                )
            )
        else:
            columns.append(
                fits.Column(
                    name=col.name,
                    format=col.format,
                    unit=col.unit,
                    disp=col.disp,
                    null=col.null,
                    array=values,
                )
            )
    for name, unit in (("TGT_X", "pixel"), ("TGT_Y", "pixel"), ("TGT_RA", "deg"), ("TGT_DEC", "deg")):
        columns.append(
            fits.Column(
                name=name, format="D", unit=unit, array=np.concatenate([p[name] for p in parts])[order]
            )
        )
    hdu = fits.BinTableHDU.from_columns(columns, name="PIXELS")
    shared = combine_headers([p["__header__"] for p in parts], constant_only=True)
    for card in shared.cards:
        if (
            card.keyword in hdu.header
            or _COLUMN_KEYWORD.match(card.keyword)
            or card.keyword in ("EXTNAME", "RA_OBJ", "DEC_OBJ")
        ):
            continue
        hdu.header.append(card)
    comments = {
        "TGT_X": "target column inside the cutout (0-based)",
        "TGT_Y": "target row inside the cutout",
        "TGT_RA": "interpolated target right ascension",
        "TGT_DEC": "interpolated target declination",
    }
    for i in range(1, len(columns) + 1):
        comment = comments.get(hdu.header[f"TTYPE{i}"])
        if comment:
            hdu.header.comments[f"TTYPE{i}"] = comment
    return hdu


def center_on_path(
    path: Any,
    size: Any,
    cutout_fles: Any,
    target: str | None = None,
    img_wcs: WCS | None = None,
    target_pixel_file: str | None = None,
    output_path: str | os.PathLike = ".",
    verbose: bool = True,
) -> str:
    """Make a target pixel file that follows a moving target through one or more TPFs.

    Parameters
    ----------
    path : Table or path-like
        ``time`` (Time) and ``position`` (SkyCoord) columns, or a CSV/ECSV file for :func:`read_path_table`.
    size : int, (nx, ny), str or Quantity
        Size of the moving box in pixels (x = columns); the re-cut arrays have numpy shape ``(ny, nx)``.
        Fractional pixels are rounded (halves up); an angular size needs ``img_wcs``.
    cutout_fles : list of path-like or HDUList
        Astrocut-style TPFs (PIXELS table with ``TIME`` and image columns, APERTURE with the cutout WCS).
    target : str, optional
        Target name: output ``OBJECT`` keyword and file-name prefix.
    img_wcs : WCS, optional
        WCS of the full FFI (with ``pixel_shape``): adds an APERTURE image of the FFI's shape marking every
        pixel covered by a moving box; also replaces the TPF's linear WCS fit by the exact (SIP) projection.
    target_pixel_file : str, optional
        Output file name; default ``{target or "path"}_{TSTART}-{TSTOP}_{s0}-x-{s1}_astrocut.fits`` with
        ``/`` -> ``-`` and spaces -> ``_``.
    output_path : path-like
        Directory of the output file (created if missing).
    verbose : bool
        Log progress at INFO instead of DEBUG.

    Returns
    -------
    str
        The written file: PRIMARY (constant keywords of the inputs, ``OBJECT``, ``TSTART``/``TSTOP`` = first
        and last kept ``TIME``), PIXELS (input columns with image columns re-cut to ``(ny, nx)``, plus
        ``TGT_X, TGT_Y`` (target inside the box, 0-based pixels) and ``TGT_RA, TGT_DEC`` (deg)), APERTURE
        (only with ``img_wcs``).

    Raises
    ------
    InvalidInputError
        Bad path table, size or TPF (the message names it).
    InvalidQueryError
        No TPF row has the whole box inside the TPF during the path's time span.
    """
    from astropy.io import fits

    from ..core.fits_headers import combine_headers

    level = logging.INFO if verbose else logging.DEBUG
    sx, sy = _size_xy(size, img_wcs)
    jd, positions = _check_path_table(path)
    interp = path_interpolator(jd, positions)
    opened = _open_tpfs(cutout_fles)
    try:
        parts = []
        for label, hdul, _ in opened:
            part = _recut_tpf(hdul, label, interp, (jd[0], jd[-1]), sx, sy, img_wcs)
            if part is None:
                log.log(level, "%s: the path does not cross this TPF during its time span", label)
                continue
            parts.append(part)
        if not parts:
            raise InvalidQueryError(
                f"the path never has a full {sx}x{sy} box inside the given TPF(s) between JD {jd[0]} and {jd[-1]}"
            )
        names = [p["__columns__"].names for p in parts]
        if any(n != names[0] for n in names[1:]):
            raise InvalidInputError("the TPFs have different PIXELS columns; cannot stack them")
        pixels = _build_pixels_hdu(parts, sx, sy)
        primary_header = combine_headers([h[0].header for _, h, _ in opened], constant_only=True)
    finally:
        for _, hdul, own in opened:
            if own:
                hdul.close()

    times = np.asarray(pixels.data["TIME"], dtype=float)
    tstart, tstop = float(np.nanmin(times)), float(np.nanmax(times))
    for key in ("RA_OBJ", "DEC_OBJ", "CHECKSUM", "DATASUM"):
        primary_header.remove(key, ignore_missing=True)
    primary_header["DATE"] = (creation_date(), "file creation date")
    if target:
        primary_header["OBJECT"] = (target, "Moving target object name/identifier")
    primary_header["TSTART"] = (tstart, "TIME of the first row")
    primary_header["TSTOP"] = (tstop, "TIME of the last row")
    if "TELAPSE" in primary_header:
        primary_header["TELAPSE"] = tstop - tstart
    for key in ("DATE", "OBJECT", "TSTART", "TSTOP", "TELAPSE"):
        if key in pixels.header and key in primary_header:
            pixels.header[key] = primary_header[key]
    hdus = [fits.PrimaryHDU(header=primary_header), pixels]
    if img_wcs is not None:
        hdus.append(_aperture_hdu(img_wcs, pixels.data["TGT_RA"], pixels.data["TGT_DEC"], sx, sy))

    if not target_pixel_file:
        target_pixel_file = f"{target or 'path'}_{tstart!r}-{tstop!r}_{size_label(size)}_astrocut.fits"
    target_pixel_file = str(target_pixel_file).replace("/", "-").replace(" ", "_")
    filename = os.path.join(os.fspath(output_path), target_pixel_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        write_hdulist(fits.HDUList(hdus), filename)
    log.log(level, "moving-target TPF with %d rows written to %s", len(times), filename)
    return filename


def _aperture_hdu(img_wcs: WCS, ra: np.ndarray, dec: np.ndarray, sx: int, sy: int) -> fits.ImageHDU:
    """int32 image of the FFI's shape, 1 under every moving box (rows = y, columns = x)."""
    from astropy.coordinates import SkyCoord
    from astropy.io import fits

    ny, nx = _image_shape(img_wcs)
    aperture = np.zeros((ny, nx), dtype=np.int32)
    x, y = (np.atleast_1d(v) for v in img_wcs.world_to_pixel(SkyCoord(ra, dec, unit="deg")))
    for xi, yi in zip(x, y, strict=True):
        if not (np.isfinite(xi) and np.isfinite(yi)):
            continue
        (x0, x1), (y0, y1) = centered_limits((xi, yi), (sx, sy))
        aperture[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = 1
    hdu = fits.ImageHDU(data=aperture, name="APERTURE")
    hdu.header.extend(img_wcs.to_header(relax=True).cards)
    hdu.header["INHERIT"] = (True, "inherit the primary header")
    return hdu


__all__ = ["center_on_path", "path_to_footprints", "path_interpolator", "read_path_table"]
