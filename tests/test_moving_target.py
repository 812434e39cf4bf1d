"""Tests of skycut.tess.moving_target: path_to_footprints, center_on_path, read_path_table.

Inputs are small SPOC-like FFIs with a moving Gaussian source written here (``write_small_ffis``), turned
into a cube and a TPF by astrocut 1.4.0 (compatibility with astrocut-made TPFs) and, when available, by
skycut's own cube factory / cube cutout and simulator.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from astropy.wcs import WCS, Sip

from skycut.core.geometry import cutout_limits
from skycut.exceptions import InvalidInputError, InvalidQueryError
from skycut.tess.moving_target import center_on_path, centered_limits, path_to_footprints, read_path_table

TJD0 = 2457000.0


def small_tess_wcs(nx: int, ny: int) -> WCS:
    """A TESS-like TAN-SIP WCS (21"/px) of an ``nx`` x ``ny`` image, ``pixel_shape`` set."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    w.wcs.crval = [150.0, 20.0]
    w.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    w.wcs.cd = np.array([[-21 / 3600, 0.0002 / 3600], [0.0001 / 3600, 21 / 3600]])
    a, b = np.zeros((3, 3)), np.zeros((3, 3))
    a[2, 0], b[0, 2] = 1e-7, 1e-7
    w.sip = Sip(a, b, np.zeros((3, 3)), np.zeros((3, 3)), w.wcs.crpix)
    w.pixel_shape = (nx, ny)
    return w


def write_small_ffis(
    out_dir: Path,
    n: int = 10,
    shape: tuple[int, int] = (40, 64),
    x_path: tuple[float, float] = (8.0, 50.0),
    y_path: tuple[float, float] = (15.0, 26.0),
    sector: int = 11,
    wcs: WCS | None = None,
) -> tuple[list[Path], WCS, dict]:
    """SPOC-like FFIs (primary + cal + uncert) with a Gaussian source moving linearly in pixels.

    Returns the files, the WCS and the truth: ``tmid`` (TJD), ``x``, ``y`` (0-based pixels), ``ra``, ``dec``.
    """
    ny, nx = shape
    wcs = wcs or small_tess_wcs(nx, ny)
    t0, dt = 1600.0, 1800 / 86400
    yy, xx = np.mgrid[0:ny, 0:nx]
    rng = np.random.default_rng(1)
    files, truth = [], {"tmid": [], "x": [], "y": [], "ra": [], "dec": []}
    for i in range(n):
        tstart, tstop = t0 + i * dt, t0 + (i + 1) * dt
        frac = i / (n - 1)
        x = x_path[0] + frac * (x_path[1] - x_path[0])
        y = y_path[0] + frac * (y_path[1] - y_path[0])
        sky = wcs.pixel_to_world(x, y)
        img = 10 + rng.normal(0, 0.1, shape) + 1000 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 0.8**2))
        ph = fits.Header(
            [
                ("TELESCOP", "TESS"),
                ("SECTOR", sector),
                ("CAMERA", 1),
                ("CCD", 1),
                ("TSTART", tstart),
                ("TSTOP", tstop),
                ("DATE-OBS", "2019-03-01T00:00:00.000"),
                ("DATE-END", "2019-03-01T00:30:00.000"),
                ("FFIINDEX", 1000 + i),
                ("DATE", "2019-03-02"),
            ]
        )
        h = wcs.to_header(relax=True)
        h["WCSAXES"] = 2
        for k, v in (
            ("TSTART", tstart),
            ("TSTOP", tstop),
            ("BARYCORR", 0.001),
            ("DQUALITY", 0),
            ("CAMERA", 1),
            ("CCD", 1),
            ("DATE-END", "2019-03-01T00:30:00.000"),
        ):
            h[k] = v
        name = out_dir / f"tess2019{i:09d}-s{sector:04d}-1-1-0143-s_ffic.fits"
        fits.HDUList(
            [
                fits.PrimaryHDU(header=ph),
                fits.ImageHDU(img.astype(np.float32), h),
                fits.ImageHDU(np.full(shape, 0.5, np.float32), h),
            ]
        ).writeto(name)
        files.append(name)
        truth["tmid"].append((tstart + tstop) / 2)
        truth["x"].append(x)
        truth["y"].append(y)
        truth["ra"].append(float(sky.ra.deg))
        truth["dec"].append(float(sky.dec.deg))
    return files, wcs, truth


def astrocut_tpf(tmp_path: Path, files: list[Path], wcs: WCS, center_xy=(30, 20), size=(60, 36)) -> str:
    """Cube (astrocut CubeFactory) and TPF (astrocut cube_cut) from the FFIs."""
    astrocut = pytest.importorskip("astrocut")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = astrocut.CubeFactory().make_cube(
            [str(f) for f in files], str(tmp_path / "tess-s0011-1-1-cube.fits"), verbose=False
        )
        return astrocut.cube_cut(cube, wcs.pixel_to_world(*center_xy), list(size), output_path=str(tmp_path))


def path_table(truth: dict, every: int = 1) -> Table:
    idx = sorted(set(range(0, len(truth["tmid"]), every)) | {len(truth["tmid"]) - 1})
    return Table(
        {
            "time": Time(np.array(truth["tmid"])[idx] + TJD0, format="jd", scale="tdb"),
            "position": SkyCoord(np.array(truth["ra"])[idx], np.array(truth["dec"])[idx], unit="deg"),
        }
    )


@pytest.fixture(scope="module")
def moving_source(tmp_path_factory):
    d = tmp_path_factory.mktemp("moving")
    files, wcs, truth = write_small_ffis(d)
    return d, files, wcs, truth


# --------------------------------------------------------------------------------------------- footprints


def test_path_to_footprints_covers_path_on_non_square_image():
    wcs = small_tess_wcs(120, 30)  # wide image: astrocut drops points with x >= 30 (rows), skycut keeps them
    xs = np.linspace(2, 117, 12)
    ys = 5 + 0.15 * xs
    path = wcs.pixel_to_world(xs, ys)
    size = (7, 5)
    fps = path_to_footprints(path, size, wcs, max_pixels=400)
    assert len(fps) > 1
    boxes = []
    for fp in fps:
        ny, nx = fp["size"]
        assert nx * ny <= 400
        x, y = wcs.world_to_pixel(fp["coordinates"])
        boxes.append(cutout_limits((x, y), (nx, ny)))
    # every point along the path (also between the given points) has its whole box inside some footprint
    fine_x = np.linspace(2, 117, 500)
    for x, y in zip(fine_x, 5 + 0.15 * fine_x, strict=True):
        (bx0, bx1), (by0, by1) = centered_limits((x, y), size)
        assert any(b[0, 0] <= bx0 and bx1 <= b[0, 1] and b[1, 0] <= by0 and by1 <= b[1, 1] for b in boxes), (
            x,
            y,
        )
    # the last point (x = 117 > number of rows) is covered
    assert max(b[0, 1] for b in boxes) >= 117 + 3


def test_path_to_footprints_outside_and_single():
    wcs = small_tess_wcs(50, 40)
    outside = wcs.pixel_to_world([200, 210], [200, 210])
    assert path_to_footprints(outside, 5, wcs) == []
    one = path_to_footprints(wcs.pixel_to_world([10, 11], [10, 10]), [15, 15], wcs)
    assert len(one) == 1 and one[0]["size"] == (15, 16)
    w = small_tess_wcs(50, 40)
    w.pixel_shape = None
    with pytest.raises(InvalidInputError, match="pixel_shape"):
        path_to_footprints(outside, 5, w)


# --------------------------------------------------------------------------------------------- center_on_path


def _check_moving_tpf(out: str, truth: dict, size: tuple[int, int], img_wcs: WCS | None = None) -> None:
    nx, ny = size
    with fits.open(out, checksum=True) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "PIXELS"] + (["APERTURE"] if img_wcs is not None else [])
        tab = hdul[1].data
        names = hdul[1].columns.names
        assert names[-4:] == ["TGT_X", "TGT_Y", "TGT_RA", "TGT_DEC"]
        assert tab["FLUX"].shape[1:] == (ny, nx)
        assert hdul[1].columns["FLUX"].dim == f"({nx},{ny})"
        assert len(tab) >= 3
        assert np.all(np.diff(tab["TIME"]) > 0)
        assert hdul[0].header["TSTART"] == pytest.approx(tab["TIME"].min())
        assert "RA_OBJ" not in hdul[0].header
        tx = np.interp(tab["TIME"], truth["tmid"], truth["x"])
        ty = np.interp(tab["TIME"], truth["tmid"], truth["y"])
        for row in tab:
            # the target sits at the centre of every moving box, and the flux peak is on it
            assert abs(row["TGT_X"] - (nx - 1) / 2) <= 0.5 + 1e-6
            assert abs(row["TGT_Y"] - (ny - 1) / 2) <= 0.5 + 1e-6
            py, px = np.unravel_index(np.nanargmax(row["FLUX"]), row["FLUX"].shape)
            # (0.1 px slack: without img_wcs the TPF's linear WCS fit stands in for the FFI's SIP WCS)
            assert abs(px - row["TGT_X"]) <= 0.6 and abs(py - row["TGT_Y"]) <= 0.6
        if img_wcs is not None:
            x, y = img_wcs.world_to_pixel(SkyCoord(tab["TGT_RA"], tab["TGT_DEC"], unit="deg"))
            np.testing.assert_allclose(x, tx, atol=0.05)
            np.testing.assert_allclose(y, ty, atol=0.05)
            ap = hdul[2].data
            assert ap.shape == img_wcs.array_shape
            expected = np.zeros_like(ap)
            for xi, yi in zip(tx, ty, strict=True):
                (x0, x1), (y0, y1) = centered_limits((xi, yi), size)
                expected[y0:y1, x0:x1] = 1
            np.testing.assert_array_equal(ap, expected)
            assert WCS(hdul[2].header).wcs.ctype[1] == "DEC--TAN-SIP"


def test_center_on_path_astrocut_tpf(moving_source, tmp_path):
    d, files, wcs, truth = moving_source
    tpf = astrocut_tpf(tmp_path, files, wcs)
    size = (9, 7)
    out = center_on_path(
        path_table(truth, every=3),
        size,
        [tpf],
        target="2000 AB/x",
        img_wcs=wcs,
        output_path=tmp_path / "out",
        verbose=False,
    )
    name = Path(out).name
    assert name.startswith("2000_AB-x_") and name.endswith("_9-x-7_astrocut.fits")
    with fits.open(out) as hdul:
        t0, t1 = hdul[0].header["TSTART"], hdul[0].header["TSTOP"]
        assert name == f"2000_AB-x_{t0!r}-{t1!r}_9-x-7_astrocut.fits"
        assert hdul[0].header["OBJECT"] == "2000 AB/x"
        assert hdul[1].columns["RAW_CNTS"].null == -1
        assert hdul[1].header["TTYPE1"] == "TIME" and hdul[1].columns["TIME"].unit == "BJD - 2457000, days"
    _check_moving_tpf(out, truth, size, img_wcs=wcs)


def test_center_on_path_without_img_wcs_and_path_file(moving_source, tmp_path):
    d, files, wcs, truth = moving_source
    tpf = astrocut_tpf(tmp_path, files, wcs)
    ecsv = tmp_path / "path.ecsv"
    path_table(truth).write(ecsv)
    out = center_on_path(str(ecsv), 5, tpf, target_pixel_file="mt.fits", output_path=tmp_path, verbose=False)
    assert Path(out) == tmp_path / "mt.fits"
    _check_moving_tpf(out, truth, (5, 5))


def test_center_on_path_errors(moving_source, tmp_path):
    d, files, wcs, truth = moving_source
    tpf = astrocut_tpf(tmp_path, files, wcs)
    far = path_table(truth)
    far["time"] = far["time"] + 30 * u.day  # a month later: no TPF row in the path's time span
    with pytest.raises(InvalidQueryError):
        center_on_path(far, 5, [tpf], output_path=tmp_path, verbose=False)
    with pytest.raises(InvalidInputError, match="time"):
        center_on_path(Table({"position": far["position"]}), 5, [tpf], output_path=tmp_path)
    with pytest.raises(InvalidInputError, match="nothere.fits"):
        center_on_path(path_table(truth), 5, [str(tmp_path / "nothere.fits")], output_path=tmp_path)
    with pytest.raises(InvalidInputError, match="size"):
        center_on_path(path_table(truth), [0, 3], [tpf], output_path=tmp_path)


def test_read_path_table_formats(tmp_path):
    jd = np.array([2458468.2758, 2458468.9008, 2458469.5258])
    csv = tmp_path / "p.csv"
    csv.write_text(
        "time,ra,dec\n"
        + "\n".join(f"{t},{82.2 - i * 0.15},{-1.58 + i * 0.03}" for i, t in enumerate(jd[::-1]))
        + "\n"
    )
    tab = read_path_table(csv)
    assert tab.colnames == ["time", "position"]
    np.testing.assert_allclose(tab["time"].jd, jd)  # sorted by time
    assert tab["position"][0].ra.deg == pytest.approx(82.2 - 2 * 0.15)
    iso = tmp_path / "iso.csv"
    iso.write_text("TIME,RA,DEC\n2018-12-18T18:37:11,82.2,-1.58\n2018-12-19T09:37:11,82.0,-1.55\n")
    t2 = read_path_table(iso, time_scale="tdb")
    assert t2["time"].scale == "tdb" and t2["time"][0].isot.startswith("2018-12-18T18:37:11")
    ecsv = tmp_path / "p.ecsv"
    Table(
        {"time": Time(jd, format="jd", scale="tdb"), "position": SkyCoord([1, 2, 3], [4, 5, 6], unit="deg")}
    ).write(ecsv)
    t3 = read_path_table(ecsv)
    assert t3["time"].scale == "tdb" and t3["position"][2].dec.deg == pytest.approx(6)
    bad = tmp_path / "bad.csv"
    bad.write_text("time,x,y\n1,2,3\n")
    with pytest.raises(InvalidInputError, match="bad.csv"):
        read_path_table(bad)


def test_interpolation_across_ra_zero(tmp_path):
    """A path crossing RA = 0 is interpolated on the sphere (no jump through RA = 180)."""
    from skycut.tess.moving_target import path_interpolator

    jd = np.array([0.0, 1.0, 2.0, 3.0])
    pos = SkyCoord([359.8, 359.9, 0.0, 0.1], [0, 0, 0, 0], unit="deg")
    f = path_interpolator(jd, pos)
    mid = f([1.5])
    assert mid.separation(SkyCoord(359.95, 0, unit="deg")).deg[0] < 1e-6


def test_center_on_path_skycut_simulated_tpf(sim_tess, tmp_path):
    """The simulator's moving source through a TPF made by skycut's CubeFactory and cube_cut: the flux peak
    stays at the centre of the moving box and TGT_RA/TGT_DEC follow the simulator's truth."""
    from skycut.simulate import write_path_table

    cube_factory = pytest.importorskip("skycut.tess.cube_factory")
    cube_cutout = pytest.importorskip("skycut.tess.cube_cutout")
    cube = cube_factory.CubeFactory().make_cube(
        [str(f) for f in sim_tess.files], str(tmp_path / "tess-s0011-1-1-cube.fits"), verbose=False
    )
    with fits.open(sim_tess.files[0]) as h, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ffi_wcs = WCS(h[1].header).celestial
        ffi_wcs.pixel_shape = (h[1].header["NAXIS1"], h[1].header["NAXIS2"])
    ny, nx = sim_tess.truth["shape"]
    # centre a quarter pixel off the exact middle, so that the sky round trip cannot move the TPF's origin
    tpf = cube_cutout.cube_cut(
        cube, ffi_wcs.pixel_to_world(nx / 2 - 0.25, ny / 2 - 0.25), [nx, ny], output_path=str(tmp_path)
    )
    path_file = write_path_table(sim_tess.truth, tmp_path / "path.csv")
    moving = sim_tess.truth["moving"]
    size = (9, 7)
    out = center_on_path(
        str(path_file), size, [tpf], target="sim", img_wcs=ffi_wcs, output_path=tmp_path, verbose=False
    )
    with fits.open(out) as hdul:
        tab = hdul[1].data.copy()
        assert len(tab) == len(moving["tjd"])  # the whole path lies inside the window
        np.testing.assert_allclose(tab["TIME"], moving["tjd"], atol=1e-6)
        truth_sky = SkyCoord(moving["ra"], moving["dec"], unit="deg")
        assert SkyCoord(tab["TGT_RA"], tab["TGT_DEC"], unit="deg").separation(truth_sky).arcsec.max() < 0.5
        ap = hdul[2].data.copy()
    assert ap.shape == (ny, nx)
    for x, y in zip(moving["x"], moving["y"], strict=True):
        assert ap[int(round(y)), int(round(x))] == 1
    assert ap.sum() == len(tab) * size[0] * size[1]  # boxes 20 px apart do not overlap
    with fits.open(tpf) as src:
        tpf_flux = src[1].data["FLUX"]  # the TPF covers the whole window: its pixels are the FFI's
    static = np.median(tpf_flux, axis=0)  # the source moves ~20 px per FFI: the median is the static sky
    fx, fy = ffi_wcs.world_to_pixel(SkyCoord(tab["TGT_RA"], tab["TGT_DEC"], unit="deg"))
    for i, row in enumerate(tab):
        assert abs(row["TGT_X"] - 4) <= 0.5 + 1e-6 and abs(row["TGT_Y"] - 3) <= 0.5 + 1e-6
        x0, y0 = fx[i] - row["TGT_X"], fy[i] - row["TGT_Y"]
        assert abs(x0 - round(x0)) < 1e-6 and abs(y0 - round(y0)) < 1e-6
        x0, y0 = int(round(x0)), int(round(y0))
        np.testing.assert_array_equal(
            row["FLUX"], tpf_flux[i, y0 : y0 + 7, x0 : x0 + 9]
        )  # re-cut, not resampled
        moving_only = row["FLUX"] - static[y0 : y0 + 7, x0 : x0 + 9]
        py, px = np.unravel_index(np.nanargmax(moving_only), moving_only.shape)
        assert abs(px - row["TGT_X"]) <= 0.5 + 1e-6 and abs(py - row["TGT_Y"]) <= 0.5 + 1e-6


def test_footprints_to_tpfs_to_moving_cutout(tmp_path):
    """The docs' workflow: path_to_footprints -> one TPF per footprint (astrocut's cube_cut) ->
    center_on_path over all of them; every cadence appears once and the boxes follow the truth."""
    astrocut = pytest.importorskip("astrocut")
    files, wcs, truth = write_small_ffis(tmp_path, n=10, shape=(40, 64))
    path = path_table(truth)
    size = (7, 7)
    fps = path_to_footprints(path["position"], size, wcs, max_pixels=500)
    assert len(fps) >= 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = astrocut.CubeFactory().make_cube(
            [str(f) for f in files], str(tmp_path / "tess-s0011-1-1-cube.fits"), verbose=False
        )
        tpfs = []
        for i, fp in enumerate(fps):
            ny, nx = fp["size"]
            tpfs.append(
                astrocut.cube_cut(
                    cube,
                    fp["coordinates"],
                    [nx, ny],
                    output_path=str(tmp_path),
                    target_pixel_file=f"fp{i}.fits",
                )
            )
    out = center_on_path(path, size, tpfs, img_wcs=wcs, output_path=tmp_path, verbose=False)
    with fits.open(out) as hdul:
        np.testing.assert_allclose(hdul[1].data["TIME"], truth["tmid"])  # each cadence exactly once
    _check_moving_tpf(out, truth, size, img_wcs=wcs)
