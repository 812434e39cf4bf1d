"""skycut.tess.sectors against tess-point's own per-target answer (tess_stars2px_function_entry), offline."""

from __future__ import annotations

import numpy as np
import pytest

from skycut.exceptions import InvalidInputError, InvalidQueryError
from skycut.tess import sectors as S

tess_stars2px = pytest.importorskip("tess_stars2px")

NEP = (270.0, 66.560708)  # ecliptic poles (J2000), centres of TESS's continuous viewing zones
SEP = (90.0, -66.560708)


@pytest.fixture(scope="module")
def scinfo():
    return tess_stars2px.TESS_Spacecraft_Pointing_Data()


def tess_point(ra, dec, scinfo) -> dict:
    """tess-point's answer: {(target, sector, camera, ccd): (column, row)}."""
    ra, dec = np.atleast_1d(ra), np.atleast_1d(dec)
    ids, _, _, sec, cam, ccd, col, row, _ = tess_stars2px.tess_stars2px_function_entry(
        np.arange(ra.size), ra, dec, scInfo=scinfo
    )
    return {
        (int(i), int(s), int(c), int(d)): (x, y)
        for i, s, c, d, x, y in zip(ids, sec, cam, ccd, col, row, strict=True)
        if s >= 0
    }


def ours(matches) -> dict:
    return {
        (int(r["target"]), int(r["sector"]), int(r["camera"]), int(r["ccd"])): (r["column"], r["row"])
        for r in matches
    }


def assert_same(expected: dict, got: dict, tol: float = 1e-6) -> float:
    assert set(got) == set(expected)
    worst = 0.0
    for key, (col, row) in expected.items():
        worst = max(worst, abs(got[key][0] - col), abs(got[key][1] - row))
    assert worst < tol, worst
    return worst


def sky_of_pixel(
    scinfo, sector: int, camera: int, ccd: int, column: float, row: float
) -> tuple[float, float]:
    """(ra, dec) of a 1-based FFI column/row through tess-point's own inverse model."""
    idx = int(np.flatnonzero(scinfo.sectors == sector)[0])
    ra, dec = scinfo.fpgObjs[idx].pix2radec_nocheck_single(
        camera - 1, ccd - 1, np.array([column - 45.0, row - 1.0])
    )
    return float(ra), float(dec)


# --------------------------------------------------------------------------------------------- vs tess-point


def test_random_sky_matches_tess_point(scinfo):
    rng = np.random.default_rng(20240611)
    n = 300
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))  # uniform on the sphere
    expected = tess_point(ra, dec, scinfo)
    assert len(expected) > n  # the sky is well covered: a non-trivial comparison
    found = S.find_sectors(ra, dec, edge_margin=0.5)  # tess-point's own acceptance window
    worst = assert_same(expected, ours(found), tol=1e-6)
    assert worst < 1e-8  # measured ~5e-11 px: same float64 model, different arithmetic order
    assert found.dtype == S.MATCH_DTYPE
    keys = np.stack([found["target"], found["sector"], found["camera"], found["ccd"]]).T
    assert np.array_equal(keys, sorted(keys.tolist()))  # sorted by target, sector, camera, ccd


def test_default_counts_science_pixels_only(scinfo):
    """Without the margin a point counts on its own science pixel: tess-point's extra half-pixel rim drops."""
    rng = np.random.default_rng(7)
    ra, dec = rng.uniform(0.0, 360.0, 200), np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 200)))
    wide = ours(S.find_sectors(ra, dec, edge_margin=0.5))
    strict_matches = S.find_sectors(ra, dec)
    strict = ours(strict_matches)
    assert set(strict) <= set(wide)
    for key, (col, row) in wide.items():
        on_pixel = 44.5 < col < 2092.5 and 0.5 < row < 2048.5
        assert (key in strict) == on_pixel
    assert strict_matches["inside"].all()


@pytest.mark.parametrize("ra", [0.0, 1e-9, 0.05, 359.95, 360.0 - 1e-9, 360.0])
def test_across_ra_zero(scinfo, ra):
    dec = np.array([-70.0, -45.0, -20.0, 0.0, 30.0, 60.0])
    ras = np.full(dec.size, ra)
    assert_same(tess_point(ras, dec, scinfo), ours(S.find_sectors(ras, dec, edge_margin=0.5)))


def test_ra_zero_and_360_are_one_place():
    dec = np.linspace(-89.0, 89.0, 40)
    a = S.find_sectors(np.zeros(dec.size), dec, 10)
    b = S.find_sectors(np.full(dec.size, 360.0), dec, 10)
    assert a.size > 0
    for f in ("target", "sector", "camera", "ccd"):
        assert np.array_equal(a[f], b[f])
    assert np.allclose(a["column"], b["column"], atol=1e-8) and np.allclose(a["row"], b["row"], atol=1e-8)


@pytest.mark.parametrize("pos", [NEP, SEP, (0.0, 90.0), (123.0, -90.0), (270.0, 64.5), (95.0, -68.0)])
def test_poles_match_tess_point(scinfo, pos):
    assert_same(tess_point(*pos, scinfo), ours(S.find_sectors(*pos, edge_margin=0.5)))


@pytest.mark.parametrize("pos", [(270.0, 64.5), (95.0, -68.0)])
def test_continuous_viewing_zones_see_many_sectors(pos):
    found = S.find_sectors(*pos)
    assert np.unique(found["sector"]).size >= 20
    cams, counts = np.unique(found["camera"], return_counts=True)
    assert cams[np.argmax(counts)] == 4  # the CVZs sit mostly in camera 4


def test_sectors_subset_equals_tess_point_try_sector():
    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(0.0, 360.0, 150), rng.uniform(-90.0, 90.0, 150)
    info = tess_stars2px.TESS_Spacecraft_Pointing_Data(trySector=27)
    assert_same(tess_point(ra, dec, info), ours(S.find_sectors(ra, dec, sectors=[27], edge_margin=0.5)))
    every = S.find_sectors(ra, dec, edge_margin=0.5)
    assert np.array_equal(S.find_sectors(ra, dec, sectors=27, edge_margin=0.5), every[every["sector"] == 27])


# --------------------------------------------------------------------------------------------- boxes, edges


def test_ccd_corners_found_where_tess_point_puts_them(scinfo):
    """The outermost science pixels of every CCD (all four cameras) are found at their own column/row: the
    field-of-view gate never cuts science pixels."""
    sector = 40
    for camera in range(1, 5):
        for ccd in range(1, 5):
            for col, row in [(45.0, 1.0), (2092.0, 1.0), (45.0, 2048.0), (2092.0, 2048.0)]:
                ra, dec = sky_of_pixel(scinfo, sector, camera, ccd, col, row)
                got = S.find_sectors(ra, dec, sectors=sector)
                hit = got[(got["camera"] == camera) & (got["ccd"] == ccd)]
                assert hit.size == 1, (camera, ccd, col, row)
                assert abs(hit["column"][0] - col) < 1e-3 and abs(hit["row"][0] - row) < 1e-3


@pytest.mark.parametrize("edge", ["left", "right", "bottom", "top"])
def test_box_just_off_the_edge_counts_only_when_it_touches(scinfo, edge):
    sector, camera, ccd, off = 14, 2, 3, 3.0  # centre 3 px beyond the outer edge of the edge pixels
    col, row = {
        "left": (44.5 - off, 1000.0),
        "right": (2092.5 + off, 1000.0),
        "bottom": (1000.0, 0.5 - off),
        "top": (1000.0, 2048.5 + off),
    }[edge]
    ra, dec = sky_of_pixel(scinfo, sector, camera, ccd, col, row)

    def on_ccd(size, margin=0.0) -> np.ndarray:
        m = S.find_sectors(ra, dec, size, sectors=sector, edge_margin=margin)
        return m[(m["camera"] == camera) & (m["ccd"] == ccd)]

    assert on_ccd(0).size == 0
    assert on_ccd(2 * off - 0.2).size == 0  # reaches to 0.1 px of the science pixels
    hit = on_ccd(2 * off + 0.2)  # overlaps them by 0.1 px
    assert hit.size == 1 and not hit["inside"][0]
    assert abs(hit["column"][0] - col) < 1e-3 and abs(hit["row"][0] - row) < 1e-3
    # a rectangular box: only its extent across the edge matters
    across = (2 * off + 0.2, 0.0) if edge in ("left", "right") else (0.0, 2 * off + 0.2)
    along = across[::-1]
    assert on_ccd(list(across)).size == 1 and on_ccd(list(along)).size == 0
    # edge_margin widens the science area on every side
    assert on_ccd(0, off - 0.1).size == 0 and on_ccd(0, off + 0.1).size == 1


def test_box_in_the_gap_touches_both_ccds(scinfo):
    # 60 px beyond CCD 1's last column lies in the gap towards CCD 2 of the same camera
    ra, dec = sky_of_pixel(scinfo, 1, 1, 1, 2092.0 + 60.0, 1000.0)
    point = S.find_sectors(ra, dec, 0, sectors=1)
    assert not ((point["camera"] == 1) & np.isin(point["ccd"], [1, 2])).any()
    box = S.find_sectors(ra, dec, 200, sectors=1)
    mine = box[box["camera"] == 1]
    assert set(mine["ccd"].tolist()) == {1, 2} and not mine["inside"].any()
    assert abs(mine[mine["ccd"] == 1]["column"][0] - 2152.0) < 1e-3


def test_angular_size_and_box_monotonic():
    rng = np.random.default_rng(11)
    ra, dec = rng.uniform(0.0, 360.0, 400), np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 400)))
    point = ours(S.find_sectors(ra, dec))
    box = S.find_sectors(ra, dec, 50)
    assert set(point) <= set(ours(box)) and len(ours(box)) > len(point)
    off = box[~box["inside"]]
    assert (
        (off["column"] > 44.5 - 25)
        & (off["column"] < 2092.5 + 25)
        & (off["row"] > 0.5 - 25)
        & (off["row"] < 2048.5 + 25)
    ).all()
    # 50 px x 21"/px = 1050" = 17.5'
    angular = S.find_sectors(ra, dec, "17.5 arcmin")
    assert np.array_equal(angular, box)
    from astropy import units as u

    assert np.array_equal(S.find_sectors(ra, dec, [1050 * u.arcsec, 50]), box)
    assert np.array_equal(S.find_sectors(ra, dec, 25, pixel_scale=42.0), S.find_sectors(ra, dec, 25))


# --------------------------------------------------------------------------------------------- inputs


def test_empty_input():
    for args in [([], []), (np.zeros(0), np.zeros(0))]:
        got = S.find_sectors(*args)
        assert got.size == 0 and got.dtype == S.MATCH_DTYPE
    assert S.find_sectors([], [], sectors=[]).size == 0
    assert S.group_by_cube(S.find_sectors([], [])) == {}


@pytest.mark.parametrize(
    "ra, dec",
    [
        (10.0, 90.5),
        (10.0, -91.0),
        (np.nan, 0.0),
        (10.0, np.inf),
        (-1.0, 0.0),
        (360.5, 0.0),
        ([1.0, 2.0], [3.0]),
        ("abc", 1.0),
    ],
)
def test_invalid_positions(ra, dec):
    with pytest.raises(InvalidInputError):
        S.find_sectors(ra, dec)


def test_invalid_position_is_named():
    with pytest.raises(InvalidInputError, match="target 2"):
        S.find_sectors([1.0, 2.0, 3.0], [0.0, 0.0, 95.0])


@pytest.mark.parametrize("size", [-1, np.nan, True, "3 kg", [1, 2, 3], "abc", 20000])
def test_invalid_sizes(size):
    with pytest.raises(InvalidInputError):
        S.find_sectors(10.0, 10.0, size)


def test_invalid_sectors_and_margin():
    with pytest.raises(InvalidQueryError, match="9000"):
        S.find_sectors(10.0, 10.0, sectors=[1, 9000])
    with pytest.raises(InvalidInputError):
        S.find_sectors(10.0, 10.0, sectors=[1.5])
    with pytest.raises(InvalidInputError):
        S.find_sectors(10.0, 10.0, edge_margin=-1)
    assert issubclass(InvalidQueryError, ValueError) and issubclass(InvalidInputError, ValueError)


def test_geometry_is_tess_points(scinfo):
    g = S.tess_geometry()
    assert np.array_equal(g.sectors, scinfo.sectors)
    assert np.array_equal(g.rotations[5], scinfo.fpgObjs[5].rmat4)
    assert np.array_equal(S.available_sectors(), scinfo.sectors)
    assert not g.rotations.flags.writeable


# --------------------------------------------------------------------------------------------- cubes, plans


def test_cube_names():
    assert S.cube_name(38, 2, 2) == "tess-s0038-2-2-cube.fits"
    assert S.obs_id(1, 4, 4) == "tess-s0001-4-4"
    assert S.cube_uri(38, 2, 2) == "s3://stpubdata/tess/public/mast/tess-s0038-2-2-cube.fits"
    assert S.cube_uri(5, 1, 3, "file:///cubes") == "file:///cubes/tess-s0005-1-3-cube.fits"
    for bad in [(0, 1, 1), (1, 5, 1), (1, 1, 0)]:
        with pytest.raises(InvalidInputError):
            S.cube_name(*bad)


def test_group_by_cube_and_plan():
    rng = np.random.default_rng(5)
    ra, dec = rng.uniform(0.0, 360.0, 500), np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 500)))
    found = S.find_sectors(ra, dec, 20)
    groups = S.group_by_cube(found)
    assert sum(len(v) for v in groups.values()) == found.size
    for name, targets in groups.items():
        sector, camera, ccd = (
            int(p) for p in name.removeprefix("tess-s").removesuffix("-cube.fits").split("-")
        )
        sel = found[(found["sector"] == sector) & (found["camera"] == camera) & (found["ccd"] == ccd)]
        assert np.array_equal(targets, np.unique(sel["target"]))
    triples = [tuple(int(p) for p in k[6:-10].split("-")) for k in groups]
    assert triples == sorted(triples)
    plan = S.plan_cubes(ra, dec, 20)
    assert list(plan) == ["s3://stpubdata/tess/public/mast/" + k for k in groups]
    assert all(np.array_equal(a, b) for a, b in zip(plan.values(), groups.values(), strict=True))


def test_get_tess_sectors_table(scinfo):
    table = S.get_tess_sectors(["270 64.5", (95.0, -68.0)], 0, sequence=[13, 14, 27, 40])
    assert table.colnames == ["sectorName", "sector", "camera", "ccd"]
    expected = sorted(
        {k[1:] for k in tess_point([270.0, 95.0], [64.5, -68.0], scinfo) if k[1] in (13, 14, 27, 40)}
    )
    assert [(int(r["sector"]), int(r["camera"]), int(r["ccd"])) for r in table] == expected
    assert list(table["sectorName"]) == [f"tess-s{s:04d}-{c}-{d}" for s, c, d in expected]
    empty = S.get_tess_sectors("270 64.5", 0, sequence=[1])  # a southern sector
    assert len(empty) == 0 and empty.colnames == table.colnames


def test_moving_target_sectors_planned_offline(tmp_path, monkeypatch):
    """A moving target's ``sectors`` become cube URIs from the offline search (no footprint file)."""
    from skycut.pipeline.manifest import validate_manifest
    from skycut.pipeline.plan import Plan

    monkeypatch.chdir(tmp_path)
    ra = np.linspace(206.5, 207.2, 5)
    dec = np.linspace(-37.0, -37.5, 5)
    (tmp_path / "path.csv").write_text(
        "time,ra,dec\n"
        + "".join(f"{2458570.5 + i},{r},{d}\n" for i, (r, d) in enumerate(zip(ra, dec, strict=True)))
    )
    manifest = validate_manifest(
        {"paths": {"rock": {"table": "path.csv", "size": [5, 5], "sectors": [11, 38]}}}
    )
    assert manifest.paths["rock"].footprint_uri is None
    found = S.find_sectors(ra, dec, 0, [11, 38])
    expected = sorted({S.cube_uri(r["sector"], r["camera"], r["ccd"]) for r in found})
    assert Plan(manifest).path_cubes("rock") == expected
    assert "s3://stpubdata/tess/public/mast/tess-s0011-1-1-cube.fits" in expected
