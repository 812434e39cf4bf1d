"""Tests of skycut.tess.footprint: footprint parsing and matching, the disk cache, and cutouts from a loopback S3.

The footprint JSON is generated here from the simulator's TESS WCS (``s_region`` = the FFI's corner polygon)
plus decoy rows; it and a cube made from the simulated FFIs are served by moto's S3 server on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from servers import s3_server  # noqa: F401  (pytest fixture)

from skycut.exceptions import DataWarning, InvalidInputError, InvalidQueryError
from skycut.tess.footprint import (
    TessFootprintCutout,
    clear_memory_cache,
    cube_cut_from_footprint,
    get_ffis,
    get_tess_sectors,
    parse_s_region,
    ra_dec_crossmatch,
)


def _ffi_wcs(path: Path) -> WCS:
    with fits.open(path) as h, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = WCS(h[1].header).celestial
        w.pixel_shape = (h[1].header["NAXIS1"], h[1].header["NAXIS2"])
    return w


def _polygon(wcs: WCS) -> str:
    nx, ny = wcs.pixel_shape
    corners = wcs.pixel_to_world([-0.5, nx - 0.5, nx - 0.5, -0.5], [-0.5, -0.5, ny - 0.5, ny - 0.5])
    # negative RAs, as some rows of MAST's file have, must be wrapped by the parser
    ras = [ra - 360 if i == 0 else ra for i, ra in enumerate(corners.ra.deg)]
    return "POLYGON " + " ".join(f"{ra:.8f} {dec:.8f}" for ra, dec in zip(ras, corners.dec.deg, strict=True))


def _box_polygon(ra: float, dec: float, half_ra_deg: float, half_dec_deg: float) -> str:
    pts = [
        (ra - half_ra_deg, dec - half_dec_deg),
        (ra + half_ra_deg, dec - half_dec_deg),
        (ra + half_ra_deg, dec + half_dec_deg),
        (ra - half_ra_deg, dec + half_dec_deg),
    ]
    return "POLYGON " + " ".join(f"{a:.8f} {b:.8f}" for a, b in pts)


def write_footprint_json(path: Path, sim_wcs: WCS, center: SkyCoord) -> Path:
    """The simulated CCD (sector 11, 1-1) and decoys: another sector far away, a non-FFI row on the CCD,
    and sector 12 / 2-3 just east of ``center`` (at 0.9 of a 10-px cutout's half-width, true angle)."""
    half = 10 * 21 / 2 / 3600  # deg
    east = center.directional_offset_by(90 * u.deg, 0.9 * half * u.deg)
    cosd = np.cos(np.radians(center.dec.deg))
    rows = [
        ("tess-s0011-1-1", 11, "TESS FFI", _polygon(sim_wcs)),
        ("tess-s0030-4-4", 30, "TESS FFI", _box_polygon(10.0, 60.0, 3, 3)),
        ("tess-s0011-1-1-tica", 11, "SOMETHING ELSE", _polygon(sim_wcs)),
        # a 1-degree square whose west edge (a meridian) is 0.9 half-widths east of the centre
        (
            "tess-s0012-2-3",
            12,
            "TESS FFI",
            _box_polygon(east.ra.deg + 0.5 / cosd, center.dec.deg, 0.5 / cosd, 0.5),
        ),
    ]
    payload = {
        "obs_id": [r[0] for r in rows],
        "sequence_number": [r[1] for r in rows],
        "target_name": [r[2] for r in rows],
        "s_region": [r[3] for r in rows],
        "t_exptime": [1800.0] * len(rows),
    }
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture(scope="module")
def cloud(sim_tess, tmp_path_factory, s3_server):  # noqa: F811
    """Footprint JSON + cube on the loopback S3 server."""
    from skycut.tess.cube_factory import CubeFactory

    d = tmp_path_factory.mktemp("cloud")
    wcs = _ffi_wcs(sim_tess.files[0])
    nx, ny = wcs.pixel_shape
    center = wcs.pixel_to_world(nx / 2 - 0.25, ny / 2 - 0.25)
    fp = write_footprint_json(d / "fp.json", wcs, center)
    cube = CubeFactory().make_cube(
        [str(f) for f in sim_tess.files], str(d / "tess-s0011-1-1-cube.fits"), verbose=False
    )
    fp_uri = s3_server.upload(fp, "footprints/fp.json")
    s3_server.upload(cube, "mast/tess-s0011-1-1-cube.fits")
    return {
        "server": s3_server,
        "fp_uri": fp_uri,
        "base": f"s3://{s3_server.bucket}/mast/",
        "wcs": wcs,
        "center": center,
        "cube": cube,
        "local_fp": fp,
    }


def _kw(cloud, tmp_path):
    return {
        "footprint_uri": cloud["fp_uri"],
        "cube_base_uri": cloud["base"],
        "fsspec_kwargs": cloud["server"].fsspec_kwargs,
        "cache_dir": tmp_path / "cache",
    }


def test_parse_s_region():
    rings = parse_s_region("POLYGON ICRS -1.0 2.0 3.0 2.0 3.0 4.0")
    assert len(rings) == 1 and rings[0].shape == (3, 2) and rings[0][0, 0] == 359.0
    assert len(parse_s_region("POLYGON 1 1 2 1 2 2 POLYGON 5 5 6 5 6 6")) == 2
    with pytest.raises(InvalidInputError):
        parse_s_region("CIRCLE 1 2 3")


def test_lookup_finds_sector_camera_ccd(cloud, tmp_path):
    kw = _kw(cloud, tmp_path)
    kw.pop("cube_base_uri")
    sectors = get_tess_sectors(cloud["center"], 5, **kw)
    assert list(sectors["sectorName"]) == ["tess-s0011-1-1"]
    assert (sectors["sector"][0], sectors["camera"][0], sectors["ccd"][0]) == (11, 1, 1)
    # a point just inside a corner of the CCD still matches (size 0: point in polygon)
    corner = cloud["wcs"].pixel_to_world(0.0, 0.0)
    assert list(get_tess_sectors(corner, 0, **kw)["sector"]) == [11]
    # far away: an empty table with the same columns
    empty = get_tess_sectors(SkyCoord(100, -10, unit="deg"), 10, **kw)
    assert len(empty) == 0 and empty.colnames == ["sectorName", "sector", "camera", "ccd"]


def test_box_width_includes_cos_dec(cloud, tmp_path):
    """The decoy 0.9 half-widths east (true angle) overlaps a 10-px box; astrocut's box, too narrow by
    cos(dec), misses it."""
    ffis = get_ffis(cloud["fp_uri"], fsspec_kwargs=cloud["server"].fsspec_kwargs, cache_dir=tmp_path / "c")
    got = ra_dec_crossmatch(ffis, cloud["center"], 10)
    assert sorted(got["obs_id"]) == ["tess-s0011-1-1", "tess-s0011-1-1-tica", "tess-s0012-2-3"]
    smaller = ra_dec_crossmatch(ffis, cloud["center"], [8, 10])  # 0.8 half-widths: misses the decoy
    assert "tess-s0012-2-3" not in list(smaller["obs_id"])
    angular = ra_dec_crossmatch(ffis, cloud["center"], 10 * 21 * u.arcsec)  # same as 10 px
    assert sorted(angular["obs_id"]) == sorted(got["obs_id"])
    fc = pytest.importorskip("astrocut.footprint_cutout")
    from astropy.table import Table

    table = Table(json.loads(cloud["local_fp"].read_text()))
    table["polygon"] = fc.FootprintCutout._s_region_to_polygon(table["s_region"])
    assert "tess-s0012-2-3" not in list(fc.ra_dec_crossmatch(table, cloud["center"], 10)["obs_id"])


def test_outside_point_gives_clear_error(cloud, tmp_path):
    with pytest.raises(InvalidQueryError, match="overlaps"):
        TessFootprintCutout(SkyCoord(100, -10, unit="deg"), 5, **_kw(cloud, tmp_path))
    with pytest.raises(InvalidQueryError, match="sequence"):
        TessFootprintCutout(cloud["center"], 5, sequence=[99], **_kw(cloud, tmp_path))
    with pytest.raises(InvalidInputError):
        TessFootprintCutout(cloud["center"], 0, **_kw(cloud, tmp_path))


def test_disk_cache_avoids_second_download(cloud, tmp_path):
    server = cloud["server"]
    kw = {"fsspec_kwargs": server.fsspec_kwargs, "cache_dir": tmp_path / "cache"}
    clear_memory_cache()
    server.log.reset()
    first = get_ffis(cloud["fp_uri"], **kw)

    def json_gets():
        return [r for r in server.log.body_requests("GET") if r.path.endswith("fp.json") and r.nbytes > 0]

    assert len(json_gets()) == 1
    assert len(list((tmp_path / "cache" / "footprints").glob("*.npz"))) == 1
    clear_memory_cache()  # as in a new process
    server.log.reset()
    second = get_ffis(cloud["fp_uri"], **kw)
    assert json_gets() == []
    assert list(second["obs_id"]) == list(first["obs_id"])
    for a, b in zip(first["polygon"], second["polygon"], strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    # a changed remote file (new ETag/size) is downloaded again
    changed = json.loads(cloud["local_fp"].read_text())
    changed["t_exptime"] = [200.0] * len(changed["t_exptime"])
    new = tmp_path / "fp.json"
    new.write_text(json.dumps(changed))
    uri = server.upload(new, "footprints/fp2.json")
    clear_memory_cache()
    get_ffis(uri, **kw)
    server.upload(cloud["local_fp"], "footprints/fp2.json")
    clear_memory_cache()
    server.log.reset()
    again = get_ffis(uri, **kw)
    assert len([r for r in server.log.body_requests("GET") if r.path.endswith("fp2.json") and r.nbytes]) == 1
    assert list(again["t_exptime"]) == [1800.0] * len(again)


def test_footprint_cutout_produces_tpf(cloud, tmp_path):
    from skycut.tess.cube_cutout import cube_cut

    kw = _kw(cloud, tmp_path)
    # 10 px wide: the decoy east of the centre matches too, but its cube does not exist: warned and skipped
    with pytest.warns(DataWarning, match="tess-s0012-2-3-cube.fits"):
        wide = TessFootprintCutout(cloud["center"], 10, **kw)
    assert sorted(wide.matches["sectorName"]) == ["tess-s0011-1-1", "tess-s0012-2-3"]
    assert len(wide.cutouts) == 1
    cut = TessFootprintCutout(cloud["center"], [7, 5], **kw)
    assert list(cut.matches["sectorName"]) == ["tess-s0011-1-1"]
    assert list(cut.tpf_cutouts_by_file) == [cloud["base"] + "tess-s0011-1-1-cube.fits"]
    paths = cut.write_as_tpf(tmp_path / "out")
    assert len(paths) == 1
    c = cloud["center"]
    assert Path(paths[0]).name == f"tess-s0011-1-1_{c.ra.deg:.7f}_{c.dec.deg:.7f}_7-x-5_astrocut.fits"
    local = cube_cut(cloud["cube"], c, [7, 5], memory_only=True)
    with fits.open(paths[0]) as remote:
        assert [h.name for h in remote] == ["PRIMARY", "PIXELS", "APERTURE"]
        assert remote[1].data["FLUX"].shape == (6, 5, 7)
        np.testing.assert_array_equal(remote[1].data["FLUX"], local[1].data["FLUX"])
    hduls = cube_cut_from_footprint(c, [7, 5], sequence=11, memory_only=True, **kw)
    assert len(hduls) == 1
    np.testing.assert_array_equal(hduls[0][1].data["FLUX"], local[1].data["FLUX"])
    # the zip holds the same TPF under the same name
    import zipfile

    zpath = cut.write_as_zip(tmp_path / "z")
    assert Path(zpath).name == f"astrocut_{c.ra.deg:.7f}_{c.dec.deg:.7f}_7-x-5.zip"
    with zipfile.ZipFile(zpath) as zf:
        assert zf.namelist() == [Path(paths[0]).name]
        with fits.open(io.BytesIO(zf.read(Path(paths[0]).name))) as zipped:
            np.testing.assert_array_equal(zipped[1].data["FLUX"], local[1].data["FLUX"])


def test_several_coordinates(cloud, tmp_path):
    wcs = cloud["wcs"]
    inside = [cloud["center"], wcs.pixel_to_world(20.25, 30.25)]
    far = SkyCoord(100, -10, unit="deg")
    cut = TessFootprintCutout([*inside, far], 5, **_kw(cloud, tmp_path))
    assert len(cut.cutouts) == 2  # the far coordinate matches nothing and is not cut
    files = cube_cut_from_footprint(inside, 5, output_dir=tmp_path / "o", **_kw(cloud, tmp_path))
    assert len(files) == 2 and all(Path(f).exists() for f in files)


def test_local_footprint_file_and_cubes(cloud, tmp_path):
    """A local footprint JSON and a local cube directory work the same way (no S3 needed)."""
    cube_dir = Path(cloud["cube"]).parent
    clear_memory_cache()
    out = cube_cut_from_footprint(
        cloud["center"],
        5,
        footprint_uri=str(cloud["local_fp"]),
        cube_base_uri=str(cube_dir),
        cache_dir=tmp_path / "cache",
        output_dir=tmp_path / "tpf",
    )
    assert len(out) == 1 and Path(out[0]).parent == tmp_path / "tpf"
    with fits.open(out[0]) as hdul:
        assert hdul[1].data["FLUX"].shape == (6, 5, 5)
    assert list((tmp_path / "cache" / "footprints").glob("*.npz"))


def test_matching_across_ra_zero_and_at_the_pole(tmp_path):
    payload = {
        "obs_id": ["tess-s0001-1-1", "tess-s0002-1-1"],
        "sequence_number": [1, 2],
        "target_name": ["TESS FFI", "TESS FFI"],
        "s_region": [
            "POLYGON 359.0 -1.0 1.0 -1.0 1.0 1.0 359.0 1.0",
            "POLYGON 0.0 88.0 90.0 88.0 180.0 88.0 270.0 88.0",
        ],
    }
    fp = tmp_path / "fp.json"
    fp.write_text(json.dumps(payload))
    ffis = get_ffis(str(fp), cache_dir=tmp_path / "cache")
    assert list(ra_dec_crossmatch(ffis, "0.2 0.5", 0)["obs_id"]) == ["tess-s0001-1-1"]
    assert list(ra_dec_crossmatch(ffis, "359.5 -0.5", 3)["obs_id"]) == ["tess-s0001-1-1"]
    assert list(ra_dec_crossmatch(ffis, "123.0 89.9", 0)["obs_id"]) == ["tess-s0002-1-1"]
    assert len(ra_dec_crossmatch(ffis, "180.0 0.0", 10)) == 0
    # a box just west of the RA=0 strip reaches it only when wide enough (1.1 deg away, 21"/px)
    assert len(ra_dec_crossmatch(ffis, "357.9 0.0", 2 * 60 * 60 / 21)) == 0
    assert len(ra_dec_crossmatch(ffis, "357.9 0.0", 2.4 * 60 * 60 / 21)) == 1
    # several coordinates: the union of their matches
    assert sorted(ra_dec_crossmatch(ffis, ["0.2 0.5", "10 89.5"], 1)["obs_id"]) == [
        "tess-s0001-1-1",
        "tess-s0002-1-1",
    ]


# ------------------------------------------------------------------------------------------ offline (tess-point)


def test_offline_search_cuts_without_a_footprint_file(cloud, tmp_path):
    """footprint_uri=None: the cubes come from tess-point's geometry (the simulator's WCS is the same geometry,
    sector 11 camera 1 CCD 1); no footprint file is read, and the TPF equals the local cube's."""
    from skycut.tess.cube_cutout import cube_cut

    c = cloud["center"]
    server = cloud["server"]
    server.log.reset()
    cut = TessFootprintCutout(
        c,
        [7, 5],
        sequence=[11],
        footprint_uri=None,
        cube_base_uri=cloud["base"],
        fsspec_kwargs=server.fsspec_kwargs,
    )
    assert [
        (r["sectorName"], r["sector"], r["camera"], r["ccd"], r["coordinate"], r["cube"]) for r in cut.matches
    ] == [("tess-s0011-1-1", 11, 1, 1, 0, cloud["base"] + "tess-s0011-1-1-cube.fits")]
    assert not any("fp.json" in r.path for r in server.log.requests)
    local = cube_cut(cloud["cube"], c, [7, 5], memory_only=True)
    np.testing.assert_array_equal(cut.tpf_cutouts[0][1].data["FLUX"], local[1].data["FLUX"])


def test_offline_missing_cube_warns_and_names_it(cloud, tmp_path):
    """Sector 38 sees the same sky (camera 1, CCD 1) but its cube is not in the bucket: skipped with a warning
    naming the URI; the sector 11 cutout is still made."""
    c = cloud["center"]
    with pytest.warns(DataWarning, match=r"tess-s0038-1-1-cube\.fits.*not found"):
        cut = TessFootprintCutout(
            c,
            5,
            sequence=[11, 38],
            footprint_uri=None,
            cube_base_uri=cloud["base"],
            fsspec_kwargs=cloud["server"].fsspec_kwargs,
        )
    assert list(cut.matches["sectorName"]) == ["tess-s0011-1-1", "tess-s0038-1-1"]
    assert len(cut.cutouts) == 1
    with pytest.raises(InvalidQueryError, match="no matching cube"):
        TessFootprintCutout(
            c,
            5,
            sequence=[38],
            footprint_uri=None,
            cube_base_uri=cloud["base"],
            fsspec_kwargs=cloud["server"].fsspec_kwargs,
        )


def test_get_tess_sectors_offline_agrees_with_the_search():
    from skycut.tess import sectors

    coords = ["206.84736 -37.22657", "100.0 -74.5"]
    table = get_tess_sectors(coords, 11, sequence=list(range(1, 40)), footprint_uri=None)
    found = sectors.find_sectors([206.84736, 100.0], [-37.22657, -74.5], 11, list(range(1, 40)))
    expected = sorted({(int(r["sector"]), int(r["camera"]), int(r["ccd"])) for r in found})
    assert [(r["sector"], r["camera"], r["ccd"]) for r in table] == expected
    assert ("tess-s0011-1-1", 11, 1, 1) in [tuple(r) for r in table]
    assert list(table["sectorName"]) == [sectors.obs_id(*t) for t in expected]
    assert len(get_tess_sectors("206.84736 -37.22657", 0, sequence=5, footprint_uri=None)) == 0
    with pytest.raises(InvalidQueryError, match="not in tess-point"):
        get_tess_sectors("206.84736 -37.22657", 0, sequence=[9000], footprint_uri=None)


def test_public_names_are_exported():
    import skycut
    from skycut.tess import sectors

    assert skycut.find_sectors is sectors.find_sectors and skycut.plan_cubes is sectors.plan_cubes
    assert {"find_sectors", "plan_cubes"} <= set(dir(skycut))


def test_manifest_bounds_the_offline_search():
    from skycut.exceptions import ManifestError
    from skycut.pipeline.manifest import validate_manifest

    def manifest(**spec):
        return {"targets": [{"name": "a", "coordinates": "10 -30"}], "footprint_cutouts": {"f": spec}}

    with pytest.raises(
        ManifestError, match=r"footprint_cutouts\.f\.sectors: the offline sector search needs"
    ):
        validate_manifest(manifest())
    with pytest.raises(ManifestError, match=r"footprint_cutouts\.f\.last_sector: give only one"):
        validate_manifest(manifest(sectors=[1], last_sector=5))
    spec = validate_manifest(manifest(last_sector=3)).footprint_cutouts["f"]
    assert spec.footprint_uri is None and spec.sector_list() == [1, 2, 3]
    spec = validate_manifest(manifest(footprint_uri="s3://b/fp.json")).footprint_cutouts["f"]
    assert spec.sector_list() is None  # a footprint file lists released sectors only: no bound needed
