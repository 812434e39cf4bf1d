"""Tests of Roman ASDF cutouts (skycut.image.asdf_cutout, skycut.image.asdf_wcs, skycut.image.asdf_io).

Expectations are derived independently of the implementation: from the simulator's truth (star pixel
positions), from the input file read back with plain ``asdf``, from the input gwcs, or from astrocut 1.4.0 run
on the same input (file names).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import asdf
import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import http_server, s3_server  # noqa: F401  (pytest fixtures)

from skycut import ASDFCutout, asdf_cut, get_center_pixel
from skycut.exceptions import DataWarning, InvalidInputError, InvalidQueryError
from skycut.image.asdf_cutout import read_asdf_metadata
from skycut.image.asdf_wcs import slice_gwcs

SCALE_DEG = 0.11 / 3600.0


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------


def distorted_gwcs(shape, center=(30.0, 45.0), scale_arcsec=0.11, roll_deg=30.0, dist=2e-5):
    """A gwcs with a quadratic distortion and NO analytic inverse (gwcs must fall back to a numerical one)."""
    from astropy import coordinates
    from astropy.modeling import models as m
    from gwcs import coordinate_frames as cf
    from gwcs import wcs as gw

    ny, nx = shape
    shift = m.Shift(-(nx - 1) / 2) & m.Shift(-(ny - 1) / 2)
    px = m.Polynomial2D(2, c1_0=1.0, c2_0=dist, c0_2=-dist / 2)
    py = m.Polynomial2D(2, c0_1=1.0, c1_1=dist, c0_2=dist / 3)
    poly = m.Mapping((0, 1, 0, 1)) | (px & py)
    th = np.radians(roll_deg)
    mat = scale_arcsec / 3600 * np.array([[-np.cos(th), np.sin(th)], [np.sin(th), np.cos(th)]])
    sky = m.Pix2Sky_TAN() | m.RotateNative2Celestial(center[0], center[1], 180.0)
    det = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    icrs = cf.CelestialFrame(reference_frame=coordinates.ICRS(), name="icrs", unit=(u.deg, u.deg))
    w = gw.WCS([(det, shift | poly | m.AffineTransformation2D(matrix=mat) | sky), (icrs, None)])
    w.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    return w


def write_roman_like(path, shape=(40, 50), gwcs_obj=None, data_dtype=np.float32, extra=None, wcsinfo=None):
    """A small plain-asdf Roman-like image whose pixel values encode their position: data[y, x] = 1000 y + x."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    data = (1000 * yy + xx).astype(data_dtype)
    roman = {
        "meta": {
            "wcs": gwcs_obj if gwcs_obj is not None else distorted_gwcs(shape),
            "instrument": {"name": "WFI", "detector": "WFI02"},
            "wcsinfo": wcsinfo or {"s_region": "?", "ra_ref": 30.0, "dec_ref": 45.0},
        },
        "data": data,
        "err": (data.astype(np.float32) / 10),
        "dq": (yy * 7 + xx).astype(np.uint32) + 1,
        "context": np.stack([data.astype(np.uint32), data.astype(np.uint32) + 5]),
        "amp33": np.ones(
            (2, ny, 4), dtype=np.uint16
        ),  # not image-shaped -> dropped in full mode (plain dict)
    }
    roman.update(extra or {})
    asdf.AsdfFile({"roman": roman}).write_to(path)
    return Path(path)


def sky(gwcs_obj, x, y):
    ra, dec = gwcs_obj(np.asarray(x, float), np.asarray(y, float), with_bounding_box=False)
    return np.asarray(ra), np.asarray(dec)


def star(sim, i):
    """Truth of star ``i`` of the simulated Roman image: (x, y, SkyCoord)."""
    s = sim.truth["stars"]
    return s["x"][i], s["y"][i], SkyCoord(s["ra"][i], s["dec"][i], unit="deg")


def inner_star(sim, margin=20):
    """Index of a star well inside the image."""
    ny, nx = sim.truth["shape"]
    s = sim.truth["stars"]
    for i, (x, y) in enumerate(zip(s["x"], s["y"], strict=True)):
        if margin < x < nx - margin and margin < y < ny - margin:
            return i
    raise AssertionError("no inner star")


@pytest.fixture(scope="module")
def roman_file(sim_roman):
    return sim_roman.files[0]


@pytest.fixture(scope="module")
def original(roman_file):
    with asdf.open(roman_file, lazy_load=False) as af:
        r = af["roman"]
        yield {k: np.array(r[k]) for k in ("data", "err", "dq", "context")} | {
            "wcs": r["meta"]["wcs"],
            "meta": r["meta"],
        }


# ----------------------------------------------------------------------------------------------------------
# geometry: shapes, orientation, the sliced gwcs
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [[9, 5], [5, 9], 7, [12, 6]])
def test_shape_values_and_sliced_gwcs(sim_roman, roman_file, original, size):
    i = inner_star(sim_roman)
    x, y, coord = star(sim_roman, i)
    c = ASDFCutout(roman_file, coord, cutout_size=size)
    nx, ny = (size, size) if isinstance(size, int) else size
    cut = c.cutouts[0]
    assert cut.data.shape == (ny, nx)
    # the target pixel lies inside the cutout: for odd sizes the middle pixel, else one of the middle two
    xmin, ymin = cut.xmin_original, cut.ymin_original
    assert xmin - 0.5 <= x - (nx - 1) / 2 <= xmin + 0.5
    assert ymin - 0.5 <= y - (ny - 1) / 2 <= ymin + 0.5
    np.testing.assert_array_equal(cut.data, original["data"][ymin : ymin + ny, xmin : xmin + nx])

    sliced = c.asdf_cutouts[0]["roman"]["meta"]["wcs"]
    assert sliced.array_shape == (ny, nx)
    assert sliced.pixel_shape == (nx, ny)
    (bx0, bx1), (by0, by1) = sliced.bounding_box.bounding_box(order="F")
    assert (bx0, bx1, by0, by1) == (0, nx - 1, 0, ny - 1)
    # every cutout pixel (corners included) has the sky position of the matching original pixel
    yy, xx = np.mgrid[0:ny, 0:nx]
    ra_c, dec_c = sky(sliced, xx, yy)
    ra_o, dec_o = sky(original["wcs"], xx + xmin, yy + ymin)
    np.testing.assert_allclose(ra_c, ra_o, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dec_c, dec_o, rtol=0, atol=1e-10)
    # and the target maps back to its truth pixel in cutout coordinates
    px, py = sliced.invert(coord.ra.deg, coord.dec.deg, with_bounding_box=False)
    assert px == pytest.approx(x - xmin, abs=1e-6)
    assert py == pytest.approx(y - ymin, abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    xmin=st.integers(-30, 60),
    ymin=st.integers(-30, 60),
    nx=st.integers(1, 40),
    ny=st.integers(1, 40),
    fx=st.floats(0, 1),
    fy=st.floats(0, 1),
)
def test_slice_gwcs_property(xmin, ymin, nx, ny, fx, fy):
    """For any box, sliced(x, y) == original(x + xmin, y + ymin), and the bounding box is (x, y) ordered."""
    gw = distorted_gwcs((40, 50))
    sliced = slice_gwcs(gw, np.array([[xmin, xmin + nx], [ymin, ymin + ny]]))
    x, y = fx * (nx - 1), fy * (ny - 1)
    np.testing.assert_allclose(sky(sliced, x, y), sky(gw, x + xmin, y + ymin), rtol=0, atol=1e-10)
    assert sliced.array_shape == (ny, nx) and sliced.pixel_shape == (nx, ny)
    (bx0, bx1), (by0, by1) = sliced.bounding_box.bounding_box(order="F")
    assert (bx0, bx1, by0, by1) == (0, nx - 1, 0, ny - 1)
    # inside the box the bounding box lets the pixel through
    assert np.all(np.isfinite(sliced(x, y)))


def test_get_center_pixel_matches_truth(sim_roman, original):
    x, y, coord = star(sim_roman, inner_star(sim_roman))
    px, py = get_center_pixel(original["wcs"], coord.ra.deg, coord.dec.deg)
    assert (px, py) == (pytest.approx(x, abs=1e-6), pytest.approx(y, abs=1e-6))


def test_gwcs_without_inverse_and_distortion(tmp_path):
    """gwcs 1.0.3's numerical inverse fails on this model; skycut must still find the pixel and slice right."""
    gw = distorted_gwcs((40, 50))
    path = write_roman_like(tmp_path / "dist.asdf", gwcs_obj=gw)
    ra, dec = sky(gw, 31.0, 17.0)
    x, y = get_center_pixel(gw, float(ra), float(dec))
    assert (x, y) == (pytest.approx(31.0, abs=1e-6), pytest.approx(17.0, abs=1e-6))
    c = ASDFCutout(path, SkyCoord(ra, dec, unit="deg"), cutout_size=[7, 3])
    cut = c.cutouts[0]
    assert cut.data[1, 3] == 1000 * 17 + 31  # the pixel value encodes (x, y)
    sliced = c.asdf_cutouts[0]["roman"]["meta"]["wcs"]
    np.testing.assert_allclose(
        sky(sliced, [0, 6, 0, 6], [0, 0, 2, 2]),
        sky(gw, [28, 34, 28, 34], [16, 16, 18, 18]),
        rtol=0,
        atol=1e-10,
    )


def test_angular_size_uses_local_pixel_scale(sim_roman, roman_file):
    _, _, coord = star(sim_roman, inner_star(sim_roman))
    c = ASDFCutout(roman_file, coord, cutout_size=[11 * 0.11, 5 * 0.11] * u.arcsec)
    assert c.cutouts[0].data.shape == (5, 11)


# ----------------------------------------------------------------------------------------------------------
# full and lite content
# ----------------------------------------------------------------------------------------------------------


def test_full_mode_arrays_and_metadata(sim_roman, roman_file, original):
    x, y, coord = star(sim_roman, inner_star(sim_roman))
    c = ASDFCutout(roman_file, coord, cutout_size=[9, 5])  # lite=False is the documented default
    af = c.asdf_cutouts[0]
    r = af["roman"]
    cut = c.cutouts[0]
    xmin, ymin = cut.xmin_original, cut.ymin_original
    win = (slice(ymin, ymin + 5), slice(xmin, xmin + 9))
    assert set(r) == {"meta", "data", "err", "dq", "context"}
    np.testing.assert_array_equal(r["err"], original["err"][win])
    np.testing.assert_array_equal(r["dq"], original["dq"][win])
    assert r["dq"].dtype == np.uint32
    np.testing.assert_array_equal(r["context"], original["context"][(slice(None), *win)])
    assert r["context"].shape == (2, 5, 9)

    meta, meta_in = r["meta"], original["meta"]
    assert meta["instrument"] == meta_in["instrument"]
    assert meta["exposure"]["exposure_time"] == meta_in["exposure"]["exposure_time"]
    assert meta["orig_file"] == str(roman_file)
    assert meta["coordinate"] == coord.to_string(precision=8)
    info = meta["wcsinfo"]
    assert info["x_ref"] == pytest.approx(meta_in["wcsinfo"]["x_ref"] - xmin)
    assert info["y_ref"] == pytest.approx(meta_in["wcsinfo"]["y_ref"] - ymin)
    assert info["ra_ref"] == meta_in["wcsinfo"]["ra_ref"]
    assert info["pixel_scale"] * 3600 == pytest.approx(sim_roman.truth["pixel_scale_arcsec"], rel=1e-3)
    # the reference pixel still maps to ra_ref/dec_ref through the sliced gwcs
    ra_ref, dec_ref = sky(meta["wcs"], info["x_ref"], info["y_ref"])
    assert float(ra_ref) == pytest.approx(info["ra_ref"], abs=1e-9)
    assert float(dec_ref) == pytest.approx(info["dec_ref"], abs=1e-9)
    # s_region: 4 corners, each within ~1 pixel of the cutout's corner pixel centres
    words = info["s_region"].split()
    assert words[:2] == ["POLYGON", "ICRS"] and len(words) == 10
    corners = SkyCoord(np.array(words[2::2], float), np.array(words[3::2], float), unit="deg")
    ra_o, dec_o = sky(original["wcs"], [xmin, xmin + 8, xmin + 8, xmin], [ymin, ymin, ymin + 4, ymin + 4])
    sep = corners.separation(SkyCoord(ra_o, dec_o, unit="deg")).deg / SCALE_DEG
    assert np.all(sep < 1.0)
    # the input file is untouched: its wcsinfo has no s_region
    assert "s_region" not in meta_in["wcsinfo"]


@pytest.mark.parametrize("order", ["xy", "yx"])
def test_wcsinfo_centre_quantities(tmp_path, order):
    """L3-style wcsinfo entries describe the cutout centre; image_shape keeps the input's axis order."""
    gw = distorted_gwcs((40, 50), roll_deg=30.0)
    info = {
        "s_region": "?",
        "ra": 0.0,
        "dec": 0.0,
        "pixel_scale": 0.0,
        "orientation": 0.0,
        "x_ref": 24.5,
        "y_ref": 19.5,
        "image_shape": [50, 40] if order == "xy" else [40, 50],
    }
    path = write_roman_like(tmp_path / "l3.asdf", gwcs_obj=gw, wcsinfo=info)
    ra, dec = sky(gw, 24.0, 20.0)  # pixel (24, 20): centre of a 9 x 5 box
    c = ASDFCutout(path, SkyCoord(ra, dec, unit="deg"), cutout_size=[9, 5])
    out = c.asdf_cutouts[0]["roman"]["meta"]["wcsinfo"]
    assert out["image_shape"] == ([9, 5] if order == "xy" else [5, 9])
    assert (out["x_ref"], out["y_ref"]) == (pytest.approx(24.5 - 20), pytest.approx(19.5 - 18))
    assert out["ra"] == pytest.approx(float(ra), abs=1e-10) and out["dec"] == pytest.approx(
        float(dec), abs=1e-10
    )
    assert out["pixel_scale"] == pytest.approx(SCALE_DEG, rel=2e-3)
    assert out["orientation"] == pytest.approx(30.0, abs=0.05)  # the detector's roll: +y is 30 deg E of N


def test_lite_mode_content(sim_roman, roman_file, original):
    _, _, coord = star(sim_roman, inner_star(sim_roman))
    c = ASDFCutout(roman_file, coord, cutout_size=7, lite=True)
    r = c.asdf_cutouts[0]["roman"]
    assert set(r) == {"meta", "data"}
    assert set(r["meta"]) == {"wcs", "orig_file", "coordinate"}
    assert r["data"].shape == (7, 7) and r["data"].dtype == original["data"].dtype


def test_full_mode_drops_non_image_arrays_of_plain_trees(tmp_path):
    path = write_roman_like(tmp_path / "plain.asdf")
    gw = distorted_gwcs((40, 50))
    c = ASDFCutout(path, SkyCoord(*sky(gw, 20, 20), unit="deg"), cutout_size=5)
    assert "amp33" not in c.asdf_cutouts[0]["roman"]
    assert c.asdf_cutouts[0]["roman"]["meta"]["instrument"]["detector"] == "WFI02"


# ----------------------------------------------------------------------------------------------------------
# padding and integer fill
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fill", "int_fill"), [(np.nan, 0), (-3.0, 0), (7, 7)])
def test_padding_partly_off_image(tmp_path, fill, int_fill):
    gw = distorted_gwcs((40, 50))
    path = write_roman_like(tmp_path / "edge.asdf", gwcs_obj=gw)
    coord = SkyCoord(*sky(gw, 1.0, 0.0), unit="deg")  # pixel (1, 0): 2 columns, 3 rows missing
    c = ASDFCutout(path, coord, cutout_size=[7, 7], fill_value=fill)
    r = c.asdf_cutouts[0]["roman"]
    data, dq, ctx = r["data"], r["dq"], r["context"]
    assert data.shape == (7, 7)
    on = (slice(3, 7), slice(2, 7))
    yy, xx = np.mgrid[0:4, 0:5]
    np.testing.assert_array_equal(data[on], 1000 * yy + xx)
    pad = np.ones((7, 7), bool)
    pad[on] = False
    if np.isnan(fill):
        assert np.all(np.isnan(data[pad]))
    else:
        assert np.all(data[pad] == fill)
    assert dq.dtype == np.uint32 and ctx.dtype == np.uint32  # integer arrays stay integer
    assert np.all(dq[pad] == int_fill) and np.all(ctx[:, pad] == int_fill)
    np.testing.assert_array_equal(dq[on], yy * 7 + xx + 1)
    # the sliced gwcs extends over the padding consistently, and so does the FITS WCS
    sliced = r["meta"]["wcs"]
    np.testing.assert_allclose(sky(sliced, 0, 0), sky(gw, -2, -3), rtol=0, atol=1e-10)
    fits_corner = WCS(c.fits_cutouts[0]["CUTOUT"].header).pixel_to_world(0, 0)
    assert fits_corner.separation(SkyCoord(*sky(gw, -2, -3), unit="deg")).deg < 0.15 * SCALE_DEG


def test_integer_science_data_gets_integer_fill(tmp_path):
    gw = distorted_gwcs((40, 50))
    path = write_roman_like(tmp_path / "int.asdf", gwcs_obj=gw, data_dtype=np.int32)
    c = ASDFCutout(path, SkyCoord(*sky(gw, 0.0, 20.0), unit="deg"), cutout_size=5)
    data = c.cutouts[0].data
    assert data.dtype == np.int32
    assert np.all(data[:, :2] == 0) and data[2, 2] == 20 * 1000


# ----------------------------------------------------------------------------------------------------------
# several coordinates, selectors, warnings and errors
# ----------------------------------------------------------------------------------------------------------


def test_several_coordinates_and_selectors(sim_roman, roman_file, tmp_path):
    s = sim_roman.truth["stars"]
    ny, nx = sim_roman.truth["shape"]
    inner = [i for i in range(len(s["x"])) if 10 < s["x"][i] < nx - 10 and 10 < s["y"][i] < ny - 10][:2]
    coords = [star(sim_roman, i)[2] for i in inner]
    far = SkyCoord(s["ra"][0] + 1.0, s["dec"][0], unit="deg")  # 1 degree away: off the image
    with pytest.warns(DataWarning, match="does not overlap|outside"):
        c = ASDFCutout([roman_file], [*coords, far], cutout_size=5)
    keys = [co.to_string(precision=8) for co in coords]
    by_file = c.cutouts_by_file[str(roman_file)]
    assert by_file.keys() == keys
    assert len(c.cutouts) == 2 and len(c.asdf_cutouts) == 2 and len(c.fits_cutouts) == 2
    for key, (i, cut) in zip(keys, enumerate(by_file), strict=True):
        assert by_file[key] is cut
        x, y, _ = star(sim_roman, inner[i])
        assert cut.xmin_original == round(x) - 2 and cut.ymin_original == round(y) - 2
    t = c.get_cutouts(coordinates=coords[1])
    assert len(t) == 1 and t["coordinate"][0].separation(coords[1]).arcsec < 1e-6
    assert list(c.iter_file_coord_pairs(input_files=[roman_file])) == [(str(roman_file), k) for k in keys]
    with pytest.raises(InvalidInputError, match="not coordinates"):
        c.get_asdf_cutouts(coordinates="10 10")
    with pytest.raises(InvalidInputError, match="not inputs"):
        c.get_fits_cutouts(input_files=tmp_path / "other.asdf")
    # table-style access of the result lists (astrocut 1.4.0 returns tables)
    assert c.cutouts["file"] == [str(roman_file)] * 2
    assert len(c.asdf_cutouts.to_table()) == 2


def test_nothing_left_raises_naming_file_and_coordinate(roman_file):
    with pytest.warns(DataWarning), pytest.raises(InvalidQueryError) as err:
        ASDFCutout(roman_file, "10.0 -60.0", cutout_size=5)
    assert Path(roman_file).name in str(err.value) and "10.00000000 -60.00000000" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_bad_inputs_name_the_file(tmp_path):
    missing = tmp_path / "missing.asdf"
    with pytest.raises(InvalidInputError, match="missing.asdf"):
        ASDFCutout(missing, "30 45")
    text = tmp_path / "notasdf.asdf"
    text.write_text("hello, I am not ASDF\n")
    with pytest.raises(InvalidInputError, match="notasdf.asdf"):
        ASDFCutout(text, "30 45")
    noroman = tmp_path / "noroman.asdf"
    asdf.AsdfFile({"data": np.zeros((3, 3))}).write_to(noroman)
    with pytest.raises(InvalidInputError, match="noroman.asdf.*roman"):
        ASDFCutout(noroman, "30 45")
    nowcs = tmp_path / "nowcs.asdf"
    asdf.AsdfFile({"roman": {"meta": {"wcs": None}, "data": np.zeros((3, 3))}}).write_to(nowcs)
    with pytest.raises(InvalidInputError, match="nowcs.asdf.*gwcs"):
        ASDFCutout(nowcs, "30 45")
    good = write_roman_like(tmp_path / "good.asdf")
    with pytest.raises(InvalidInputError, match="fill_value"):
        ASDFCutout(good, "30 45", fill_value="zero")
    with pytest.raises(InvalidInputError, match="output_format"):
        asdf_cut(good, 30.0, 45.0, output_format=".png", output_dir=tmp_path)


# ----------------------------------------------------------------------------------------------------------
# files: names, ASDF, FITS, zip
# ----------------------------------------------------------------------------------------------------------


def test_file_names_match_astrocut(sim_roman, roman_file, tmp_path):
    astrocut = pytest.importorskip("astrocut")
    _, _, coord = star(sim_roman, inner_star(sim_roman))
    for lite in (False, True):
        for size in (7, [9, 5], [12, 6]):
            ours = ASDFCutout(roman_file, coord, cutout_size=size, lite=lite)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = astrocut.ASDFCutout([str(roman_file)], coord, cutout_size=size, lite=lite)
                their_asdf = theirs.write_as_asdf(tmp_path / "astrocut")
                their_fits = theirs.write_as_fits(tmp_path / "astrocut")
            assert [Path(p).name for p in ours.write_as_asdf(tmp_path / "skycut")] == [
                Path(p).name for p in their_asdf
            ]
            assert [Path(p).name for p in ours.write_as_fits(tmp_path / "skycut")] == [
                Path(p).name for p in their_fits
            ]
            # same pixels for the same request
            np.testing.assert_array_equal(ours.cutouts[0].data, np.asarray(theirs.cutouts["cutout"][0].data))
    assert not list((tmp_path / "skycut").glob("*.part"))


def test_written_asdf_opens_and_round_trips(sim_roman, roman_file, tmp_path):
    _, _, coord = star(sim_roman, inner_star(sim_roman))
    c = ASDFCutout(roman_file, coord, cutout_size=[9, 5])
    (path,) = c.write_as_asdf(tmp_path)
    with asdf.open(path) as af:
        r = af["roman"]
        np.testing.assert_array_equal(r["data"], c.cutouts[0].data)
        assert r["context"].shape == (2, 5, 9)
        assert r["meta"]["filename"] == Path(path).name
        entry = af["history"]["entries"][-1]
        assert entry["description"].startswith("Cutout of size (5, 9) at sky coordinates (")
        assert entry["software"]["name"] == "skycut"
        np.testing.assert_allclose(
            sky(r["meta"]["wcs"], [0, 8], [0, 4]),
            sky(c.asdf_cutouts[0]["roman"]["meta"]["wcs"], [0, 8], [0, 4]),
            atol=1e-12,
        )


@pytest.mark.parametrize("distorted", [False, True])
def test_fits_variant_layout_wcs_and_metadata(sim_roman, roman_file, tmp_path, distorted):
    if distorted:
        gw = distorted_gwcs((60, 70), dist=4e-5)
        src = write_roman_like(tmp_path / "dist.asdf", shape=(60, 70), gwcs_obj=gw)
        coord = SkyCoord(*sky(gw, 55.0, 12.0), unit="deg")
    else:
        src = roman_file
        coord = star(sim_roman, inner_star(sim_roman))[2]
    c = ASDFCutout(src, coord, cutout_size=[15, 9])
    (path,) = c.write_as_fits(tmp_path)
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "CUTOUT", "ASDF"]
        p = hdul[0].header
        for k in ("ORIGIN", "DATE", "PROCVER"):
            assert k in p
        assert p["RA_OBJ"] == pytest.approx(coord.ra.deg) and p["DEC_OBJ"] == pytest.approx(coord.dec.deg)
        h = hdul[1].header
        assert (h["NAXIS1"], h["NAXIS2"]) == (15, 9)
        assert h["ORIG_FLE"] == str(src)
        np.testing.assert_array_equal(hdul[1].data, c.cutouts[0].data)
        # FITS approximation vs the sliced gwcs: corners and centre within 0.15 pixel
        sliced = c.asdf_cutouts[0]["roman"]["meta"]["wcs"]
        w = WCS(h)
        xs, ys = np.array([0, 14, 0, 14, 7]), np.array([0, 0, 8, 8, 4])
        fits_sky = w.pixel_to_world(xs, ys)
        gw_sky = SkyCoord(*sky(sliced, xs, ys), unit="deg")
        assert np.max(fits_sky.separation(gw_sky).deg) < 0.15 * SCALE_DEG
        # the metadata tree round-trips (no arrays in it)
        with read_asdf_metadata(hdul) as meta_af:
            assert set(meta_af["roman"]) == {"meta"}
            m = meta_af["roman"]["meta"]
            assert m["coordinate"] == coord.to_string(precision=8)
            np.testing.assert_allclose(sky(m["wcs"], xs, ys), sky(sliced, xs, ys), rtol=0, atol=1e-12)
            if not distorted:
                assert m["instrument"]["optical_element"] == "F158"


def test_zip_and_functional_api(sim_roman, roman_file, tmp_path):
    import zipfile

    _, _, coord = star(sim_roman, inner_star(sim_roman))
    c = ASDFCutout(roman_file, coord, cutout_size=5)
    names = [Path(p).name for p in c.write_as_asdf(tmp_path / "a")]
    z = c.write_as_zip(tmp_path, output_format="fits")
    assert Path(z).name == "astrocut_fits_cutouts.zip"
    with zipfile.ZipFile(z) as zf:
        assert zf.namelist() == [n.replace(".asdf", ".fits") for n in names]
    z2 = c.write_as_zip(tmp_path, filename="mine")
    with zipfile.ZipFile(z2) as zf:
        assert Path(z2).name == "mine.zip" and zf.namelist() == names

    paths = asdf_cut(
        roman_file,
        coord.ra.deg,
        coord.dec.deg,
        cutout_size=5,
        output_dir=tmp_path / "f",
        output_format="fits",
    )
    assert [Path(p).name for p in paths] == [n.replace(".asdf", ".fits") for n in names]
    table = asdf_cut(roman_file, coord.ra.deg, coord.dec.deg, cutout_size=5, write_file=False)
    np.testing.assert_array_equal(table["cutout"][0].data, c.cutouts[0].data)
    with pytest.warns(DeprecationWarning):
        asdf_cut(roman_file, coord.ra.deg, coord.dec.deg, output_file="x.fits", output_dir=tmp_path / "g")


# ----------------------------------------------------------------------------------------------------------
# roman_datamodels
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", ["ImageModel", "MosaicModel"])
def test_full_cutout_of_tagged_roman_model_opens_with_roman_datamodels(tmp_path, model_name):
    rdm = pytest.importorskip("roman_datamodels.datamodels")
    model_class = getattr(rdm, model_name)
    model = model_class.create_fake_data(shape=(48, 64))
    model.meta.wcs.bounding_box = ((-0.5, 63.5), (-0.5, 47.5))
    model.data[...] = np.arange(48 * 64, dtype=np.float32).reshape(48, 64)
    model.err[...] = 3
    src = tmp_path / "fake_cal.asdf"
    model.save(src)
    gw = model.meta.wcs
    coord = SkyCoord(*sky(gw, 20.0, 30.0), unit="deg")

    c = ASDFCutout(src, coord, cutout_size=[11, 7])
    (path,) = c.write_as_asdf(tmp_path / "out")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. no FilenameMismatchWarning: meta.filename was updated
        out = rdm.open(path)
    with out:
        assert isinstance(out, model_class)
        assert out.data.shape == (7, 11)
        np.testing.assert_array_equal(out.data, model.data[27:34, 15:26])
        assert out.err.shape == (7, 11) and np.all(out.err == 3)
        np.testing.assert_allclose(
            sky(out.meta.wcs, [0, 10], [0, 6]), sky(gw, [15, 25], [27, 33]), atol=1e-12
        )
        out.validate()
        info = out.meta.wcsinfo
        assert info.s_region.startswith("POLYGON ICRS ")
        if "x_ref" in info:  # L3: placeholders stay placeholders, centre values are set
            assert info["x_ref"] == model.meta.wcsinfo["x_ref"] == -999999
            assert list(info["image_shape"]) == [11, 7]
            assert info["ra"] == pytest.approx(coord.ra.deg, abs=1e-9)
    # the lite variant is a plain tree that asdf opens
    (lite,) = ASDFCutout(src, coord, cutout_size=[11, 7], lite=True).write_as_asdf(tmp_path / "out")
    with asdf.open(lite) as af:
        assert af["roman"]["data"].shape == (7, 11)


# ----------------------------------------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------------------------------------


def test_images_and_png_metadata(sim_roman, roman_file, tmp_path):
    from PIL import Image

    from skycut.image.render import read_image_metadata

    _, _, coord = star(sim_roman, inner_star(sim_roman))
    c = ASDFCutout(roman_file, coord, cutout_size=[9, 5])
    t = c.get_image_cutouts(stretch="linear")
    img = t["cutout"][0]
    assert img.size == (9, 5) and img.mode == "L"
    # linear stretch on [0.5, 99.5] percent: the brightest pixel (the star) is white
    assert np.asarray(img).max() == 255
    assert len(c.image_cutouts) == 1
    ((f, co, im),) = list(c.iter_image_cutouts(stretch="log", invert=True))
    assert f == str(roman_file) and co.separation(coord).arcsec < 1e-6 and im.size == (9, 5)
    (path,) = c.write_as_img(output_format="png", output_dir=tmp_path, stretch="sqrt")
    assert (
        Path(path).name
        == Path(c._output_name(str(roman_file), coord, "png", lite=False)).name.replace(".png", "") + ".png"
    )
    with Image.open(path) as im:
        assert im.size == (9, 5)
    meta = read_image_metadata(path)
    assert meta["input_file"] == str(roman_file)
    assert int(meta["cutout_size_x_pix"]) == 9 and int(meta["cutout_size_y_pix"]) == 5
    assert float(meta["pixel_scale_arcsec_per_pix"]) == pytest.approx(0.11, rel=1e-3)
    assert float(meta["center_ra_deg"]) == pytest.approx(coord.ra.deg)


def test_colour_image_from_three_files(sim_roman, roman_file, tmp_path):
    files = []
    for band in ("r", "g", "b"):
        files.append(tmp_path / f"band_{band}.asdf")
        shutil.copy(roman_file, files[-1])
    _, _, coord = star(sim_roman, inner_star(sim_roman))
    c = ASDFCutout(files, coord, cutout_size=[9, 5])
    (path,) = c.write_as_img(colorize=True, output_format=".png", output_dir=tmp_path, cutout_prefix="rgb")
    assert Path(path).name.startswith("rgb_") and Path(path).name.endswith("_9-x-5_astrocut.png")
    from PIL import Image

    with Image.open(path) as im:
        assert im.mode == "RGB" and im.size == (9, 5)
        rgb = np.asarray(im)
    t = c.get_image_cutouts(colorize=True)
    assert len(t) == 1 and t["file"][0] == ", ".join(str(f) for f in files)
    # identical inputs give a grey image
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    with pytest.warns(DataWarning, match="three"):
        t = ASDFCutout(files[:2], coord, cutout_size=5).get_image_cutouts(colorize=True)
    assert len(t) == 0


# ----------------------------------------------------------------------------------------------------------
# remote inputs (loopback servers)
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_roman(tmp_path_factory):
    """A 512 x 512 uncompressed Roman-like file (~5 MB of arrays) and its gwcs."""
    gw = distorted_gwcs((512, 512), dist=1e-7)
    path = write_roman_like(tmp_path_factory.mktemp("big") / "big_cal.asdf", shape=(512, 512), gwcs_obj=gw)
    return path, gw


@pytest.mark.parametrize("lite", [True, False])
def test_remote_s3_reads_only_needed_rows(s3_server, big_roman, lite):  # noqa: F811
    path, gw = big_roman
    uri = s3_server.upload(path)
    coord = SkyCoord(*sky(gw, 300.0, 400.0), unit="deg")
    local = ASDFCutout(path, coord, cutout_size=25, lite=lite)
    s3_server.log.reset()
    remote = ASDFCutout(uri, coord, cutout_size=25, lite=lite, fsspec_kwargs=s3_server.fsspec_kwargs)
    assert s3_server.log.bytes_sent < path.stat().st_size / 5
    r_loc, r_rem = local.asdf_cutouts[0]["roman"], remote.asdf_cutouts[0]["roman"]
    assert set(r_loc) == set(r_rem)
    for name in set(r_loc) - {"meta"}:
        np.testing.assert_array_equal(r_rem[name], r_loc[name])
    assert r_rem["data"][12, 12] == 400 * 1000 + 300
    assert remote.cutouts_by_file[uri][0].shape == (25, 25)
    assert remote.asdf_cutouts[0]["roman"]["meta"]["orig_file"] == uri
    # explicit credentials (key/secret) instead of fsspec_kwargs ones
    opts = dict(s3_server.fsspec_kwargs)
    creds = ASDFCutout(
        uri,
        coord,
        cutout_size=25,
        lite=lite,
        key=opts.pop("key"),
        secret=opts.pop("secret"),
        fsspec_kwargs=opts,
    )
    np.testing.assert_array_equal(creds.cutouts[0].data, local.cutouts[0].data)


def test_remote_https_range_reads_and_missing_url(http_server, big_roman, tmp_path):  # noqa: F811
    path, gw = big_roman
    url = http_server.add(path)
    coord = SkyCoord(*sky(gw, 10.0, 500.0), unit="deg")
    http_server.log.reset()
    c = ASDFCutout(url, coord, cutout_size=[9, 5], lite=True)
    assert http_server.log.bytes_sent < path.stat().st_size / 10
    assert c.cutouts[0].data[2, 4] == 500 * 1000 + 10
    (out,) = c.write_as_asdf(tmp_path)
    assert Path(out).name.startswith("big_cal_") and Path(out).name.endswith("_9-x-5_lite_astrocut.asdf")
    with pytest.raises(InvalidInputError, match="missing_cal.asdf"):
        ASDFCutout(http_server.url("missing_cal.asdf"), coord)


def test_remote_https_with_s3_options_and_clear_errors(http_server, big_roman):  # noqa: F811
    """S3 options (``anon``, ``endpoint_url``) given with an https:// ASDF input are ignored for it; a missing
    URL's error names the URL and the cause."""
    path, gw = big_roman
    url = http_server.add(path)
    coord = SkyCoord(*sky(gw, 100.0, 200.0), unit="deg")
    options = {"anon": True, "endpoint_url": "http://127.0.0.1:9"}
    remote = ASDFCutout(url, coord, cutout_size=11, fsspec_kwargs=options)
    np.testing.assert_array_equal(
        remote.cutouts[0].data, ASDFCutout(path, coord, cutout_size=11).cutouts[0].data
    )
    with pytest.raises(InvalidInputError, match=r"missing_cal\.asdf.*not found"):
        ASDFCutout(http_server.url("missing_cal.asdf"), coord, fsspec_kwargs=options)


def test_documentation_example_runs(sim_roman, roman_file, tmp_path, monkeypatch, capsys):
    """The astrocut documentation's ASDF example, with ``import skycut as astrocut``."""
    import skycut as astrocut

    monkeypatch.chdir(tmp_path)
    center_coord = star(sim_roman, inner_star(sim_roman))[2]
    asdf_cutout = astrocut.ASDFCutout(input_files=[str(roman_file)], coordinates=center_coord, cutout_size=25)
    asdf_cutout.asdf_cutouts[0].info()
    assert "roman" in capsys.readouterr().out
    cutout_fits = asdf_cutout.fits_cutouts[0]
    assert [h.name for h in cutout_fits] == ["PRIMARY", "CUTOUT", "ASDF"]
    assert cutout_fits[1].data.shape == (25, 25)
    path = asdf_cutout.write_as_asdf()
    with asdf.open(path[0]) as af:
        assert af["roman"]["data"].shape == (25, 25)
    path = asdf_cutout.write_as_fits()
    with fits.open(path[0]) as hdul:
        assert (hdul[1].header["NAXIS1"], hdul[1].header["NAXIS2"]) == (25, 25)
    assert Path(path[0]).parent == Path(".")
    lite = astrocut.ASDFCutout(
        input_files=[str(roman_file)], coordinates=center_coord, cutout_size=25, lite=True
    )
    tree = lite.asdf_cutouts[0].tree["roman"]
    assert set(tree["meta"]) >= {"wcs"} and tree["data"].shape == (25, 25)
    assert isinstance(asdf_cutout.cutouts_by_file[str(roman_file)][0].data, np.ndarray)


def _write_lz4(src, dst, chunk_bytes):
    """Rewrite ``src`` with lz4-compressed blocks of ``chunk_bytes`` uncompressed bytes per chunk."""
    with asdf.open(src, lazy_load=False) as af:
        tree = {"roman": {k: (np.array(v) if k != "meta" else v) for k, v in af["roman"].items()}}
        asdf.AsdfFile(tree).write_to(
            dst, all_array_compression="lz4", compression_kwargs={"compression_block_size": chunk_bytes}
        )
    return Path(dst)


@pytest.mark.parametrize(("x", "y"), [(17.0, 11.0), (1.0, 38.0), (48.0, 0.0)])
def test_lz4_compressed_blocks_read_by_chunks(tmp_path, x, y):
    """Chunk-wise lz4 reading gives exactly what asdf's whole-block read gives (padding included)."""
    gw = distorted_gwcs((40, 50))
    plain = write_roman_like(tmp_path / "plain.asdf", gwcs_obj=gw)
    packed = _write_lz4(plain, tmp_path / "lz4.asdf", chunk_bytes=1000)  # 250 float32 per chunk: many chunks
    with asdf.open(packed) as af:
        blk = af["roman"]["data"]._data_callback(_attr="header")
        assert bytes(blk["compression"]).startswith(b"lz4")
    coord = SkyCoord(*sky(gw, x, y), unit="deg")
    a = ASDFCutout(plain, coord, cutout_size=[9, 7], fill_value=-1)
    b = ASDFCutout(packed, coord, cutout_size=[9, 7], fill_value=-1)
    ra, rb = a.asdf_cutouts[0]["roman"], b.asdf_cutouts[0]["roman"]
    assert set(ra) == set(rb)
    for name in set(ra) - {"meta"}:
        np.testing.assert_array_equal(rb[name], ra[name])
        assert rb[name].dtype == ra[name].dtype


def test_remote_lz4_fetches_only_needed_chunks(http_server, big_roman, tmp_path):  # noqa: F811
    path, gw = big_roman
    packed = _write_lz4(path, tmp_path / "big_lz4_cal.asdf", chunk_bytes=1 << 16)
    url = http_server.add(packed)
    coord = SkyCoord(*sky(gw, 200.0, 300.0), unit="deg")
    http_server.log.reset()
    c = ASDFCutout(url, coord, cutout_size=15)
    assert http_server.log.bytes_sent < packed.stat().st_size / 5
    yy, xx = np.mgrid[293:308, 193:208]
    np.testing.assert_array_equal(c.cutouts[0].data, 1000 * yy + xx)
    np.testing.assert_array_equal(c.asdf_cutouts[0]["roman"]["context"][1], 1000 * yy + xx + 5)


def test_all_nan_region_is_skipped_even_with_finite_fill(tmp_path):
    gw = distorted_gwcs((40, 50))
    data = np.full((40, 50), np.nan, dtype=np.float32)
    data[30:, 40:] = 1.0  # only the top-right corner has data
    path = write_roman_like(tmp_path / "nan.asdf", gwcs_obj=gw, extra={"data": data})
    empty = SkyCoord(*sky(gw, 5.0, 5.0), unit="deg")
    full = SkyCoord(*sky(gw, 45.0, 35.0), unit="deg")
    with pytest.warns(DataWarning, match="no data"):
        c = ASDFCutout(path, [empty, full], cutout_size=5, fill_value=0.0)
    assert c.cutouts["coordinate"][0].separation(full).arcsec < 1e-6 and len(c.cutouts) == 1
    with pytest.warns(DataWarning), pytest.raises(InvalidQueryError, match="nan.asdf"):
        ASDFCutout(path, empty, cutout_size=5, fill_value=0.0)
