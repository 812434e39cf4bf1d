"""Tests of skycut.image.combine: mean/median/custom combiners, header combination, loading quirks, output."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from skycut.core.fits_headers import combine_headers
from skycut.exceptions import DataWarning, InvalidInputError
from skycut.image.combine import (
    CutoutsCombiner,
    build_default_combine_function,
    build_median_combine_function,
    combine_cutouts,
    resolve_combiner,
)


def _wcs(nx: int = 12, ny: int = 8) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    w.wcs.cdelt = [-0.1 / 3600, 0.1 / 3600]
    return w


def _cutout_hdulist(
    data: np.ndarray, *, extra: dict | None = None, in_primary: bool = False, ra_obj: bool = True
) -> fits.HDUList:
    """An astrocut-like cutout file (empty primary + CUTOUT) or a file whose primary holds the image."""
    ny, nx = data.shape
    header = _wcs(nx, ny).to_header()
    header["EXTNAME"] = "CUTOUT"
    for key, value in (extra or {}).items():
        header[key] = value
    if in_primary:
        return fits.HDUList([fits.PrimaryHDU(data=data, header=header)])
    primary = fits.PrimaryHDU()
    if ra_obj:
        primary.header["RA_OBJ"] = 150.0
        primary.header["DEC_OBJ"] = 2.0
    return fits.HDUList([primary, fits.ImageHDU(data=data, header=header)])


@pytest.fixture
def images():
    """Three non-square float32 images (ny=8, nx=12) with different NaN holes and one all-NaN column."""
    rng = np.random.default_rng(3)
    imgs = [rng.normal(10 * (i + 1), 1, size=(8, 12)).astype(np.float32) for i in range(3)]
    imgs[0][0:3, 0:4] = np.nan
    imgs[1][2:5, 3:6] = np.nan
    imgs[2][5:, 8:] = np.nan
    for im in imgs:
        im[:, 11] = np.nan
    return imgs


def test_mean_matches_nanmean(images):
    out = build_default_combine_function(images)(images)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmean(np.stack(images).astype(np.float64), axis=0)
    assert out.shape == (8, 12)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6, equal_nan=True)
    assert np.isnan(out[:, 11]).all()  # no input has data there
    assert np.isfinite(out[:, :11]).all()


def test_median_matches_nanmedian(images):
    out = build_median_combine_function(images)([fits.ImageHDU(im) for im in images])  # HDUs accepted too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(np.stack(images).astype(np.float64), axis=0)
    np.testing.assert_allclose(out, expected, rtol=1e-6, equal_nan=True)


def test_no_data_value_other_than_nan():
    a = np.array([[0, 4], [6, 0]], dtype=np.int32)
    b = np.array([[2, 0], [8, 0]], dtype=np.int32)
    out = build_default_combine_function([a, b], no_data_val=0)([a, b])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[2.0, 4.0], [7.0, 0.0]])


def test_mean_uses_the_images_combined_not_the_template(images):
    """astrocut fixes the weights from the template; a mean must follow the NaNs of the images combined."""
    template = [np.ones((8, 12))] * 3
    func = build_default_combine_function(template)
    out = func(images)
    assert np.isfinite(out[0, 0])
    np.testing.assert_allclose(out[0, 0], (images[1][0, 0] + images[2][0, 0]) / 2, rtol=1e-6)
    with pytest.raises(InvalidInputError, match="built for 3"):
        func(images[:2])


def test_resolve_combiner():
    assert resolve_combiner("mean") is build_default_combine_function
    assert resolve_combiner("MEDIAN") is build_median_combine_function
    assert (
        resolve_combiner("skycut.image.combine:build_median_combine_function")
        is build_median_combine_function
    )
    with pytest.raises(InvalidInputError, match="nosuchmodule"):
        resolve_combiner("nosuchmodule.sub:f")
    with pytest.raises(InvalidInputError, match="no attribute"):
        resolve_combiner("skycut.image.combine:nothing_here")
    with pytest.raises(InvalidInputError, match="unknown combiner"):
        resolve_combiner("mode")
    with pytest.raises(ValueError):
        resolve_combiner(3)


def test_combine_headers_constant_and_varying():
    h1 = fits.Header(
        [("A", 1, "same"), ("B", "x", "differs"), ("ONLY1", 5, "first only"), ("CHECKSUM", "zz")]
    )
    h2 = fits.Header([("A", 1, "same"), ("B", "y", "differs")])
    out = combine_headers([h1, h2])
    assert out["A"] == 1
    assert "B" not in out and "CHECKSUM" not in out
    assert (out["F01_K01"], out["F01_V01"], out["F01_C01"]) == ("B", "x", "differs")
    assert (out["F02_K01"], out["F02_V01"]) == ("B", "y")
    assert (out["F01_K02"], out["F01_V02"]) == ("ONLY1", 5)
    assert "F02_K02" not in out  # the second header has no ONLY1
    only = combine_headers([h1, h2], constant_only=True)
    assert list(only.keys()) == ["A"]
    # different celestial WCS: warned (a physical-WCS difference such as CRVAL1P is not)
    with pytest.warns(DataWarning, match="CRVAL1"):
        combine_headers([fits.Header([("CRVAL1", 10.0)]), fits.Header([("CRVAL1", 10.5)])])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        combine_headers([fits.Header([("CRVAL1P", 1.0)]), fits.Header([("CRVAL1P", 201.0)])])


def test_combiner_in_memory_files_and_headers(images, tmp_path):
    names = []
    for i, im in enumerate(images):
        hdul = _cutout_hdulist(im, extra={"ORIG_FLE": f"image_{i}.fits", "FILTER": "F275W"})
        names.append(tmp_path / f"cut_{i}.fits")
        hdul.writeto(names[-1])
    combined = CutoutsCombiner([str(n) for n in names]).combine(memory_only=True)
    assert isinstance(combined, fits.HDUList)
    assert len(combined) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(
            combined[1].data, np.nanmean(np.stack(images), axis=0), rtol=1e-6, equal_nan=True
        )
    hdr = combined[1].header
    assert hdr["EXTNAME"] == "CUTOUT" and hdr["FILTER"] == "F275W"
    assert [hdr[f"F0{i + 1}_V01"] for i in range(3)] == ["image_0.fits", "image_1.fits", "image_2.fits"]
    assert WCS(hdr).wcs.crval[0] == pytest.approx(150.0)
    assert combined[0].header["RA_OBJ"] == pytest.approx(150.0)
    assert combined[0].header["NCOMBINE"] == 3


def test_write_file_and_custom_combiner(images, tmp_path):
    hduls = [_cutout_hdulist(im) for im in images]
    out = tmp_path / "sub" / "combined.fits"

    def builder(template, no_data):
        def maximum(arrays):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmax(np.stack(arrays), axis=0)

        return maximum

    cc = CutoutsCombiner()
    cc.load(hduls)  # fits_list=None, then load: works (astrocut crashes in the constructor)
    cc.build_img_combiner(builder, [cc.input_hdulists[0], np.nan])
    result = cc.combine(out)
    assert result == str(out)
    assert not list(out.parent.glob(".*.part"))
    with fits.open(out, checksum=True) as hdul:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanmax(np.stack(images), axis=0)
        np.testing.assert_array_equal(hdul[1].data, expected)
        assert "CHECKSUM" in hdul[1].header


def test_image_in_primary_and_string_combiner(images):
    hduls = [_cutout_hdulist(im, in_primary=True) for im in images]
    combined = CutoutsCombiner(hduls, img_combiner="median").combine(memory_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(
            combined[1].data, np.nanmedian(np.stack(images), axis=0), rtol=1e-6, equal_nan=True
        )
    # no RA_OBJ: the centre comes from the image WCS
    assert combined[0].header["RA_OBJ"] == pytest.approx(150.0, abs=1e-4)


def test_files_are_closed(images, tmp_path):
    psutil = pytest.importorskip("psutil")
    names = []
    for i, im in enumerate(images):
        names.append(str(tmp_path / f"c{i}.fits"))
        _cutout_hdulist(im).writeto(names[-1])
    CutoutsCombiner(names).combine(tmp_path / "out.fits")
    open_files = {f.path for f in psutil.Process().open_files()}
    assert not open_files.intersection(names)


def test_bad_inputs_name_the_file(images, tmp_path):
    small = _cutout_hdulist(images[0][:4, :6])
    small.writeto(tmp_path / "small.fits")
    _cutout_hdulist(images[1]).writeto(tmp_path / "big.fits")
    with pytest.raises(InvalidInputError, match="small.fits"):
        CutoutsCombiner([str(tmp_path / "big.fits"), str(tmp_path / "small.fits")])
    (tmp_path / "junk.fits").write_text("not fits")
    with pytest.raises(InvalidInputError, match="junk.fits"):
        CutoutsCombiner([str(tmp_path / "junk.fits")])
    with pytest.raises(InvalidInputError, match="extension 5"):
        CutoutsCombiner([str(tmp_path / "big.fits")], exts=[5])
    with pytest.raises(InvalidInputError, match="no cutouts loaded"):
        CutoutsCombiner().combine(memory_only=True)


def test_explicit_exts_selects_named_extensions(images):
    hduls = []
    for im in images:
        h = _cutout_hdulist(im)
        h.append(fits.ImageHDU(data=np.ones_like(im), name="WHT"))
        hduls.append(h)
    all_exts = CutoutsCombiner(hduls).combine(memory_only=True)
    assert len(all_exts) == 3
    np.testing.assert_array_equal(all_exts[2].data, np.ones((8, 12)))
    only_wht = CutoutsCombiner(hduls, exts=["WHT"]).combine(memory_only=True)
    assert len(only_wht) == 2 and only_wht[1].header["EXTNAME"] == "WHT"


def test_combine_cutouts_helper(images, tmp_path):
    hduls = [_cutout_hdulist(im) for im in images]
    path = combine_cutouts(
        hduls, tmp_path / "c.fits", combiner="skycut.image.combine:build_median_combine_function"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(
            fits.getdata(path, 1), np.nanmedian(np.stack(images), axis=0), rtol=1e-6, equal_nan=True
        )


def _write_overlapping_images(tmp_path):
    """Two 60x40 images on one TAN grid, each with data on a different part (like two HAP skycells)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [211.27, 53.66]
    w.wcs.crpix = [30.5, 20.5]
    w.wcs.cdelt = [-0.04 / 3600, 0.04 / 3600]
    yy, xx = np.mgrid[0:40, 0:60]
    files = []
    for i, cols in enumerate((slice(0, 35), slice(25, 60))):
        data = np.full((40, 60), np.nan, dtype=np.float32)
        data[:, cols] = (xx + 100 * yy + 1000 * i).astype(np.float32)[:, cols]
        files.append(tmp_path / f"skycell_{i}.fits")
        primary = fits.PrimaryHDU()
        primary.header["FILENAME"] = files[-1].name
        hdul = fits.HDUList([primary, fits.ImageHDU(data=data, header=w.to_header(), name="SCI")])
        hdul.writeto(files[-1])
    return files, w


def test_astrocut_made_inputs(tmp_path):
    """Cutouts written by astrocut 1.4.0's fits_cut combine as the docs describe (mean where data exist)."""
    astrocut = pytest.importorskip("astrocut")
    files, w = _write_overlapping_images(tmp_path)
    center = w.pixel_to_world(29.5, 19.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cuts = [
            astrocut.fits_cut(
                str(f), center, [30, 20], extension="all", cutout_prefix=f"cut{i}", output_dir=str(tmp_path)
            )
            for i, f in enumerate(files)
        ]
    combined = CutoutsCombiner(cuts).combine(tmp_path / "combined_cut.fits")
    with fits.open(combined) as out, fits.open(cuts[0]) as c0, fits.open(cuts[1]) as c1:
        a, b = c0[1].data, c1[1].data
        assert out[1].data.shape == a.shape == (20, 30)
        both = np.isfinite(a) & np.isfinite(b)
        assert (
            both.any()
            and (np.isfinite(a) & ~np.isfinite(b)).any()
            and (np.isfinite(b) & ~np.isfinite(a)).any()
        )
        np.testing.assert_allclose(out[1].data[both], (a[both] + b[both]) / 2)
        np.testing.assert_array_equal(
            out[1].data[np.isfinite(a) & ~np.isfinite(b)], a[np.isfinite(a) & ~np.isfinite(b)]
        )
        assert np.isfinite(out[1].data).all()
        coord = SkyCoord(out[0].header["RA_OBJ"], out[0].header["DEC_OBJ"], unit="deg")
        assert coord.separation(center) < 0.001 * u.arcsec
        assert out[1].header["EXTNAME"] == "CUTOUT"
        # ORIG_FLE differs between the inputs and is recorded
        recorded = {out[1].header[k] for k in out[1].header if k.startswith("F0") and "_V" in k}
        assert {"skycell_0.fits", "skycell_1.fits"} <= {str(v).split("/")[-1] for v in recorded}


def test_simulated_skycells_with_skycut_fits_cut(sim_hst, tmp_path):
    """The docs' example on the simulator's two overlapping skycells (f435w), cut by skycut's fits_cut: a
    cutout wider than the overlap is half padding in each input, and the combination has no hole."""
    import skycut as astrocut

    center = SkyCoord(*sim_hst.truth["center"], unit="deg")
    size = [sim_hst.truth["overlap_pix"] + 60, 40]
    f1, f2 = [f for f in sim_hst.files if "f435w" in f.name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cut1 = astrocut.fits_cut(
            str(f1), center, size, extension="all", cutout_prefix="cutout_p05", output_dir=str(tmp_path)
        )
        cut2 = astrocut.fits_cut(
            str(f2), center, size, extension="all", cutout_prefix="cutout_p06", memory_only=True
        )[0]
    combined = astrocut.CutoutsCombiner([cut1, cut2]).combine(tmp_path / "combined_cut.fits")
    with fits.open(combined) as out, fits.open(cut1) as c1:
        assert len(out) == len(c1) == 3  # SCI and WHT cutouts combined
        for k in (1, 2):
            a, b, got = c1[k].data, cut2[k].data, out[k].data
            assert got.shape == (40, size[0])
            only_a, only_b, both = (
                np.isfinite(a) & ~np.isfinite(b),
                np.isfinite(b) & ~np.isfinite(a),
                np.isfinite(a) & np.isfinite(b),
            )
            assert only_a.any() and only_b.any() and both.any()
            assert np.isfinite(got).all()
            np.testing.assert_allclose(got[both], (a[both] + b[both]) / 2, rtol=1e-6)
            np.testing.assert_array_equal(got[only_a], a[only_a])
            np.testing.assert_array_equal(got[only_b], b[only_b])


def test_scaled_integer_images_combine_physical_values(tmp_path):
    """BSCALE/BZERO-scaled int16 images are combined in physical units and written as floats."""
    names = []
    for i, phys in enumerate((np.full((4, 6), 110.0), np.full((4, 6), 130.0))):
        hdu = fits.ImageHDU(data=phys.astype(np.float32), name="SCI")
        hdu.scale("int16", bscale=2.0, bzero=10.0)
        names.append(tmp_path / f"s{i}.fits")
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(names[-1])
    with pytest.warns(DataWarning, match="no RA_OBJ"):  # no centre anywhere: said so, not (0, 0)
        out = CutoutsCombiner([str(n) for n in names]).combine(tmp_path / "c.fits")
    with fits.open(out) as hdul:
        np.testing.assert_allclose(hdul[1].data, 120.0)
        assert "BZERO" not in hdul[1].header
        assert "RA_OBJ" not in hdul[0].header
