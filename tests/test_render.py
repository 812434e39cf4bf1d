"""Rendering: golden 8-bit outputs computed independently with numpy formulas, PIL images and metadata."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from skycut.exceptions import InputWarning, InvalidInputError
from skycut.image.render import normalize_img, read_image_metadata, save_image, to_pil_images

# A known array: a ramp with a NaN, a negative value and an outlier.
ARR = np.array([[np.nan, -2.0, 0.0, 1.0, 2.0], [3.0, 4.0, 5.0, 6.0, 7.0], [8.0, 9.0, 10.0, 11.0, 40.0]])

# The stretch formulas (astropy.visualization defaults), written out independently.
FORMULAS = {
    "linear": lambda v: v,
    "sqrt": np.sqrt,
    "log": lambda v: np.log(1000.0 * v + 1.0) / np.log(1001.0),
    "asinh": lambda v: np.arcsinh(v / 0.1) / np.arcsinh(1.0 / 0.1),
    "sinh": lambda v: np.sinh(v * 3.0) / np.sinh(3.0),
}


def expected(arr, stretch, vmin, vmax, invert=False):
    v = np.clip((arr - vmin) / (vmax - vmin), 0.0, 1.0)
    out = np.floor(FORMULAS[stretch](v) * 255.0)
    out[~np.isfinite(arr)] = 0
    out = out.astype(np.uint8)
    return (255 - out).astype(np.uint8) if invert else out


@pytest.mark.parametrize("stretch", sorted(FORMULAS))
def test_each_stretch_minmax(stretch):
    got = normalize_img(ARR, stretch=stretch)
    assert got.dtype == np.uint8 and got.shape == ARR.shape
    np.testing.assert_array_equal(got, expected(ARR, stretch, -2.0, 40.0))
    assert got[0, 0] == 0  # NaN
    assert got[0, 1] == 0 and got[2, 4] == 255


@pytest.mark.parametrize("stretch", sorted(FORMULAS))
def test_each_stretch_manual_interval_and_invert(stretch):
    got = normalize_img(ARR, stretch=stretch, minmax_value=[1.0, 9.0], invert=True)
    np.testing.assert_array_equal(got, expected(ARR, stretch, 1.0, 9.0, invert=True))
    assert got[2, 4] == 0  # clipped to the top, inverted
    assert got[0, 1] == 255  # clipped to the bottom, inverted


@pytest.mark.parametrize("stretch", sorted(FORMULAS))
def test_each_stretch_percent_interval(stretch):
    finite = ARR[np.isfinite(ARR)]
    # linear-interpolated percentiles of 14 sorted values, computed by hand
    srt = np.sort(finite)

    def pct(q):
        pos = q / 100.0 * (srt.size - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, srt.size - 1)
        return srt[lo] + (srt[hi] - srt[lo]) * (pos - lo)

    got = normalize_img(ARR, stretch=stretch, minmax_percent=[10, 90])
    np.testing.assert_array_equal(got, expected(ARR, stretch, pct(10), pct(90)))


def test_interval_is_applied_before_stretch():
    # With interval first, the sqrt of a mid-range value is sqrt(0.5), whatever the data offset.
    arr = np.array([[100.0, 150.0, 200.0]])
    got = normalize_img(arr, stretch="sqrt")
    assert got[0, 1] == int(np.sqrt(0.5) * 255)


def test_bad_options():
    with pytest.raises(InvalidInputError, match="only one of minmax_percent and minmax_value"):
        normalize_img(ARR, minmax_percent=[1, 99], minmax_value=[0, 1])
    with pytest.raises(InvalidInputError, match="stretch 'gamma'"):
        normalize_img(ARR, stretch="gamma")
    with pytest.raises(InvalidInputError, match="empty"):
        normalize_img(np.zeros((0, 3)))
    with pytest.raises(InvalidInputError, match="minmax_value"):
        normalize_img(ARR, minmax_value=[5, 1])


def test_all_nan_and_constant_images_render_black():
    assert not normalize_img(np.full((3, 3), np.nan)).any()
    assert not normalize_img(np.full((3, 3), 7.0)).any()


def test_pil_image_size_orientation_and_metadata():
    arr = np.zeros((4, 6))
    arr[0, :] = 10.0  # bottom row of the sky image (FITS row 1)
    meta = {"input_file": "a.fits", "center_ra_deg": 1.0}
    (img,) = to_pil_images([arr], [meta], stretch="linear", minmax_value=[0, 10])
    assert img.mode == "L" and img.size == (6, 4)
    pix = np.asarray(img)
    assert (pix[-1] == 255).all() and (pix[:-1] == 0).all()  # flipped: bottom row shown at the bottom
    assert img.info["input_file"] == "a.fits"
    (unflipped,) = to_pil_images([arr], stretch="linear", minmax_value=[0, 10], flip_orientation=False)
    assert (np.asarray(unflipped)[0] == 255).all()


def test_default_interval_is_half_to_99_and_a_half_percent():
    arr = np.arange(1000.0).reshape(25, 40)
    (img,) = to_pil_images([arr], stretch="linear", flip_orientation=False)
    lo, hi = np.percentile(arr, [0.5, 99.5])
    np.testing.assert_array_equal(np.asarray(img), expected(arr, "linear", lo, hi))


def test_colorize_three_channels():
    r, g, b = (np.arange(12.0).reshape(3, 4) * k for k in (1, 2, -1))
    (img,) = to_pil_images(
        [r, g, b],
        [{"input_file": n} for n in "rgb"],
        stretch="linear",
        minmax_percent=[0, 100],
        colorize=True,
        flip_orientation=False,
    )
    assert img.mode == "RGB" and img.size == (4, 3)
    pix = np.asarray(img)
    for channel, arr in enumerate((r, g, b)):
        np.testing.assert_array_equal(pix[..., channel], expected(arr, "linear", arr.min(), arr.max()))
    assert img.info["input_file"] == ["r", "g", "b"]


def test_colorize_count_rules():
    arrs = [np.random.default_rng(i).normal(size=(5, 5)) for i in range(4)]
    with pytest.warns(InputWarning, match="first three"):
        imgs = to_pil_images(arrs, colorize=True)
    assert len(imgs) == 1 and imgs[0].mode == "RGB"
    with pytest.raises(InvalidInputError, match="three"):
        to_pil_images(arrs[:2], colorize=True)


def test_save_png_text_chunks(tmp_path):
    meta = {
        "input_file": "x.fits",
        "cutout_size_x_pix": 6,
        "cutout_size_y_pix": 4,
        "pixel_scale_arcsec_per_pix": 0.04,
        "center_ra_deg": 10.5,
        "center_dec_deg": -3.25,
        "origin": "skycut",
        "version": "0",
    }
    (img,) = to_pil_images([np.arange(24.0).reshape(4, 6)], [meta])
    path = save_image(img, tmp_path / "a.png", "png")
    assert path == tmp_path / "a.png"
    with Image.open(path) as back:
        assert back.format == "PNG" and back.size == (6, 4)
        assert back.text["input_file"] == "x.fits"
        assert float(back.text["center_dec_deg"]) == -3.25
    assert read_image_metadata(path)["cutout_size_x_pix"] == "6"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary left


def test_save_jpeg_exif_json(tmp_path):
    meta = {"input_file": "x.fits", "center_ra_deg": 10.5}
    (img,) = to_pil_images([np.arange(24.0).reshape(4, 6)], [meta])
    path = save_image(img, tmp_path / "b", ".jpg")
    assert path.name == "b.jpg"
    with Image.open(path) as back:
        assert back.format == "JPEG"
        assert json.loads(back.getexif()[270]) == meta
    assert read_image_metadata(path) == meta


def test_save_unknown_format(tmp_path):
    (img,) = to_pil_images([np.ones((2, 2))])
    with pytest.raises(InvalidInputError, match="output_format"):
        save_image(img, tmp_path / "c.xyz", "xyz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not list(tmp_path.iterdir())


def _sky_pixels(truth: dict, name: str, shape: tuple[int, int], radius: float = 8.0) -> np.ndarray:
    """Pixels of the skycell file ``name`` farther than ``radius`` from every simulated source (the truth)."""
    cell = truth["skycells"][name]
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    sky = np.ones(shape, dtype=bool)
    for x, y in zip(cell["x"], cell["y"], strict=True):
        if -radius <= x < shape[1] + radius and -radius <= y < shape[0] + radius:
            sky &= (xx - x) ** 2 + (yy - y) ** 2 > radius**2
    return sky


@pytest.mark.parametrize("stretch", ["asinh", "linear", "sqrt"])
def test_neutral_sky_colour_composite_has_a_grey_sky(sim_hst, stretch):
    """The demo's colour set (f814w, f606w, f435w as R, G, B): the sky pixels' medians agree within 3%."""
    from astropy.io import fits

    from skycut.image.render import neutral_sky_limits

    by_band = {f.name.split("_")[-2]: f for f in sim_hst.files if "x05y09" in f.name}
    arrays = [fits.getdata(by_band[band], "SCI").astype(float) for band in ("f814w", "f606w", "f435w")]
    sky = _sky_pixels(sim_hst.truth, by_band["f606w"].name, arrays[0].shape)
    assert sky.mean() > 0.3  # a sparse field: most pixels are sky

    (img,) = to_pil_images(arrays, colorize=True, stretch=stretch, neutral_sky=True, flip_orientation=False)
    medians = np.median(np.asarray(img, dtype=float)[sky], axis=0)
    assert medians.min() > 5  # the sky is not clipped to black
    # within 3%, or one 8-bit level where the sky is that dark (the linear stretch puts it near 19 of 255)
    assert medians.max() - medians.min() <= max(0.03 * medians.mean(), 1.0), medians

    # the limits: the sky (the truth's sky in e-/s over each band's weight) maps to the same level everywhere
    limits = neutral_sky_limits(arrays)
    levels = [(np.median(a[sky]) - lo) / (hi - lo) for a, (lo, hi) in zip(arrays, limits, strict=True)]
    assert max(levels) - min(levels) < 0.01, levels
    # each channel's white point is its own 99.5th percentile: the stars keep their colours
    for a, (_, hi) in zip(arrays, limits, strict=True):
        assert hi == pytest.approx(np.percentile(a, 99.5))


def test_neutral_sky_is_opt_in_and_minmax_value_is_shared():
    rng = np.random.default_rng(3)
    arrays = [rng.normal(level, 1.0, (40, 40)) for level in (10.0, 50.0, 90.0)]
    for a in arrays:
        a[20, 20] += 500.0
    (astrocut,) = to_pil_images(arrays, colorize=True, stretch="linear", flip_orientation=False)
    for channel, a in enumerate(arrays):  # default: astrocut's per-channel percentiles
        np.testing.assert_array_equal(
            np.asarray(astrocut)[..., channel], normalize_img(a, stretch="linear", minmax_percent=[0.5, 99.5])
        )
    (manual,) = to_pil_images(
        arrays,
        colorize=True,
        stretch="linear",
        minmax_value=[0, 100],
        neutral_sky=True,
        flip_orientation=False,
    )
    for channel, a in enumerate(arrays):  # explicit values apply to the three channels as given
        np.testing.assert_array_equal(
            np.asarray(manual)[..., channel], normalize_img(a, stretch="linear", minmax_value=[0, 100])
        )
    (neutral,) = to_pil_images(
        arrays, colorize=True, stretch="linear", neutral_sky=True, flip_orientation=False
    )
    medians = np.median(np.asarray(neutral, dtype=float).reshape(-1, 3), axis=0)
    assert medians.max() - medians.min() <= 1, medians


def test_sky_level_clips_sources():
    from skycut.image.render import sky_level

    rng = np.random.default_rng(0)
    arr = rng.normal(100.0, 2.0, (100, 100))
    arr[::7, ::7] += 1000.0  # 2% bright pixels
    arr[0, 0] = np.nan
    median, std = sky_level(arr)
    assert median == pytest.approx(100.0, abs=0.1) and std == pytest.approx(2.0, rel=0.05)
    assert all(np.isnan(v) for v in sky_level(np.full((2, 2), np.nan)))
