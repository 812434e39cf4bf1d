"""core.coords: the one coordinate and size parser, its single validation rule, and the astropy-free paths."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from skycut.core.coords import (
    CutoutSize,
    parse_coordinates,
    parse_size,
    radec_arrays,
    size_in_pixels,
    size_label,
)
from skycut.exceptions import InvalidInputError

# ------------------------------------------------------------------------------------------------ coordinates


@pytest.mark.parametrize(
    "given, ra, dec",
    [
        ("150.0945 2.38681", [150.0945], [2.38681]),
        ("150.0945, -2.5", [150.0945], [-2.5]),
        ((10, 20), [10.0], [20.0]),
        ([10.5, -89.5], [10.5], [-89.5]),
        (np.array([1.0, 2.0]), [1.0], [2.0]),
        ({"ra": 359.0, "dec": 90.0}, [359.0], [90.0]),
        ({"ra": 1, "dec": -90, "frame": "icrs"}, [1.0], [-90.0]),
        ("360 0", [0.0], [0.0]),  # 360 is taken as 0
        (["10 20", (30, 40), {"ra": 50, "dec": 60}], [10.0, 30.0, 50.0], [20.0, 40.0, 60.0]),
        (np.array([[1.0, 2.0], [3.0, 4.0]]), [1.0, 3.0], [2.0, 4.0]),
    ],
)
def test_decimal_forms(given, ra, dec):
    got_ra, got_dec = radec_arrays(given)
    assert got_ra.dtype == np.float64 and got_dec.dtype == np.float64
    assert got_ra.tolist() == ra and got_dec.tolist() == dec


@pytest.mark.parametrize(
    "given, words",
    [
        ("nan 10", "finite"),
        ("10 inf", "finite"),
        ((float("nan"), 1.0), "finite"),
        ("400 0", "400"),
        ((-1.0, 0.0), "-1.0"),
        ("10 91", "91"),
        ({"ra": 10.0, "dec": -91.0}, "-91"),
        ({"ra": 400.0, "dec": 0.0, "frame": "galactic"}, "400"),
        ([1.0, 2.0, 3.0], "[1.0, 2.0, 3.0]"),
        ((True, 1.0), "True"),
        (True, "True"),
        ([], "empty"),
        ({"ra": 1.0, "decl": 2.0}, "exactly the keys"),
        ("not a place", "cannot parse"),
        ("25:00:00 +10:00:00", "'25:00:00 +10:00:00'"),
        ("25h00m00s +10d00m00s", "'25h00m00s +10d00m00s'"),
        ("10:00:00 +91:00:00", "'10:00:00 +91:00:00'"),
        ("400d 10d", "'400d'"),  # an RA with its own unit: astropy would wrap it to 40
        ({"ra": "400d", "dec": "10d"}, "'400d'"),
    ],
)
def test_refused_coordinates_name_the_value(given, words):
    with pytest.raises(InvalidInputError) as info:
        radec_arrays(given)
    assert words in str(info.value)
    with pytest.raises(InvalidInputError):
        parse_coordinates(given)


def test_invalid_input_error_is_a_value_error():
    with pytest.raises(ValueError):
        radec_arrays("10 95")


@pytest.mark.parametrize(
    "text", ["10:00:22.7 +02:23:12.5", "10h00m22.7s -02d23m12.5s", "23 59 59.9 -89 59 59", "0h0m0s +0d0m0s"]
)
def test_sexagesimal_agrees_with_astropy(text):
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    want = SkyCoord(text, unit=(u.hourangle, u.deg))
    got = parse_coordinates(text)
    assert len(got) == 1 and got.frame.name == "icrs"
    assert got[0].ra.deg == pytest.approx(want.ra.deg, abs=1e-12)
    assert got[0].dec.deg == pytest.approx(want.dec.deg, abs=1e-12)
    ra, dec = radec_arrays(text)
    assert ra[0] == pytest.approx(want.ra.deg, abs=1e-12) and dec[0] == pytest.approx(want.dec.deg, abs=1e-12)


def test_skycoord_and_other_frames_become_icrs():
    from astropy.coordinates import SkyCoord

    gal = SkyCoord(120.0, -30.0, unit="deg", frame="galactic")
    ra, dec = radec_arrays(gal)
    assert ra[0] == pytest.approx(gal.icrs.ra.deg, abs=1e-12) and dec[0] == pytest.approx(
        gal.icrs.dec.deg, abs=1e-12
    )
    ra2, dec2 = radec_arrays({"ra": 120.0, "dec": -30.0, "frame": "galactic"})
    assert ra2[0] == pytest.approx(ra[0], abs=1e-12) and dec2[0] == pytest.approx(dec[0], abs=1e-12)
    both = parse_coordinates([gal, "10 20"])
    assert len(both) == 2 and both[1].ra.deg == 10.0
    with pytest.raises(InvalidInputError, match="finite"):
        radec_arrays(SkyCoord(float("nan"), 0.0, unit="deg"))


def test_parse_coordinates_matches_decimal_arrays():
    sc = parse_coordinates(["10 20", (350.5, -45.25)])
    assert sc.ra.deg.tolist() == [10.0, 350.5] and sc.dec.deg.tolist() == [20.0, -45.25]


# ------------------------------------------------------------------------------------------------------ sizes


@pytest.mark.parametrize(
    "given, x, y, units, label",
    [
        (25, 25.0, 25.0, ("pixel", "pixel"), "25-x-25"),
        (25.0, 25.0, 25.0, ("pixel", "pixel"), "25-x-25"),
        (np.int64(7), 7.0, 7.0, ("pixel", "pixel"), "7-x-7"),
        ([200, 300], 200.0, 300.0, ("pixel", "pixel"), "200-x-300"),
        ("25 pix", 25.0, 25.0, ("pixel", "pixel"), "25pix-x-25pix"),
        ("30 arcsec", 30 / 3600, 30 / 3600, ("deg", "deg"), "30arcsec-x-30arcsec"),
        ("2 arcmin", 2 / 60, 2 / 60, ("deg", "deg"), "2arcmin-x-2arcmin"),
        ("0.1 deg", 0.1, 0.1, ("deg", "deg"), "0.1deg-x-0.1deg"),
        (["1 arcmin", 40], 1 / 60, 40.0, ("deg", "pixel"), "1arcmin-x-40"),
    ],
)
def test_size_forms(given, x, y, units, label):
    size = parse_size(given)
    assert size.x == pytest.approx(x, rel=1e-12) and size.y == pytest.approx(y, rel=1e-12)
    assert size.units == units and size.label == label and size_label(given) == label
    assert parse_size(size) is size  # a CutoutSize is accepted as a cutout size


def test_quantity_sizes_and_labels():
    from astropy import units as u

    size = parse_size(5 * u.arcmin)
    assert size.unit == "deg" and size.x == pytest.approx(5 / 60) and size.label == "5.0arcmin-x-5.0arcmin"
    assert parse_size([10, 20] * u.pix) == CutoutSize(10.0, 20.0, ("pixel", "pixel"), "10.0pix-x-20.0pix")
    with pytest.raises(InvalidInputError, match="pixels or an angular unit"):
        parse_size(3 * u.kg)


@pytest.mark.parametrize(
    "given, words",
    [
        (0, "positive"),
        (-3, "positive"),
        ([10, -3], "positive"),
        (float("nan"), "positive"),
        (float("inf"), "positive"),
        ("0 arcsec", "positive"),
        (True, "True"),
        ([True, 5], "True"),
        ([1, 2, 3], "two values"),
        ([], "two values"),
        ("30 kg", "pixels or an angular"),
        (None, "None"),
    ],
)
def test_refused_sizes(given, words):
    with pytest.raises(InvalidInputError) as info:
        parse_size(given)
    assert words in str(info.value)


def test_fractional_pixels_round_halves_up_and_at_least_one():
    assert parse_size(2.5).pixels() == (3, 3)
    assert parse_size([2.49, 0.2]).pixels() == (2, 1)  # a size that rounds to 0 becomes 1 pixel
    # angular sizes: degrees per pixel along x and y
    assert parse_size("1 arcmin").pixels((1 / 3600, 2 / 3600)) == (60, 30)
    with pytest.raises(InvalidInputError, match="pixel scale"):
        parse_size("1 arcmin").pixels()


def test_max_pixels_limit():
    assert parse_size(100, max_pixels=100).pixels() == (100, 100)
    with pytest.raises(InvalidInputError, match="limit of 100 pixels"):
        parse_size([50, 101], max_pixels=100)
    with pytest.raises(InvalidInputError, match="limit of 100 pixels"):
        parse_size("1 deg").pixels((0.001, 0.001), max_pixels=100)


def test_size_in_pixels_uses_the_wcs_scale():
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cdelt = [-0.1 / 3600, 0.2 / 3600]
    assert size_in_pixels(["3 arcsec", "3 arcsec"], wcs) == (30, 15)
    assert size_in_pixels([7, 9]) == (7, 9)


# ----------------------------------------------------------------------------------------- no astropy import


def test_decimal_paths_import_no_astropy():
    code = """
import sys
from skycut.core.coords import parse_size, radec_arrays
from skycut.pipeline.manifest import validate_manifest
radec_arrays(["10 20", (30.0, 40.0), {"ra": 1.0, "dec": 2.0, "frame": "icrs"}, "359.9, -89.9"])
for s in (25, [200, 300], "30 arcsec", "2 arcmin", "0.1 deg", "25 pix", 2.5):
    parse_size(s).pixels((0.001, 0.001))
m = validate_manifest({"targets": [{"name": "a", "coordinates": "10 20", "size": "30 arcsec"},
                                   {"name": "b", "coordinates": [30, 40]},
                                   {"name": "c", "coordinates": {"ra": 5, "dec": 6}}]})
assert [(t.ra, t.dec) for t in m.targets] == [(10.0, 20.0), (30.0, 40.0), (5.0, 6.0)]
print(sorted(k for k in sys.modules if k.startswith("astropy")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pixel_limit_bounds_every_conversion_inside_the_block():
    from skycut.core.coords import pixel_limit

    size = parse_size("1 deg")  # harmless in degrees, 72,000 pixels at HST's 0.05 arcsec
    scales = (0.05 / 3600, 0.05 / 3600)
    assert size.pixels(scales) == (72000, 72000)
    with pixel_limit(10000):
        with pytest.raises(InvalidInputError, match="limit of 10000"):
            size.pixels(scales)
        assert parse_size(25).pixels() == (25, 25)
        assert size.pixels(scales, max_pixels=100000) == (72000, 72000)  # an explicit bound wins
    assert size.pixels(scales) == (72000, 72000)  # the bound ends with the block


def test_plan_hands_jobs_the_manifest_pixel_limit():
    from skycut.pipeline.manifest import validate_manifest
    from skycut.pipeline.plan import Plan

    manifest = validate_manifest(
        {
            "targets": [{"name": "a", "coordinates": "10 20", "size": "30 arcsec"}],
            "inputs": {"img": {"paths": ["x.fits"], "targets": ["a"]}},
            "limits": {"max_cutout_pixels": 500},
        }
    )
    jobs = Plan(manifest).image_jobs()
    assert [j.max_pixels for j in jobs] == [500]
