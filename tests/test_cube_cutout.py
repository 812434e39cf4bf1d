"""Cube cutouts into target pixel files: layout, pixels, WCS, lightkurve, edges, names, batches.

Data: the session's simulated FFIs (``sim_tess``: 6 FFIs, a 120 x 140 window of sector 11 camera 1 CCD 1) made
into cubes by skycut's CubeFactory and by astrocut's (interchangeability). Expected values come from the FFIs
themselves and the simulator's truth, never from skycut's own output.
"""

from __future__ import annotations

import re
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

import skycut
from skycut.core.tansip import angular_separation, fit_linear_tan, linear_wcs
from skycut.exceptions import DataWarning, InvalidInputError, InvalidQueryError, NoWcsKeywordsFoundError
from skycut.tess.cube_batch import cut_cube_targets
from skycut.tess.cube_cutout import TessCubeCutout, cube_cut, write_tpf
from skycut.tess.cube_reader import CubeReader, byte_runs, cube_stem


def make_cube(files, path, *, tool: str = "skycut") -> Path:
    """A cube of ``files`` made with skycut's CubeFactory (or astrocut's with ``tool='astrocut'``)."""
    files = [str(f) for f in files]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if tool == "astrocut":
            from astrocut import CubeFactory
        else:
            from skycut.tess.cube_factory import CubeFactory
        CubeFactory().make_cube(files, str(path), verbose=False)
    return Path(path)


@pytest.fixture(scope="module")
def cubes(sim_tess, tmp_path_factory):
    out = tmp_path_factory.mktemp("cubes")
    return {
        "skycut": make_cube(sim_tess.files, out / "tess-s0011-1-1-cube.fits"),
        "astrocut": make_cube(sim_tess.files, out / "astrocut-s0011-1-1-cube.fits", tool="astrocut"),
    }


@pytest.fixture(scope="module")
def ffi_stack(sim_tess):
    """(flux, err, headers) of the simulated FFIs, read directly: numpy ``(ntime, ny, nx)``."""
    flux, err, hdrs = [], [], []
    for f in sim_tess.files:
        with fits.open(f) as h:
            flux.append(h[1].data.astype(np.float32))
            err.append(h[2].data.astype(np.float32))
            hdrs.append(h[1].header.copy())
    return np.array(flux), np.array(err), hdrs


def var_coord(truth) -> SkyCoord:
    v = truth["variable"]
    return SkyCoord(v["ra"], v["dec"], unit="deg")


def open_checked(path):
    """Open a FITS file, failing on any checksum or verification warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hdul = fits.open(path, checksum=True)
        hdul.verify("exception")
    return hdul


# ------------------------------------------------------------------------------------------ layout


def test_tpf_layout_columns_and_keywords(cubes, sim_tess, tmp_path):
    coord = var_coord(sim_tess.truth)
    path = cube_cut(cubes["skycut"], coord, [7, 5], output_path=tmp_path)
    with open_checked(path) as h:
        assert [hdu.name for hdu in h] == ["PRIMARY", "PIXELS", "APERTURE"]
        cols = h["PIXELS"].columns
        assert cols.names == [
            "TIME",
            "TIMECORR",
            "CADENCENO",
            "RAW_CNTS",
            "FLUX",
            "FLUX_ERR",
            "FLUX_BKG",
            "FLUX_BKG_ERR",
            "QUALITY",
            "POS_CORR1",
            "POS_CORR2",
            "FFI_FILE",
        ]
        assert [c.format for c in cols][:9] == ["D", "E", "J", "35J", "35E", "35E", "35E", "35E", "J"]
        hdr = h["PIXELS"].header
        for n in range(4, 9):  # RAW_CNTS..FLUX_BKG_ERR carry the SPOC per-column WCS
            assert hdr[f"TDIM{n}"] == "(7,5)"
            for key in (
                "1CTYP",
                "2CTYP",
                "1CRPX",
                "2CRPX",
                "1CRVL",
                "2CRVL",
                "1CUNI",
                "2CUNI",
                "1CDLT",
                "2CDLT",
                "11PC",
                "12PC",
                "21PC",
                "22PC",
                "WCAX",
            ):
                assert f"{key}{n}" in hdr
            for key in (
                "WCSN",
                "WCAX",
                "1CTY",
                "2CTY",
                "1CUN",
                "2CUN",
                "1CRV",
                "2CRV",
                "1CDL",
                "2CDL",
                "1CRP",
                "2CRP",
            ):
                assert f"{key}{n}P" in hdr
        assert hdr["TNULL4"] == -1
        assert h["PIXELS"].data["FLUX"].shape == (len(sim_tess.files), 5, 7)
        assert h["APERTURE"].data.shape == (5, 7) and h["APERTURE"].data.dtype.kind == "i"
        # whole FFI file names (astrocut truncates them to 38 characters)
        assert list(h["PIXELS"].data["FFI_FILE"]) == [Path(f).name for f in sim_tess.files]
        prim = h[0].header
        assert prim["RA_OBJ"] == pytest.approx(coord.ra.deg) and prim["DEC_OBJ"] == pytest.approx(
            coord.dec.deg
        )
        for key, value in (
            ("TIMEREF", "SOLARSYSTEM"),
            ("TASSIGN", "SPACECRAFT"),
            ("TIMESYS", "TDB"),
            ("BJDREFI", 2457000),
            ("TIMEUNIT", "d"),
            ("FFI_TYPE", "SPOC"),
            ("TELESCOP", "TESS"),
        ):
            assert prim[key] == value
        assert prim["TELAPSE"] == pytest.approx(prim["TSTOP"] - prim["TSTART"])
        assert not any(k.startswith(("CTYPE", "CRVAL", "A_", "AP_", "CD")) for k in prim)
        assert h["PIXELS"].header["WCS_FFI"] in [Path(f).name for f in sim_tess.files]


def test_pixels_time_and_quality_match_ffis(cubes, sim_tess, ffi_stack):
    flux, err, hdrs = ffi_stack
    cut = TessCubeCutout(cubes["skycut"], var_coord(sim_tess.truth), cutout_size=[9, 6])
    c = cut.cutouts[0]
    (x0, x1), (y0, y1) = c.cutout_lims
    np.testing.assert_array_equal(c.data, flux[:, y0:y1, x0:x1])
    np.testing.assert_array_equal(c.uncertainty, err[:, y0:y1, x0:x1])
    assert c.data.dtype == np.float32 and c.shape == (len(hdrs), 6, 9)
    tpf = cut.tpf_cutouts[0]
    np.testing.assert_array_equal(tpf["PIXELS"].data["FLUX"], flux[:, y0:y1, x0:x1])
    np.testing.assert_array_equal(tpf["PIXELS"].data["FLUX_ERR"], err[:, y0:y1, x0:x1])
    np.testing.assert_allclose(tpf["PIXELS"].data["TIME"], [(h["TSTART"] + h["TSTOP"]) / 2 for h in hdrs])
    np.testing.assert_allclose(tpf["PIXELS"].data["TIMECORR"], [h["BARYCORR"] for h in hdrs], rtol=1e-6)
    np.testing.assert_array_equal(tpf["PIXELS"].data["QUALITY"], [h["DQUALITY"] for h in hdrs])
    np.testing.assert_array_equal(tpf["PIXELS"].data["RAW_CNTS"], -1)


def test_cutout_is_centred_on_the_target(cubes, sim_tess):
    v = sim_tess.truth["variable"]
    c = TessCubeCutout(cubes["skycut"], var_coord(sim_tess.truth), cutout_size=11).cutouts[0]
    (x0, x1), (y0, y1) = c.cutout_lims
    assert (x1 - x0, y1 - y0) == (11, 11)
    # the box's middle pixel (index 5) is within one pixel of the target (half a pixel with Cutout2D's rule,
    # up to one with astrocut's rounding)
    assert abs(v["x"] - (x0 + 5)) <= 1.0 and abs(v["y"] - (y0 + 5)) <= 1.0
    mean = np.nanmean(c.data, axis=0)
    assert np.unravel_index(np.argmax(mean), mean.shape) == (round(v["y"]) - y0, round(v["x"]) - x0)


# ------------------------------------------------------------------------------------------ WCS


def test_linear_wcs_matches_truth_and_residual_keywords(cubes, sim_tess, ffi_stack, tmp_path):
    stars = sim_tess.truth["stars"]
    path = cube_cut(cubes["skycut"], var_coord(sim_tess.truth), 41, output_path=tmp_path)
    with open_checked(path) as h:
        ap = WCS(h["APERTURE"].header)
        lims_x0 = h["PIXELS"].header["1CRV5P"] - 1 - sim_tess.truth["window"]["x0"]
        lims_y0 = h["PIXELS"].header["2CRV5P"] - 1 - sim_tess.truth["window"]["y0"]
        msep, sig = h["PIXELS"].header["WCS_MSEP"], h["PIXELS"].header["WCS_SIG"]
        assert h["APERTURE"].header["WCS_MSEP"] == msep and h["APERTURE"].header["WCS_SIG"] == sig
        for a, b in (("1CRVL5", "CRVAL1"), ("2CRVL5", "CRVAL2"), ("1CRPX5", "CRPIX1"), ("11PC5", "PC1_1")):
            assert h["PIXELS"].header[a] == h["APERTURE"].header[b]
        ffi_name = h["PIXELS"].header["WCS_FFI"]
    # truth star positions through the fitted linear WCS land on the truth pixels (to a small fraction of one)
    x, y = ap.all_world2pix(stars["ra"], stars["dec"], 0)
    inside = (np.array(stars["x"]) - lims_x0 >= 0) & (np.array(stars["x"]) - lims_x0 < 41)
    inside &= (np.array(stars["y"]) - lims_y0 >= 0) & (np.array(stars["y"]) - lims_y0 < 41)
    assert inside.sum() >= 2
    assert (
        np.max(np.hypot(x - (np.array(stars["x"]) - lims_x0), y - (np.array(stars["y"]) - lims_y0))[inside])
        < 0.05
    )
    # WCS_MSEP / WCS_SIG: real residuals against the SIP WCS of the FFI named in WCS_FFI
    sip = WCS(ffi_stack[2][[Path(f).name for f in sim_tess.files].index(ffi_name)])
    yy, xx = np.mgrid[0:41, 0:41]
    ra1, dec1 = ap.all_pix2world(xx.ravel(), yy.ravel(), 0)
    ra2, dec2 = sip.all_pix2world(xx.ravel() + lims_x0, yy.ravel() + lims_y0, 0)
    sep = angular_separation(ra1, dec1, ra2, dec2)
    assert 0 < msep < 1 / 3600 and 0 < sig <= msep
    assert 0.3 * msep <= sep.max() <= msep * 1.01
    assert np.sqrt(np.mean(sep**2)) == pytest.approx(sig, rel=0.5)


def test_linear_fit_agrees_with_astropy_fit_wcs_from_points(cubes):
    from astropy.wcs.utils import fit_wcs_from_points

    with CubeReader(cubes["skycut"]) as reader:
        from skycut.tess.cube_wcs import cube_wcs_row, sip_wcs_from_row

        sip = sip_wcs_from_row(reader.table, cube_wcs_row(reader.table), reader.shape)
    lims = np.array([[30, 55], [40, 60]])
    fit = fit_linear_tan(sip, lims)
    yy, xx = np.mgrid[40:60:2, 30:55:2]
    world = sip.pixel_to_world(xx.ravel(), yy.ravel())
    ref = fit_wcs_from_points(
        (xx.ravel() - 30, yy.ravel() - 40), world, proj_point="center", projection="TAN"
    )
    ours = linear_wcs(fit, (20, 25))
    yy, xx = np.mgrid[0:20, 0:25]
    a = ours.pixel_to_world(xx.ravel(), yy.ravel())
    b = ref.pixel_to_world(xx.ravel(), yy.ravel())
    assert a.separation(b).max() < 0.01 * u.arcsec


# ------------------------------------------------------------------------------------------ lightkurve


def test_lightkurve_reads_tpf_with_column_row_and_wcs(cubes, sim_tess, tmp_path):
    lk = pytest.importorskip("lightkurve")
    window = sim_tess.truth["window"]
    paths = TessCubeCutout(cubes["skycut"], var_coord(sim_tess.truth), cutout_size=15).write_as_tpf(tmp_path)
    c = TessCubeCutout(cubes["skycut"], var_coord(sim_tess.truth), cutout_size=15).cutouts[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tpf = lk.read(paths[0], quality_bitmask="none")
    assert type(tpf).__name__ == "TessTargetPixelFile"
    # SPOC convention: 1-based CCD column/row of the first pixel (the simulated FFI is a window at x0, y0)
    assert tpf.column == c.cutout_lims[0][0] + window["x0"] + 1
    assert tpf.row == c.cutout_lims[1][0] + window["y0"] + 1
    assert tpf.flux.shape == (len(sim_tess.files), 15, 15)
    v = sim_tess.truth["variable"]
    x, y = tpf.wcs.all_world2pix(v["ra"], v["dec"], 0)
    assert abs(x - (v["x"] - c.cutout_lims[0][0])) < 0.05 and abs(y - (v["y"] - c.cutout_lims[1][0])) < 0.05


@pytest.fixture(scope="module")
def sim_long(tmp_path_factory):
    """14 small FFIs, enough cadences to see the variable star's sinusoid (period 1.5 x the time span)."""
    from skycut.simulate import make_tess_ffis

    out = tmp_path_factory.mktemp("sim_long")
    sim = make_tess_ffis(out, n_ffi=14, shape=(48, 56), seed=3)
    return sim, make_cube(sim.files, out / "tess-s0011-1-1-cube.fits")


def test_lightkurve_light_curve_recovers_variable_star(sim_long, tmp_path):
    lk = pytest.importorskip("lightkurve")
    sim, cube = sim_long
    v = sim.truth["variable"]
    path = cube_cut(cube, SkyCoord(v["ra"], v["dec"], unit="deg"), 15, output_path=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tpf = lk.read(path, quality_bitmask="none")
        yy, xx = np.mgrid[0:15, 0:15]
        x, y = tpf.wcs.all_world2pix(v["ra"], v["dec"], 0)
        aperture = np.hypot(xx - x, yy - y) <= 3.0
        sky = np.hypot(xx - x, yy - y) >= 5.0
        lc = tpf.to_lightcurve(aperture_mask=aperture)
    flux = np.asarray(lc.flux.value, dtype=float)
    bkg = np.nanmedian(np.asarray(tpf.flux.value)[:, sky], axis=1) * aperture.sum()
    star = flux - bkg
    t = np.asarray(lc.time.value, dtype=float)
    assert len(t) == 14
    best = None
    for period in np.linspace(0.5, 2.0, 151) * v["period"]:
        design = np.column_stack([np.ones_like(t), np.sin(2 * np.pi * (t - v["t0"]) / period)])
        coef, res, *_ = np.linalg.lstsq(design, star, rcond=None)
        chi2 = float(np.sum((design @ coef - star) ** 2))
        if best is None or chi2 < best[0]:
            best = (chi2, period, coef)
    _, period, (mean, amp) = best
    assert period == pytest.approx(v["period"], rel=0.15)
    assert amp == pytest.approx(v["amplitude"] * v["mean_flux"], rel=0.1)
    assert mean == pytest.approx(v["mean_flux"], rel=0.1)


# ------------------------------------------------------------------------------------------ edges


def test_partly_off_ccd_is_padded_and_aperture_marks_real_pixels(cubes, ffi_stack, sim_tess):
    flux = ffi_stack[0]
    with CubeReader(cubes["skycut"]) as reader:
        from skycut.tess.cube_wcs import cube_wcs_row, sip_wcs_from_row

        sip = sip_wcs_from_row(reader.table, cube_wcs_row(reader.table), reader.shape)
    ra, dec = sip.all_pix2world(1.3, 2.3, 0)  # near the lower-left corner: a 9x9 box sticks out by 3 and 2
    cut = TessCubeCutout(cubes["skycut"], SkyCoord(ra, dec, unit="deg"), cutout_size=9, fill_value=-7.0)
    c = cut.cutouts[0]
    np.testing.assert_array_equal(c.cutout_lims, [[-3, 6], [-2, 7]])
    expected = np.zeros((9, 9), dtype=np.int32)
    expected[2:, 3:] = 1
    np.testing.assert_array_equal(c.aperture, expected)
    assert np.all(c.data[:, :2, :] == -7.0) and np.all(c.data[:, :, :3] == -7.0)
    np.testing.assert_array_equal(c.data[:, 2:, 3:], flux[:, 0:7, 0:6])
    tpf = cut.tpf_cutouts[0]
    np.testing.assert_array_equal(tpf["APERTURE"].data, expected)
    assert tpf["APERTURE"].header["NPIXMISS"] == 81 - 42
    assert tpf["PIXELS"].header["1CRV5P"] == sim_tess.truth["window"]["x0"] - 3 + 1
    assert tpf["PIXELS"].header["2CRV5P"] == sim_tess.truth["window"]["y0"] - 2 + 1


def test_entirely_off_raises_naming_target_and_cube(cubes):
    far = SkyCoord(10.0, 10.0, unit="deg")
    with pytest.raises(InvalidQueryError, match=r"10\.0+.*10\.0+.*tess-s0011-1-1-cube\.fits"):
        TessCubeCutout(cubes["skycut"], far, cutout_size=5)
    result = cut_cube_targets(cubes["skycut"], {"far-away": far}, 5, output_dir=".")
    assert not result.written and not result.failed
    assert re.search("'far-away'.*tess-s0011-1-1-cube", result.skipped["far-away"])


def shifted_cube(src: Path, dst: Path, dra: float) -> Path:
    """A copy of ``src`` whose WCS (every table row) is moved by ``dra`` degrees in RA."""
    shutil.copy(src, dst)
    with fits.open(dst, mode="update") as h:
        h[2].data["CRVAL1"] = (h[2].data["CRVAL1"] + dra) % 360
    return dst


def test_several_cubes_warn_for_the_one_missing_target(cubes, sim_tess, tmp_path):
    other = shifted_cube(cubes["skycut"], tmp_path / "tess-s0012-1-1-cube.fits", 20.0)
    with pytest.warns(DataWarning, match="tess-s0012-1-1-cube"):
        cut = TessCubeCutout([cubes["skycut"], other], var_coord(sim_tess.truth), cutout_size=5)
    assert list(cut.cutouts_by_file) == [cubes["skycut"]]
    assert len(cut.tpf_cutouts) == 1


@pytest.mark.parametrize("n_ffi", [1, 2, 3])
def test_cubes_of_one_to_three_ffis(sim_tess, ffi_stack, tmp_path, n_ffi):
    cube = make_cube(sim_tess.files[:n_ffi], tmp_path / "small-cube.fits")
    cut = TessCubeCutout(cube, var_coord(sim_tess.truth), cutout_size=4)
    c = cut.cutouts[0]
    (x0, x1), (y0, y1) = c.cutout_lims
    np.testing.assert_array_equal(c.data, ffi_stack[0][:n_ffi, y0:y1, x0:x1])
    assert len(cut.tpf_cutouts[0]["PIXELS"].data) == n_ffi


def test_cube_without_usable_wcs_is_rejected_by_name(cubes, tmp_path):
    bad = tmp_path / "nowcs-cube.fits"
    shutil.copy(cubes["astrocut"], bad)
    with fits.open(bad, mode="update") as h:
        h[2].data["CTYPE2"] = ""
    with pytest.raises(NoWcsKeywordsFoundError, match="nowcs-cube.fits"):
        TessCubeCutout(bad, "0 0", 5)


def test_bad_inputs_raise_value_errors_naming_the_file(sim_tess, cubes, tmp_path):
    with pytest.raises(InvalidInputError, match=Path(sim_tess.files[0]).name):
        TessCubeCutout(sim_tess.files[0], "0 0", 5)  # an FFI is not a cube
    with pytest.raises(InvalidInputError, match="missing-cube.fits"):
        TessCubeCutout(tmp_path / "missing-cube.fits", "0 0", 5)
    for kwargs in (
        {"fill_value": "x"},
        {"limit_rounding_method": "up"},
        {"threads": "many"},
        {"cutout_size": 0},
    ):
        with pytest.raises(ValueError):
            TessCubeCutout(cubes["skycut"], var_coord(sim_tess.truth), **{"cutout_size": 5, **kwargs})


# ------------------------------------------------------------------------------------------ names and outputs


def test_file_names_follow_astrocut_and_any_cube_name_works(cubes, sim_tess, tmp_path):
    coord = var_coord(sim_tess.truth)
    tail = f"_{coord.ra.deg:.7f}_{coord.dec.deg:.7f}_5-x-5_astrocut.fits"
    for name, stem in (
        ("image-cube.fits", "image"),
        ("cube.fits", "cube"),
        ("my data.cube", "my data.cube"),
        ("tess-s0011-1-1-cube.fits", "tess-s0011-1-1"),
    ):
        cube = tmp_path / name
        shutil.copy(cubes["skycut"], cube)
        paths = TessCubeCutout(cube, coord, 5).write_as_tpf(tmp_path / "out")
        assert [Path(p).name for p in paths] == [stem + tail]
        assert cube_stem(cube) == stem
    legacy = TessCubeCutout(cubes["skycut"], coord, [6, 4]).write_as_tpf(tmp_path, legacy_filenames=True)
    assert Path(legacy[0]).name == f"tess-s0011-1-1_{coord.ra.deg:.6f}_{coord.dec.deg:.6f}_6x4_astrocut.fits"
    angular = TessCubeCutout(cubes["skycut"], coord, 2 * u.arcmin)
    assert Path(angular.write_as_tpf(tmp_path)[0]).name.endswith("_2.0arcmin-x-2.0arcmin_astrocut.fits")
    # 2 arcmin at TESS's ~21 arcsec/pixel
    assert angular.cutouts[0].shape[1:] in ((6, 6), (5, 5))
    assert not list(tmp_path.rglob("*.part"))


def test_several_coordinates_give_one_tpf_each_and_zip(cubes, sim_tess, tmp_path):
    stars = sim_tess.truth["stars"]
    coords = SkyCoord(stars["ra"][:3], stars["dec"][:3], unit="deg")
    cut = TessCubeCutout(cubes["skycut"], coords, 5)
    assert len(cut.cutouts) == 3 and len(cut.tpf_cutouts) == 3
    paths = cut.write_as_tpf(tmp_path)
    assert len(set(paths)) == 3
    for p, c in zip(paths, coords, strict=True):
        with open_checked(p) as h:
            assert h[0].header["RA_OBJ"] == pytest.approx(c.ra.deg)
    zpath = cut.write_as_zip(tmp_path, "bundle")
    with zipfile.ZipFile(zpath) as zf:
        assert sorted(zf.namelist()) == sorted(Path(p).name for p in paths)
        assert zf.read(Path(paths[0]).name) == Path(paths[0]).read_bytes()
    named = cut.write_as_tpf(tmp_path / "named", output_file=["a.fits", "b.fits", "c.fits"])
    assert [Path(p).name for p in named] == ["a.fits", "b.fits", "c.fits"]


def test_functional_api_and_cutout_factory(cubes, sim_tess, tmp_path):
    coord = var_coord(sim_tess.truth)
    hdul = skycut.cube_cut(cubes["skycut"], coord, 5, memory_only=True)
    assert isinstance(hdul, fits.HDUList) and hdul[1].data["FLUX"].shape[1:] == (5, 5)
    path = skycut.cube_cut(
        cubes["skycut"],
        f"{coord.ra.deg} {coord.dec.deg}",
        5,
        target_pixel_file="t.fits",
        output_path=tmp_path,
    )
    assert Path(path) == tmp_path / "t.fits"
    np.testing.assert_array_equal(fits.getdata(path, 1)["FLUX"], hdul[1].data["FLUX"])
    factory = skycut.CutoutFactory()
    positional = factory.cube_cut(
        cubes["skycut"], coord, 5, "positional.fits", tmp_path
    )  # astrocut 1.4 order
    assert Path(positional) == tmp_path / "positional.fits"
    assert factory.center_coord.separation(coord) < 1e-6 * u.deg
    assert (
        factory.cutout_lims.shape == (2, 2)
        and factory.cutout_wcs.naxis == 2
        and factory.cube_wcs.sip is not None
    )


def test_batch_writes_named_targets_to_chosen_paths(cubes, sim_tess, tmp_path):
    stars = sim_tess.truth["stars"]
    targets = {f"star{i}": SkyCoord(stars["ra"][i], stars["dec"][i], unit="deg") for i in range(4)}
    targets["off"] = SkyCoord(10, 10, unit="deg")
    paths = {name: tmp_path / "by-name" / f"{name}.fits" for name in targets}
    result = cut_cube_targets(cubes["skycut"], targets, 7, output_paths=paths, chunk=3)
    assert sorted(result.written) == ["star0", "star1", "star2", "star3"]
    assert list(result.skipped) == ["off"] and "'off'" in result.skipped["off"] and not result.failed
    for name, (path,) in result.written.items():
        assert path == paths[name]
        single = TessCubeCutout(cubes["skycut"], targets[name], 7).cutouts[0]
        with open_checked(path) as h:
            np.testing.assert_array_equal(h["PIXELS"].data["FLUX"], single.data)
    c = TessCubeCutout(cubes["skycut"], targets["star0"], 7).cutouts[0]
    assert write_tpf(c, tmp_path / "x.fits").read_bytes() == paths["star0"].read_bytes()


def test_background_writes_same_bytes_order_and_failures_kept(cubes, sim_tess, tmp_path, monkeypatch):
    """The batch writes its TPFs on a background thread, its pixel tables in rotating buffers: every file is the
    one a single cutout writes, outcomes come in target order, and a TPF that cannot be written fails alone."""
    from skycut.tess import cube_batch

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    monkeypatch.setattr(cube_batch, "PENDING_WRITES", 2)  # more targets than buffers: each buffer is reused
    stars = sim_tess.truth["stars"]
    names = [f"star{i}" for i in range(8)]
    targets = [(name, SkyCoord(stars["ra"][i], stars["dec"][i], unit="deg")) for i, name in enumerate(names)]
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    paths = {name: tmp_path / "out" / f"{name}.fits" for name in names}
    paths["star3"] = blocker / "star3.fits"
    result = cut_cube_targets(cubes["skycut"], targets, [7, 5], output_paths=paths)
    assert list(result.written) == [n for n in names if n != "star3"]
    assert list(result.failed) == ["star3"] and "not-a-directory" in str(result.failed["star3"])
    for name, coord in targets:
        if name == "star3":
            continue
        single = write_tpf(TessCubeCutout(cubes["skycut"], coord, [7, 5]).cutouts[0], tmp_path / "one.fits")
        assert paths[name].read_bytes() == single.read_bytes(), name


def test_batch_cutout_wider_than_the_ccd_reads_whole_rows(cubes, sim_tess, tmp_path):
    """A box spanning every column is one byte run per block in the batch's reused-buffer read: the same pixels
    as a single cutout's."""
    from skycut.tess.cube_reader import CubeReader

    with CubeReader(cubes["skycut"]) as reader:
        width = reader.ncols
    stars = sim_tess.truth["stars"]
    targets = [(f"s{i}", SkyCoord(stars["ra"][i], stars["dec"][i], unit="deg")) for i in range(3)]
    result = cut_cube_targets(cubes["skycut"], targets, [width + 10, 3], output_dir=tmp_path)
    assert len(result.written) == 3
    for name, coord in targets:
        single = TessCubeCutout(cubes["skycut"], coord, [width + 10, 3]).cutouts[0]
        with open_checked(result.written[name][0]) as h:
            np.testing.assert_array_equal(h["PIXELS"].data["FLUX"], single.data)
            np.testing.assert_array_equal(h["PIXELS"].data["FLUX_ERR"], single.uncertainty)


# ------------------------------------------------------------------------------------------ interchangeability


def test_astrocut_cube_and_astrocut_tpf_agree(cubes, sim_tess, tmp_path):
    from astrocut import TessCubeCutout as AstrocutCut

    coord = var_coord(sim_tess.truth)
    ours = TessCubeCutout(cubes["astrocut"], coord, 8).cutouts[0]
    mine_on_skycut_cube = TessCubeCutout(cubes["skycut"], coord, 8).cutouts[0]
    np.testing.assert_array_equal(ours.data, mine_on_skycut_cube.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = AstrocutCut(str(cubes["astrocut"]), coord, 8)
    t = theirs.cutouts[0]
    # same box up to astrocut's rounding of the lower edge (it can put the box one pixel further on)
    shift = np.asarray(t.cutout_lims)[:, 0] - ours.cutout_lims[:, 0]
    assert np.all(np.abs(shift) <= 1)
    np.testing.assert_array_equal(
        np.asarray(t.cutout_lims) - ours.cutout_lims, np.column_stack([shift, shift])
    )
    dx, dy = int(shift[0]), int(shift[1])
    theirs_data = np.asarray(t.data, dtype=np.float32)
    ys, xs = slice(max(dy, 0), 8 + min(dy, 0)), slice(max(dx, 0), 8 + min(dx, 0))
    ys_t, xs_t = slice(max(-dy, 0), 8 + min(-dy, 0)), slice(max(-dx, 0), 8 + min(-dx, 0))
    np.testing.assert_array_equal(theirs_data[:, ys_t, xs_t], ours.data[:, ys, xs])
    assert np.asarray(t.aperture).sum() == ours.aperture.sum() == 64
    a_tpf, s_tpf = theirs.tpf_cutouts[0], TessCubeCutout(cubes["astrocut"], coord, 8).tpf_cutouts[0]
    np.testing.assert_allclose(a_tpf[1].data["TIME"], s_tpf[1].data["TIME"])
    assert a_tpf[1].columns.names == s_tpf[1].columns.names
    sep = angular_separation(
        a_tpf[2].header["CRVAL1"],
        a_tpf[2].header["CRVAL2"],
        s_tpf[2].header["CRVAL1"],
        s_tpf[2].header["CRVAL2"],
    )
    assert sep < 2 / 3600  # both fit a linear TAN about the cutout centre


# ------------------------------------------------------------------------------------------ byte runs


@pytest.mark.parametrize("lims", [[[0, 140], [3, 9]], [[5, 12], [0, 4]], [[139, 140], [119, 120]]])
def test_byte_runs_cover_exactly_the_block(cubes, lims):
    with CubeReader(cubes["skycut"]) as reader:
        runs = byte_runs(lims, reader.shape, reader.dtype.itemsize, reader.data_offset)
        (x0, x1), (y0, y1) = lims
        blob = b"".join(reader._src.read(a, b) for a, b in runs)
        expected = np.asarray(reader.memmap()[y0:y1, x0:x1])
    np.testing.assert_array_equal(np.frombuffer(blob, dtype=expected.dtype).reshape(expected.shape), expected)
    full_width = x1 - x0 == 140
    assert len(runs) == (1 if full_width else y1 - y0)


# ------------------------------------------------------------------------------------------ numpy WCS, start-up


def test_numpy_tan_sip_matches_astropy(cubes):
    from skycut.core.tansip import TanSip
    from skycut.tess.cube_wcs import cube_wcs_from_row, cube_wcs_row, sip_wcs_from_row

    with CubeReader(cubes["skycut"]) as reader:
        row = cube_wcs_row(reader.table)
        ours = cube_wcs_from_row(reader.table, row, reader.shape)
        ref = sip_wcs_from_row(reader.table, row, reader.shape)
    assert isinstance(ours, TanSip) and ref.sip is not None
    yy, xx = np.mgrid[-20:140:7, -30:170:9].astype(float)
    ra1, dec1 = ours.all_pix2world(xx.ravel(), yy.ravel(), 0)
    ra2, dec2 = ref.all_pix2world(xx.ravel(), yy.ravel(), 0)
    assert angular_separation(ra1, dec1, ra2, dec2).max() < 1e-9
    x1, y1 = ours.all_world2pix(ra2, dec2, 0)
    x2, y2 = ref.all_world2pix(ra2, dec2, 0)
    np.testing.assert_allclose(x1, x2, atol=1e-6)
    np.testing.assert_allclose(y1, y2, atol=1e-6)
    np.testing.assert_allclose(x1, xx.ravel(), atol=1e-6)
    from astropy.wcs.utils import proj_plane_pixel_scales

    np.testing.assert_allclose(ours.pixel_scales(), proj_plane_pixel_scales(ref), rtol=1e-12)
    # the far side of the sky has no pixel
    far_ra, far_dec = (ours.crval[0] + 180) % 360, -ours.crval[1]
    assert np.all(np.isnan(ours.all_world2pix(np.array([far_ra]), np.array([far_dec]), 0)))


def test_one_cutout_process_does_not_import_astropy(cubes, sim_tess, tmp_path):
    import subprocess
    import sys

    v = sim_tess.truth["variable"]
    code = (
        "import sys, skycut; p = skycut.cube_cut(sys.argv[1], sys.argv[2], 9, output_path=sys.argv[3]); "
        "print(p); print(sorted(m for m in sys.modules if m.split('.')[0] in ('astropy', 'scipy')))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(cubes["skycut"]), f"{v['ra']} {v['dec']}", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    path, modules = res.stdout.strip().splitlines()
    assert modules == "[]"
    with open_checked(path) as h:
        assert h["PIXELS"].data["FLUX"].shape[1:] == (9, 9)


def test_float64_cube_from_astrocut_update_cube(sim_tess, ffi_stack, tmp_path):
    """astrocut's update_cube turns a cube into float64; such cubes cut the same (values as float32)."""
    from astrocut import CubeFactory

    cube = make_cube(sim_tess.files[:4], tmp_path / "grown-cube.fits", tool="astrocut")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        CubeFactory().update_cube([str(f) for f in sim_tess.files[4:]], str(cube), verbose=False)
    assert fits.getheader(cube, 1)["BITPIX"] == -64
    with CubeReader(cube) as reader:
        names = list(reader.table["FFI_FILE"])
    cut = TessCubeCutout(cube, var_coord(sim_tess.truth), 6)
    c = cut.cutouts[0]
    (x0, x1), (y0, y1) = c.cutout_lims
    order = [[Path(f).name[: len(n)] for f in sim_tess.files].index(n) for n in names]
    np.testing.assert_array_equal(c.data, ffi_stack[0][order, y0:y1, x0:x1])
    assert cut.tpf_cutouts[0]["PIXELS"].data["FLUX"].dtype.kind == "f"


def test_verbose_logs_wcs_row_and_fit(cubes, sim_tess, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="skycut")
    cut = TessCubeCutout(cubes["skycut"], var_coord(sim_tess.truth), 5, verbose=True)
    text = caplog.text
    assert "using WCS from row 3 out of 6" in text  # the middle row of 6 FFIs, all with a WCS
    assert f"limits {cut.cutouts[0].cutout_lims.tolist()}" in text


def test_byte_runs_property(cubes):
    """For any block on the cube, the merged byte runs hold exactly its pixels, in order, and are disjoint."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    with CubeReader(cubes["skycut"]) as reader:
        image = np.asarray(reader.memmap())
        nrows, ncols = reader.nrows, reader.ncols

        @settings(max_examples=40, deadline=None)
        @given(
            st.integers(0, ncols - 1), st.integers(1, ncols), st.integers(0, nrows - 1), st.integers(1, nrows)
        )
        def check(x0, nx, y0, ny):
            x1, y1 = min(ncols, x0 + nx), min(nrows, y0 + ny)
            runs = byte_runs([[x0, x1], [y0, y1]], reader.shape, reader.dtype.itemsize, reader.data_offset)
            assert all(a < b for a, b in runs) and all(
                runs[i][1] < runs[i + 1][0] for i in range(len(runs) - 1)
            )
            blob = b"".join(reader._src.read(a, b) for a, b in runs)
            got = np.frombuffer(blob, dtype=reader.dtype).reshape(y1 - y0, x1 - x0, *reader.shape[2:])
            np.testing.assert_array_equal(got, image[y0:y1, x0:x1])

        check()


def test_batch_result_records_skips_and_failures_and_goes_on(cubes, sim_tess, tmp_path):
    stars = sim_tess.truth["stars"]
    targets = [
        ("good", f"{stars['ra'][0]} {stars['dec'][0]}"),
        ("nan", "nan 10"),
        ("dec95", (10.0, 95.0)),
        ("off", "10 10"),
        ("good2", (float(stars["ra"][1]), float(stars["dec"][1]))),
    ]
    result = cut_cube_targets(cubes["skycut"], targets, 5.4, output_dir=tmp_path)
    assert sorted(result.written) == ["good", "good2"] and not result.ok
    assert sorted(result.failed) == ["dec95", "nan"] and "95" in result.failed["dec95"]
    assert list(result.skipped) == ["off"] and "entirely off the CCD" in result.skipped["off"]
    with fits.open(result.written["good"][0]) as h:  # 5.4 pixels round to 5
        assert h["PIXELS"].data["FLUX"].shape[1:] == (5, 5)
