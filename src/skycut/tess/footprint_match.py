"""Footprint matching: which FFI footprints a cutout box touches (the geometry under :mod:`skycut.tess.footprint`).

astrocut's ``ra_dec_crossmatch`` and the ``s_region`` parser, with astropy/numpy only (no
``spherical_geometry``): every footprint polygon and the cutout box are projected gnomonically onto the tangent
plane at the target, where great-circle edges are straight lines, and intersected exactly there. The box is
aligned with RA/Dec and has true angular half-widths ``nx * arcsec_per_px / 2`` and ``ny * arcsec_per_px / 2``
(astrocut adds the RA half-width to RA directly, forgetting ``cos(dec)``). Each polygon's unit vectors, centre
and angular radius are computed once per table (cached in ``table.meta``), so a coordinate is tested in full only
against the polygons near it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.coords import parse_coordinates, parse_size
from ..exceptions import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

#: TESS pixel scale (arcsec per pixel) used to turn cutout sizes into angles.
ARCSEC_PER_PX = 21


# --------------------------------------------------------------------------------------------- sizes, regions


def _match_box_px(cutout_size: Any, arcsec_per_px: float, point_match: bool = False) -> tuple[int, int]:
    """Whole-pixel ``(nx, ny)`` of the box matched against footprints (pixels ``arcsec_per_px`` wide).

    The size follows :func:`skycut.core.coords.parse_size` (positive; rounded to whole pixels, halves up, at
    least 1), so the matched box is the cutout that will be made. With ``point_match``, astrocut's documented
    ``cutout_size=0`` of :func:`ra_dec_crossmatch` gives ``(0, 0)``: footprints containing the point.
    """
    if point_match and _is_zero_size(cutout_size):
        return 0, 0
    scale = arcsec_per_px / 3600.0
    return parse_size(cutout_size).pixels((scale, scale))


def _is_zero_size(cutout_size: Any) -> bool:
    values = list(cutout_size) if isinstance(cutout_size, (list, tuple)) else [cutout_size]
    return all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and v == 0
        for v in values
    ) and len(values) in (1, 2)


def parse_s_region(s_region: str) -> list[np.ndarray]:
    """Polygons of an ``s_region`` string as ``(n, 2)`` arrays of (ra, dec) degrees (RA wrapped to [0, 360)).

    Accepts ``POLYGON [frame] ra1 dec1 ...`` and several ``POLYGON`` parts (a union).
    """
    parts = [p for p in re.split(r"(?i)\bPOLYGON\b", str(s_region)) if p.strip()]
    if not parts or not str(s_region).strip().upper().startswith("POLYGON"):
        raise InvalidInputError(f"unsupported s_region {str(s_region)[:60]!r}: only POLYGON is supported")
    rings = []
    for part in parts:
        nums = []
        for tok in part.split():
            try:
                nums.append(float(tok))
            except ValueError:
                continue  # a frame name such as ICRS
        if len(nums) < 6 or len(nums) % 2:
            raise InvalidInputError(f"s_region polygon needs >= 3 (ra, dec) pairs: {part.strip()[:60]!r}")
        ring = np.array(nums, dtype=float).reshape(-1, 2)
        ring[:, 0] %= 360.0
        rings.append(ring)
    return rings


# --------------------------------------------------------------------------------------------- geometry


def _unit(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _tangent_basis(ra_deg: float, dec_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the unit vectors (centre, east, north) of the tangent plane at (ra, dec) degrees."""
    c = _unit(np.array(ra_deg), np.array(dec_deg))
    ra = np.radians(ra_deg)
    east = np.array([-np.sin(ra), np.cos(ra), 0.0])
    north = np.cross(c, east)
    return c, east, north


def _project(vecs: np.ndarray, basis) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic (xi, eta) (radians-tangent units) of unit vectors; vectors must be in front (dot > 0)."""
    c, east, north = basis
    d = vecs @ c
    return (vecs @ east) / d, (vecs @ north) / d


def _point_in_polygon(px: float, py: float, xs: np.ndarray, ys: np.ndarray) -> bool:
    """Even-odd ray casting (boundary counts as inside)."""
    inside = False
    n = len(xs)
    for i in range(n):
        x1, y1, x2, y2 = xs[i], ys[i], xs[(i + 1) % n], ys[(i + 1) % n]
        cross = (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)
        if abs(cross) < 1e-15 and min(x1, x2) <= px <= max(x1, x2) and min(y1, y2) <= py <= max(y1, y2):
            return True
        if (y1 > py) != (y2 > py) and px < x1 + (py - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _orient(a, b, c) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a, b, c) -> bool:
    return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])


def _segments_intersect(p1, p2, q1, q2) -> bool:
    """Return True if segments p1-p2 and q1-q2 meet (touching counts)."""
    d1, d2 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    d3, d4 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True
    return (
        (d1 == 0 and _on_segment(q1, q2, p1))
        or (d2 == 0 and _on_segment(q1, q2, p2))
        or (d3 == 0 and _on_segment(p1, p2, q1))
        or (d4 == 0 and _on_segment(p1, p2, q2))
    )


def _ring_hits_box(xs: np.ndarray, ys: np.ndarray, hx: float, hy: float) -> bool:
    """Return True if the polygon (tangent-plane vertices) touches the box ``|x| <= hx, |y| <= hy``."""
    if hx == 0 and hy == 0:
        return _point_in_polygon(0.0, 0.0, xs, ys)
    if np.any((np.abs(xs) <= hx) & (np.abs(ys) <= hy)):
        return True
    corners = [(-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy)]
    if any(_point_in_polygon(cx, cy, xs, ys) for cx, cy in corners):
        return True
    n = len(xs)
    for i in range(n):
        p1, p2 = (xs[i], ys[i]), (xs[(i + 1) % n], ys[(i + 1) % n])
        for j in range(4):
            if _segments_intersect(p1, p2, corners[j], corners[(j + 1) % 4]):
                return True
    return False


def _match_rows(
    ffis: Table, coord: SkyCoord, size_px: tuple[float, float], arcsec_per_px: float
) -> np.ndarray:
    """Return the indices of rows whose polygon touches the RA/Dec-aligned box around ``coord``."""
    half_x = np.radians(size_px[0] * arcsec_per_px / 2 / 3600.0)
    half_y = np.radians(size_px[1] * arcsec_per_px / 2 / 3600.0)
    if half_x >= np.pi / 2 or half_y >= np.pi / 2:
        raise InvalidInputError("cutout_size is larger than a hemisphere")
    hx, hy = np.tan(half_x), np.tan(half_y)
    ra, dec = float(coord.ra.deg), float(coord.dec.deg)
    basis = _tangent_basis(ra, dec)
    centre = basis[0]
    reach = np.arccos(np.clip(np.cos(half_x) * np.cos(half_y), -1, 1))  # box half-diagonal (angle)
    meta = _rings_of(ffis)
    sep = np.arccos(np.clip(meta["centres"] @ centre, -1, 1))
    near = np.flatnonzero(sep <= meta["radii"] + reach + 1e-9)
    hits = set()
    for k in near:
        row = int(meta["row_of_ring"][k])
        if row in hits:
            continue
        vecs = meta["vectors"][k]
        if np.any(vecs @ centre <= 0.05):  # a vertex ~90 deg away: cannot be projected; box is far smaller
            continue
        xs, ys = _project(vecs, basis)
        if _ring_hits_box(xs, ys, hx, hy):
            hits.add(row)
    return np.array(sorted(hits), dtype=int)


def _rings_of(table: Table) -> dict:
    """Return the unit vectors, centres and angular radii of every polygon ring of ``table``.

    Cached in ``table.meta`` and tied to the identity of the ``polygon`` column, so a sliced or reordered
    table (which gets a new column) never reuses another table's geometry.
    """
    if "polygon" not in table.colnames:
        raise InvalidInputError(
            "the footprint table needs a 'polygon' column (use skycut.tess.footprint.get_ffis)"
        )
    column = table.columns["polygon"]
    cached = table.meta.get("_skycut_rings")
    if cached is not None and cached["column_id"] == id(column) and cached["n"] == len(table):
        return cached
    vectors, centres, radii, row_of_ring = [], [], [], []
    for i, rings in enumerate(column):
        for ring in rings:
            v = _unit(ring[:, 0], ring[:, 1])
            c = v.mean(axis=0)
            c /= np.linalg.norm(c)
            vectors.append(v)
            centres.append(c)
            radii.append(float(np.arccos(np.clip(v @ c, -1, 1)).max()))
            row_of_ring.append(i)
    cached = {
        "column_id": id(column),
        "n": len(table),
        "vectors": vectors,
        "centres": np.array(centres).reshape(-1, 3),
        "radii": np.array(radii),
        "row_of_ring": np.array(row_of_ring, dtype=int),
    }
    table.meta["_skycut_rings"] = cached
    return cached


def ra_dec_crossmatch(
    all_ffis: Table, coordinates: Any, cutout_size: Any, arcsec_per_px: float = ARCSEC_PER_PX
) -> Table:
    """Rows of ``all_ffis`` whose footprint overlaps a cutout (any of several coordinates).

    Parameters
    ----------
    all_ffis : Table
        A footprint table from :func:`get_ffis` (needs its ``polygon`` column).
    coordinates : SkyCoord, str, or list
        Cutout centre(s).
    cutout_size : int, (nx, ny), Quantity
        Cutout size; pixels are ``arcsec_per_px`` wide (rounded to whole pixels, as every cutout size is).
        ``0`` (astrocut's documented special case) matches the footprints containing the point.
    arcsec_per_px : float
        Pixel scale used to turn the size into an angle (TESS: 21").

    Returns
    -------
    Table
        The matching rows, in table order.
    """
    coords = parse_coordinates(coordinates)
    size_px = _match_box_px(cutout_size, arcsec_per_px, point_match=True)
    idx = sorted(
        set().union(*[set(_match_rows(all_ffis, c, size_px, arcsec_per_px).tolist()) for c in coords])
    )
    out = all_ffis[np.array(idx, dtype=int)]
    out.meta.pop("_skycut_rings", None)
    return out


__all__ = ["ARCSEC_PER_PX", "parse_s_region", "ra_dec_crossmatch"]
