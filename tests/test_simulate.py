"""Tests of skycut.simulate: the simulated TESS FFIs, HST skycells and Roman ASDF files are what they claim.

Expected values come from independent sources: tess-point's forward model, astropy's WCS/Time, the
stored truth (checked against the pixels), and properties such as flux conservation.
"""

from __future__ import annotations

import filecmp
import re
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS, FITSFixedWarning

from skycut.exceptions import InvalidInputError
from skycut.simulate import (
    demo_file_names,
    hst_image_names,
    make_hst_images,
    make_roman_asdf,
    make_tess_ffis,
    render_gaussians,
    roman_asdf_name,
    simulate_demo,
    tess_ffi_names,
    write_path_table,
)

SPOC_NAME = re.compile(r"^tess(\d{13})-s(\d{4})-(\d)-(\d)-(\d{4})-s_ffic\.fits$")
# the 33 image keywords astrocut copies from an FFI into its cutouts
IMG_KWDS = [
    "BACKAPP",
    "CDPP0_5",
    "CDPP1_0",
    "CDPP2_0",
    "CROWDSAP",
    "DEADAPP",
    "DEADC",
    "EXPOSURE",
    "FLFRCSAP",
    "FRAMETIM",
    "FXDOFF",
    "GAINA",
    "GAINB",
    "GAINC",
    "GAIND",
    "INT_TIME",
    "LIVETIME",
    "MEANBLCA",
    "MEANBLCB",
    "MEANBLCC",
    "MEANBLCD",
    "NREADOUT",
    "NUM_FRM",
    "READNOIA",
    "READNOIB",
    "READNOIC",
    "READNOID",
    "READTIME",
    "TIERRELA",
    "TIMEDEL",
    "TIMEPIXR",
    "TMOFST11",
    "VIGNAPP",
]


def _wcs(header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def _model_image(truth: dict, i: int) -> np.ndarray:
    """Noise-free FFI ``i`` rebuilt from the truth alone."""
    rows, cols = truth["shape"]
    sigma = truth["psf_sigma_pix"]
    bkg = truth["background"]
    yy, xx = np.mgrid[0:rows, 0:cols]
    model = bkg["level"][i] + bkg["gx"] * (xx - bkg["x_ref"]) + bkg["gy"] * (yy - bkg["y_ref"])
    s, v, m = truth["stars"], truth["variable"], truth["moving"]
    render_gaussians(model, s["x"], s["y"], s["flux"], sigma)
    render_gaussians(model, [v["x"]], [v["y"]], [v["flux"][i]], sigma)
    render_gaussians(model, [m["x"][i]], [m["y"][i]], [m["flux"]], sigma)
    return model


# ------------------------------------------------------------------------------------------------ helpers


def test_render_gaussians_conserves_flux_and_centroid():
    img = np.zeros((40, 50))
    render_gaussians(img, [20.3, 10.0], [15.7, 30.2], [1000.0, 500.0], [1.2, 0.8])
    assert img.sum() == pytest.approx(1500.0, rel=1e-6)
    part = img[:, :32][:25]  # the first source only
    yy, xx = np.mgrid[0:25, 0:32]
    assert (xx * part).sum() / part.sum() == pytest.approx(20.3, abs=1e-3)
    assert (yy * part).sum() / part.sum() == pytest.approx(15.7, abs=1e-3)


def test_render_gaussians_clips_sources_at_the_edge():
    img = np.zeros((10, 10))
    render_gaussians(img, [-0.5], [4.5], [100.0], 1.0)  # half the light falls off the left edge
    assert img.sum() == pytest.approx(50.0, rel=1e-3)


# ------------------------------------------------------------------------------------------------- TESS


def test_tess_names_layout_and_shapes(sim_tess):
    names = [p.name for p in sim_tess.files]
    assert names == tess_ffi_names(sector=11, camera=1, ccd=1, n_ffi=6)
    assert names == sorted(names) and len(set(names)) == 6
    for name in names:
        assert len(name) == 44
        match = SPOC_NAME.match(name)
        assert match and match.group(2) == "0011" and match.group(3, 4) == ("1", "1")
    with fits.open(sim_tess.files[0]) as hdul:
        assert len(hdul) == 3 and hdul[0].data is None
        assert hdul[1].header["EXTNAME"] == "CAMERA.CCD 1.1 cal"
        assert hdul[2].header["EXTNAME"] == "CAMERA.CCD 1.1 uncert"
        for ext in (1, 2):
            assert hdul[ext].data.dtype.newbyteorder("=") == np.float32
            assert hdul[ext].header["NAXIS1"] == 140 and hdul[ext].header["NAXIS2"] == 120
        assert np.all(hdul[2].data > 0)
    assert sim_tess.truth_file.exists() and sim_tess.truth_file.name.endswith("_truth.json")


def test_tess_headers(sim_tess):
    tstarts = []
    for path in sim_tess.files:
        with fits.open(path, checksum=True) as hdul:
            p, h = hdul[0].header, hdul[1].header
            assert p["TELESCOP"] == "TESS" and p["SECTOR"] == 11 and p["CAMERA"] == 1 and p["CCD"] == 1
            for key in (
                "INSTRUME",
                "TSTART",
                "TSTOP",
                "DATE-OBS",
                "DATE-END",
                "FFIINDEX",
                "DATA_REL",
                "ORIGIN",
                "CREATOR",
                "PROCVER",
                "RA_NOM",
                "DEC_NOM",
                "ROLL",
            ):
                assert key in p, key
            for key in ("TSTART", "TSTOP", "DATE-OBS", "DATE-END", "BARYCORR", "DQUALITY", *IMG_KWDS):
                assert key in h, key
            assert "COMMENT" not in h and "HISTORY" not in h  # astrocut's cube factory chokes on them
            assert h["TSTART"] == p["TSTART"] and h["TSTOP"] == p["TSTOP"]
            assert h["TSTOP"] - h["TSTART"] == pytest.approx(1800 / 86400)
            assert h["TIMEDEL"] == pytest.approx(1800 / 86400)
            assert 0 < h["EXPOSURE"] < h["TIMEDEL"]
            assert 1000 < h["TSTART"] < 4000  # TJD of the TESS era
            assert 0 < abs(h["BARYCORR"]) < 0.0058  # at most ~8.3 minutes
            # DATE-OBS is the UTC spacecraft time of TSTART (barycentric TDB) minus BARYCORR
            utc = Time(h["TSTART"] - h["BARYCORR"] + 2457000, format="jd", scale="tdb").utc
            assert abs((Time(h["DATE-OBS"].rstrip("Z"), scale="utc") - utc).sec) < 0.01
            assert h["WCSAXES"] == 2 and h["CTYPE1"] == "RA---TAN-SIP" and h["CTYPE2"] == "DEC--TAN-SIP"
            for key in ("A_ORDER", "B_ORDER", "AP_ORDER", "BP_ORDER"):
                assert h[key] >= 2
            assert h["WCSNAMEP"] == "PHYSICAL" and h["CTYPE1P"] == "RAWX"
            assert h["CRVAL1P"] == sim_tess.truth["window"]["x0"] + 1
            assert h["CRVAL2P"] == sim_tess.truth["window"]["y0"] + 1
            tstarts.append(h["TSTART"])
    assert np.allclose(np.diff(tstarts), 1800 / 86400)
    assert any(sim_tess.truth["times"]["dquality"])
    assert [fits.getval(p, "DQUALITY", 1) for p in sim_tess.files] == sim_tess.truth["times"]["dquality"]
    # file-name time stamp = DATE-END (UTC) to the second
    end = Time(fits.getval(sim_tess.files[0], "DATE-END", 1).rstrip("Z"))
    assert sim_tess.files[0].name[4:17] == end.strftime("%Y%j%H%M%S")


def test_tess_deterministic_by_seed(sim_tess, tmp_path):
    again = make_tess_ffis(tmp_path / "a", sector=11, camera=1, ccd=1, n_ffi=6, shape=(120, 140), seed=0)
    for a, b in zip(sim_tess.files, again.files, strict=True):
        assert a.name == b.name
        assert filecmp.cmp(a, b, shallow=False)
    other = make_tess_ffis(tmp_path / "b", n_ffi=2, shape=(120, 140), seed=1)
    assert not np.array_equal(fits.getdata(other.files[0], 1), fits.getdata(sim_tess.files[0], 1))


def test_tess_wcs_round_trip(sim_tess):
    wcs = _wcs(fits.getheader(sim_tess.files[0], 1))
    stars = sim_tess.truth["stars"]
    x, y = wcs.all_world2pix(stars["ra"], stars["dec"], 0)
    assert np.max(np.abs(x - stars["x"])) < 0.01
    assert np.max(np.abs(y - stars["y"])) < 0.01
    # the inverse SIP (AP/BP) alone agrees with the iterative inverse
    foc = wcs.wcs_world2pix(np.c_[stars["ra"], stars["dec"]], 0)
    s = wcs.sip
    u, v = foc[:, 0] + 1 - s.crpix[0], foc[:, 1] + 1 - s.crpix[1]
    n = s.ap.shape[0]
    du = sum(s.ap[i, j] * u**i * v**j for i in range(n) for j in range(n - i))
    assert np.max(np.abs(u + du + s.crpix[0] - 1 - x)) < 0.01


def test_tess_wcs_agrees_with_tess_point(sim_tess):
    import tess_stars2px

    truth = sim_tess.truth
    stars = truth["stars"]
    n = len(stars["ra"])
    out = tess_stars2px.tess_stars2px_function_entry(
        np.arange(n), np.asarray(stars["ra"]), np.asarray(stars["dec"]), trySector=11
    )
    ids, cam, ccd, col, row = out[0], out[4], out[5], out[6], out[7]
    assert set(zip(cam, ccd, strict=True)) == {(1, 1)} and len(ids) == n
    # tess-point col/row are 1-based FFI pixels: 0-based full-FFI x = col - 1; the file is a window at x0, y0
    dx = col - 1 - truth["window"]["x0"] - np.asarray(stars["x"])[ids]
    dy = row - 1 - truth["window"]["y0"] - np.asarray(stars["y"])[ids]
    # measured: ~0.015 px near the CCD centre (the SIP fit deviates by up to ~0.15 px at the CCD corners)
    assert np.max(np.hypot(dx, dy)) < 0.05


@pytest.mark.parametrize("sector, camera, ccd", [(11, 1, 1), (26, 4, 1), (40, 2, 3)])
def test_full_ccd_wcs_agrees_with_tess_point(sector, camera, ccd):
    """Over the whole CCD, incl. one containing the ecliptic pole (26-4-1) and an extended-mission sector."""
    import tess_stars2px

    from skycut.simulate.tess import tess_ccd_wcs

    wcs = tess_ccd_wcs(sector=sector, camera=camera, ccd=ccd)
    x, y = np.meshgrid(np.linspace(50, 2085, 6), np.linspace(5, 2040, 6))
    ra, dec = wcs.all_pix2world(x.ravel(), y.ravel(), 0)
    out = tess_stars2px.tess_stars2px_function_entry(np.arange(ra.size), ra, dec, trySector=sector)
    mine = (out[4] == camera) & (out[5] == ccd)  # near CCD edges tess-point also lists neighbouring CCDs
    ids = out[0][mine]
    assert sorted(ids) == list(range(ra.size))
    err = np.hypot(out[6][mine] - 1 - x.ravel()[ids], out[7][mine] - 1 - y.ravel()[ids])
    assert err.max() < 0.35  # measured maxima over the CCD: 0.13 (11-1-1) to 0.28 px (40-2-3)


def test_tess_pixels_match_truth_within_noise(sim_tess):
    truth = sim_tess.truth
    for i in (0, 3):
        with fits.open(sim_tess.files[i]) as hdul:
            data, err = hdul[1].data.astype(float), hdul[2].data.astype(float)
        z = (data - _model_image(truth, i)) / err
        assert abs(z.mean()) < 0.05
        assert 0.95 < z.std() < 1.05
        # uncertainty follows the Poisson + read noise model of the truth
        noise = truth["noise"]
        expected = (
            np.sqrt(
                _model_image(truth, i) * noise["exposure_s"] + noise["n_reads"] * noise["read_noise_e"] ** 2
            )
            / noise["exposure_s"]
        )
        assert np.allclose(err, expected, rtol=1e-3)


def _box_sum(data, x, y, half=4):
    ix, iy = int(round(x)), int(round(y))
    return float(data[iy - half : iy + half + 1, ix - half : ix + half + 1].sum())


def test_variable_star_follows_truth(sim_tess):
    truth = sim_tess.truth
    var = truth["variable"]
    measured, contamination = [], []
    for i, path in enumerate(sim_tess.files):
        data = fits.getdata(path, 1).astype(float)
        bkg = _model_image(truth, i) - 0  # background + everything else, known from truth
        only_var = np.zeros_like(data)
        render_gaussians(only_var, [var["x"]], [var["y"]], [var["flux"][i]], truth["psf_sigma_pix"])
        measured.append(_box_sum(data, var["x"], var["y"]))
        contamination.append(_box_sum(bkg - only_var, var["x"], var["y"]))
    measured = np.array(measured) - np.array(contamination)
    flux = np.array(var["flux"])
    assert flux.max() / flux.min() > 1.3  # the sampled variation is large
    assert np.allclose(measured, flux, rtol=0.01)  # 9x9 box holds > 99.9 % of the PSF
    # the truth flux is the exposure average of the stated sinusoid
    t = np.array(truth["times"]["tmid"])
    model = var["mean_flux"] * (1 + var["amplitude"] * np.sin(2 * np.pi * (t - var["t0"]) / var["period"]))
    assert np.allclose(flux, model, rtol=0.01)


def test_moving_source_moves_across_the_frame(sim_tess):
    truth = sim_tess.truth
    mov = truth["moving"]
    rows, cols = truth["shape"]
    x, y = np.array(mov["x"]), np.array(mov["y"])
    assert np.all((x > 5) & (x < cols - 6) & (y > 5) & (y < rows - 6))
    assert x[-1] - x[0] > cols / 2  # crosses much of the frame
    assert np.all(np.diff(mov["ra"]) != 0)
    stack = np.array([fits.getdata(p, 1) for p in sim_tess.files], dtype=float)
    median = np.median(stack, axis=0)
    for i in range(len(sim_tess.files)):
        diff = stack[i] - median
        ix, iy = int(round(x[i])), int(round(y[i]))
        box = diff[iy - 3 : iy + 4, ix - 3 : ix + 4]
        peak = np.unravel_index(np.argmax(box), box.shape)
        assert (peak[1] - 3 + ix, peak[0] - 3 + iy) == (ix, iy)
        assert box.sum() > 0.5 * mov["flux"]
        assert mov["time_jd"][i] == pytest.approx(mov["tjd"][i] + 2457000)
        h = fits.getheader(sim_tess.files[i], 1)
        assert mov["tjd"][i] == pytest.approx((h["TSTART"] + h["TSTOP"]) / 2)
    wcs = _wcs(fits.getheader(sim_tess.files[0], 1))
    px, py = wcs.all_world2pix(mov["ra"], mov["dec"], 0)
    assert np.allclose(px, x, atol=0.01) and np.allclose(py, y, atol=0.01)


@pytest.mark.parametrize("suffix", [".ecsv", ".csv"])
def test_write_path_table(sim_tess, tmp_path, suffix):
    from astropy.table import Table

    path = write_path_table(sim_tess, tmp_path / f"path{suffix}")
    table = Table.read(path, format="ascii.ecsv" if suffix == ".ecsv" else "ascii.csv")
    assert table.colnames == ["time", "ra", "dec"]
    jd = table["time"].tdb.jd if suffix == ".ecsv" else np.asarray(table["time"])
    if suffix == ".ecsv":
        assert table["time"].scale == "tdb"
    assert np.allclose(jd, sim_tess.truth["moving"]["time_jd"], rtol=0, atol=1e-8)
    assert np.allclose(table["ra"], sim_tess.truth["moving"]["ra"], rtol=0, atol=1e-9)
    with pytest.raises(InvalidInputError):
        write_path_table({"stars": {}}, tmp_path / "bad.csv")


@pytest.mark.slow
def test_full_size_ffi(tmp_path):
    res = make_tess_ffis(tmp_path, n_ffi=1, seed=3)
    with fits.open(res.files[0]) as hdul:
        h = hdul[1].header
        assert (h["NAXIS1"], h["NAXIS2"]) == (2136, 2078)
        assert h["CRVAL1P"] == 1 and h["CRVAL2P"] == 1
        data = hdul[1].data
        # collateral columns (1..44, 2093..2136) and rows 2049..2078 carry no sky
        assert abs(np.median(data[:, :44])) < 0.5 and abs(np.median(data[2048:, :])) < 0.5
        assert np.median(data[:2048, 44:2092]) > 50


# -------------------------------------------------------------------------------------------------- HST


def test_hst_names_and_layout(sim_hst):
    assert [p.name for p in sim_hst.files] == hst_image_names(("f435w", "f606w", "f814w"))
    assert sim_hst.files[0].name == "hst_skycell-p0001x05y09_acs_wfc_f435w_drc.fits"
    for path in sim_hst.files:
        with fits.open(path, checksum=True) as hdul:
            assert [h.name for h in hdul] == ["PRIMARY", "SCI", "WHT"]
            p = hdul[0].header
            assert p["FILENAME"] == path.name and p["TELESCOP"] == "HST" and p["INSTRUME"] == "ACS"
            assert p["FILTER"].lower() in path.name
            assert hdul["SCI"].data.dtype.newbyteorder("=") == np.float32 and hdul["SCI"].data.shape == (
                300,
                300,
            )
            assert np.all(hdul["WHT"].data > 0)
            wcs = _wcs(hdul["SCI"].header)
            scales = np.abs(np.diag(wcs.pixel_scale_matrix)) * 3600
            assert np.allclose(scales, 0.04)


def test_hst_skycells_overlap_with_same_orientation(sim_hst):
    from astropy.coordinates import SkyCoord

    h5 = fits.getheader(sim_hst.files[2], "SCI")
    h6 = fits.getheader(sim_hst.files[3], "SCI")
    w5, w6 = _wcs(h5), _wcs(h6)
    assert np.allclose(w5.pixel_scale_matrix, w6.pixel_scale_matrix)
    # the docs' combine example position lies in both skycells
    x5, y5 = w5.world_to_pixel(SkyCoord(211.27128477, 53.66062066, unit="deg"))
    x6, y6 = w6.world_to_pixel(SkyCoord(211.27128477, 53.66062066, unit="deg"))
    for x, y in ((x5, y5), (x6, y6)):
        assert 0 <= x < 300 and 0 <= y < 300
    # x06 corners land inside x05's grid on the left side: a real overlap, shifted along +x only
    cx, cy = w5.all_world2pix(*w6.all_pix2world([0, 0], [0, 299], 0), 0)
    assert 0 < cx[0] < 300 and np.allclose(cx, cx[0]) and np.allclose(cy, [0, 299], atol=1e-6)
    # a bright source in the overlap sits at its truth pixel in both files
    src = sim_hst.truth["sources"]
    cells = sim_hst.truth["skycells"]
    n5, n6 = sim_hst.files[2].name, sim_hst.files[3].name
    xs5, xs6, ys = np.array(cells[n5]["x"]), np.array(cells[n6]["x"]), np.array(cells[n5]["y"])
    flux = np.array(src["flux"]["f606w"])
    both = (xs5 > 5) & (xs5 < 294) & (xs6 > 5) & (xs6 < 294) & (ys > 5) & (ys < 294)
    assert both.any()
    k = np.flatnonzero(both)[np.argmax(flux[both])]
    px, py = w5.all_world2pix(src["ra"][k], src["dec"][k], 0)
    assert abs(px - xs5[k]) < 0.01 and abs(py - ys[k]) < 0.01
    for path, xs in ((sim_hst.files[2], xs5), (sim_hst.files[3], xs6)):
        data = fits.getdata(path, "SCI")
        ix, iy = int(round(xs[k])), int(round(ys[k]))
        box = data[iy - 2 : iy + 3, ix - 2 : ix + 3]
        assert np.unravel_index(np.argmax(box), box.shape) == (2, 2)


def test_hst_pixels_match_truth_within_noise(sim_hst):
    truth = sim_hst.truth
    src, noise = truth["sources"], truth["noise"]
    for path in sim_hst.files[3:5]:  # f606w x06, f814w x05
        cell = truth["skycells"][path.name]
        band = cell["band"]
        sigma = np.hypot(truth["psf_sigma_pix"][band], src["sigma_pix"])
        model = np.zeros(truth["shape"])
        render_gaussians(model, cell["x"], cell["y"], src["flux"][band], sigma)
        with fits.open(path) as hdul:
            data, wht = hdul["SCI"].data.astype(float), hdul["WHT"].data.astype(float)
        expected = np.sqrt((model + noise["sky_e_per_s"]) * wht + noise["read_variance_e2"]) / wht
        z = (data - model) / expected
        assert abs(z.mean()) < 0.05 and 0.95 < z.std() < 1.05


def test_hst_deterministic(tmp_path):
    a = make_hst_images(tmp_path / "a", bands=("f275w",), shape=(40, 48), seed=5)
    b = make_hst_images(tmp_path / "b", bands=("f275w",), shape=(40, 48), seed=5)
    assert a.files[0].name == "hst_skycell-p0001x05y09_wfc3_uvis_f275w_drc.fits"
    assert all(filecmp.cmp(x, y, shallow=False) for x, y in zip(a.files, b.files, strict=True))


# ------------------------------------------------------------------------------------------------ Roman


def test_roman_asdf_structure_and_gwcs(sim_roman):
    import asdf
    import gwcs

    path = sim_roman.files[0]
    assert path.name == roman_asdf_name() == "r0000101001001001001_0001_wfi01_cal.asdf"
    stars = sim_roman.truth["stars"]
    with asdf.open(path) as af:
        roman = af["roman"]
        meta = roman["meta"]
        assert meta["instrument"]["name"] == "WFI" and meta["instrument"]["detector"] == "WFI01"
        assert isinstance(meta["exposure"]["start_time"], Time)
        for key in ("ra_ref", "dec_ref", "x_ref", "y_ref"):
            assert key in meta["wcsinfo"]
        assert roman["data"].dtype == np.float32 and roman["data"].shape == (256, 256)
        assert roman["err"].dtype == np.float32 and np.all(roman["err"][:] > 0)
        assert roman["dq"].dtype == np.uint32 and roman["context"].dtype == np.uint32
        assert roman["context"].shape == (2, 256, 256)
        wcs = meta["wcs"]
        assert isinstance(wcs, gwcs.WCS)
        (x0, x1), (y0, y1) = wcs.bounding_box.bounding_box(order="F")
        assert (x0, x1, y0, y1) == (-0.5, 255.5, -0.5, 255.5)
        ra, dec = meta["wcsinfo"]["ra_ref"], meta["wcsinfo"]["dec_ref"]
        assert np.allclose(wcs(meta["wcsinfo"]["x_ref"], meta["wcsinfo"]["y_ref"]), (ra, dec))
        x, y = wcs.invert(stars["ra"], stars["dec"])
        assert np.max(np.abs(x - stars["x"])) < 1e-6 and np.max(np.abs(y - stars["y"])) < 1e-6
        data = roman["data"][:]
        k = int(np.argmax(stars["flux"]))
        ix, iy = int(round(stars["x"][k])), int(round(stars["y"][k]))
        assert data[iy, ix] > np.median(data) + 50 * np.median(roman["err"][:])


def test_roman_pixels_match_truth_within_noise(sim_roman):
    import asdf

    truth = sim_roman.truth
    s, noise = truth["stars"], truth["noise"]
    model = np.full(truth["shape"], truth["background"])
    render_gaussians(model, s["x"], s["y"], s["flux"], truth["psf_sigma_pix"])
    with asdf.open(sim_roman.files[0]) as af:
        data, err, dq = (np.asarray(af["roman"][k]) for k in ("data", "err", "dq"))
    expected = np.sqrt(model * noise["exposure_s"] + noise["read_noise_e"] ** 2) / noise["exposure_s"]
    assert np.allclose(err, expected, rtol=1e-4)
    z = (data - model) / err
    assert abs(z.mean()) < 0.05 and 0.95 < z.std() < 1.05
    assert np.count_nonzero(dq) == truth["dq_flagged"]


def test_roman_gwcs_has_a_small_distortion():
    from skycut.simulate.images import roman_gwcs

    distorted, plain = roman_gwcs((200, 300)), roman_gwcs((200, 300), distortion=False)
    ra, dec = distorted([149.5, 0, 299, 0], [99.5, 0, 199, 199])
    x, y = plain.invert(ra, dec, with_bounding_box=False)
    shift = np.hypot(x - [149.5, 0, 299, 0], y - [99.5, 0, 199, 199])
    assert shift[0] < 1e-9  # none at the reference pixel (the image centre)
    assert 0.2 < shift[1:].max() < 2.0  # a fraction of a pixel to ~1 px at the corners
    # exact analytic inverse everywhere in the bounding box
    gx, gy = np.meshgrid(np.linspace(0, 299, 13), np.linspace(0, 199, 11))
    bx, by = distorted.invert(*distorted(gx, gy))
    assert np.max(np.abs(bx - gx)) < 1e-6 and np.max(np.abs(by - gy)) < 1e-6


def test_roman_explicit_path_and_determinism(tmp_path):
    a = make_roman_asdf(tmp_path / "a" / "one.asdf", shape=(32, 40), seed=2)
    b = make_roman_asdf(tmp_path / "b" / "one.asdf", shape=(32, 40), seed=2)
    assert a.files == [tmp_path / "a" / "one.asdf"]
    assert (tmp_path / "a" / "one_truth.json").exists()
    import asdf

    assert filecmp.cmp(a.files[0], b.files[0], shallow=False)  # no time stamps anywhere
    with asdf.open(a.files[0]) as fa, asdf.open(b.files[0]) as fb:
        for key in ("data", "err", "dq", "context"):
            assert np.array_equal(fa["roman"][key], fb["roman"][key])


# --------------------------------------------------------------------------------------- demo and names


def test_demo_names_agree_with_what_is_made(tmp_path):
    spec = {
        "seed": 4,
        "tess": {"sector": 11, "camera": 1, "ccd": 1, "n_ffi": 2, "shape": [24, 32]},
        "hst": {"bands": ["f814w"], "shape": [32, 32]},
        "roman": {"shape": [32, 32]},
    }
    expected = demo_file_names(spec, tmp_path)
    made = simulate_demo(spec, tmp_path)
    assert {k: [str(p) for p in v] for k, v in made.items()} == expected
    assert all(p.exists() for paths in made.values() for p in paths)
    for section in ("tess", "hst", "roman"):
        assert list((tmp_path / section).glob("*_truth.json"))
    assert demo_file_names({"tess": None, "hst": {"bands": ["f435w"]}}, tmp_path).keys() == {"hst"}


@pytest.mark.parametrize(
    "call",
    [
        lambda p: make_tess_ffis(p, sector=0, shape=(20, 20)),
        lambda p: make_tess_ffis(p, camera=5, shape=(20, 20)),
        lambda p: make_tess_ffis(p, shape=(3, 20)),
        lambda p: make_tess_ffis(p, shape=(3000, 20)),
        lambda p: make_tess_ffis(p, n_ffi=0, shape=(20, 20)),
        lambda p: make_hst_images(p, bands=("f999w",), shape=(20, 20)),
        lambda p: make_roman_asdf(p, shape="big"),
        lambda p: simulate_demo({"tess": 5}, p),
        lambda p: simulate_demo([1, 2], p),
        lambda p: simulate_demo({"tess": {"sectr": 11}}, p),
        lambda p: simulate_demo({"tes": {}}, p),
        lambda p: simulate_demo({"seed": "x", "roman": {}}, p),
        lambda p: demo_file_names({"hst": {"bands": ["f814w"], "size": 3}}, p),
    ],
)
def test_bad_input_raises_clear_errors(tmp_path, call):
    with pytest.raises(InvalidInputError):
        call(tmp_path)
    assert not list(tmp_path.glob("*.fits"))
