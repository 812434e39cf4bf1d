"""TPF light curves measured as lightkurve measures them, against the TESS simulator's truth and lightkurve.

The simulated sky rises by 10% over the FFIs (``background.level`` in the truth): a plain aperture sum rises
with it, the background-subtracted flux of a constant star stays flat within its noise.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skycut.pipeline.jobs.cube_cutouts import measure_light_curve, threshold_mask, tpf_light_curve
from skycut.simulate import make_tess_ffis

N_FFI = 12
SIZE = 11


@pytest.fixture(scope="module")
def tpfs(tmp_path_factory):
    """TPFs (11 x 11) of the variable star and of the bright, isolated constant stars of a 12-FFI simulation."""
    from skycut.tess.cube_batch import cut_cube_targets
    from skycut.tess.cube_factory import CubeFactory

    out = tmp_path_factory.mktemp("lightcurve")
    sim = make_tess_ffis(out / "ffi", sector=11, camera=1, ccd=1, n_ffi=N_FFI, shape=(128, 128), seed=7)
    cube = out / "cube.fits"
    CubeFactory().make_cube([str(f) for f in sim.files], str(cube), verbose=False)
    truth = sim.truth
    stars = {k: np.asarray(truth["stars"][k], dtype=float) for k in ("x", "y", "ra", "dec", "flux", "tmag")}
    var, mov = truth["variable"], truth["moving"]
    rows, cols = truth["shape"]
    constant = []
    for i in np.argsort(stars["tmag"]):
        x, y, flux = stars["x"][i], stars["y"][i], stars["flux"][i]
        if stars["tmag"][i] > 11.5 or not (8 <= x < cols - 8 and 8 <= y < rows - 8):
            continue
        near = np.hypot(stars["x"] - x, stars["y"] - y) < 8
        if (stars["flux"][near] > 0.02 * flux).sum() > 1:
            continue  # another star brighter than 2% of this one within 8 pixels
        if (
            np.hypot(var["x"] - x, var["y"] - y) < 10
            or np.min(np.hypot(np.asarray(mov["x"]) - x, np.asarray(mov["y"]) - y)) < 10
        ):
            continue
        constant.append(int(i))
    assert len(constant) >= 2, "the simulation has too few isolated bright stars"
    targets = [("variable", (var["ra"], var["dec"]))]
    targets += [(f"star{i}", (stars["ra"][i], stars["dec"][i])) for i in constant[:4]]
    result = cut_cube_targets(str(cube), targets, SIZE, output_dir=out)
    assert not result.failed and not result.skipped
    paths = {name: str(files[0]) for name, files in result.written.items()}
    return sim, paths, {f"star{i}": stars["flux"][i] for i in constant[:4]}


def test_threshold_mask_is_lightkurves(tpfs):
    lk = pytest.importorskip("lightkurve")
    _, paths, _ = tpfs
    for path in paths.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tpf = lk.read(path, quality_bitmask="none")
        lc = measure_light_curve(path)
        np.testing.assert_array_equal(lc.aperture, tpf.create_threshold_mask(threshold=3))
        np.testing.assert_array_equal(
            threshold_mask(lc.median_image, 3, None),
            tpf.create_threshold_mask(threshold=3, reference_pixel=None),
        )
        # the flux is lightkurve's aperture sum minus its background estimate on our sky pixels
        sap = tpf.to_lightcurve(aperture_mask=lc.aperture).flux.value
        sky = tpf.estimate_background(aperture_mask=lc.background_pixels).flux.value * lc.aperture.sum()
        np.testing.assert_allclose(lc.flux, sap - sky, rtol=1e-6)
        np.testing.assert_allclose(lc.background, sky, rtol=1e-6)


def test_constant_stars_are_flat_within_their_noise(tpfs):
    sim, paths, fluxes = tpfs
    for name, true_flux in fluxes.items():
        lc = measure_light_curve(paths[name])
        t, f, e = lc.time, lc.flux, lc.flux_err
        # the aperture holds most of the star: the truth's flux within a few per cent (PSF wings outside it)
        assert 0.9 * true_flux < np.median(f) < 1.02 * true_flux, (name, np.median(f), true_flux)
        # scatter consistent with the noise: chi2 per degree of freedom about the mean
        chi2 = np.sum(((f - f.mean()) / e) ** 2) / (len(f) - 1)
        assert 0.2 < chi2 < 3.0, (name, chi2)
        # no trend: the fitted slope is within 4 sigma of zero, and far below the sky's rise
        (slope, _), cov = np.polyfit(t - t.mean(), f, 1, w=1 / e, cov="unscaled")
        assert abs(slope) < 4 * np.sqrt(cov[0, 0]), (name, slope, np.sqrt(cov[0, 0]))
        # the sky did rise (10% of ~80 e-/s per pixel over the span): the plain sum would not be flat
        sky_rise = lc.background[-1] - lc.background[0]
        assert sky_rise > 10 * np.std(f - np.polyval([slope, f.mean()], t - t.mean()))
        level = np.asarray(sim.truth["background"]["level"])
        assert sky_rise == pytest.approx((level[-1] - level[0]) * lc.aperture.sum(), rel=0.2)


def test_variable_star_amplitude_matches_the_truth(tpfs):
    sim, paths, _ = tpfs
    var = sim.truth["variable"]
    expected = np.asarray(var["flux"])
    time, flux, _ = tpf_light_curve(paths["variable"])
    assert len(flux) == N_FFI
    # the aperture keeps a constant fraction of the star's light: flux = k * truth
    k = np.sum(flux * expected) / np.sum(expected**2)
    assert 0.9 < k <= 1.02
    np.testing.assert_allclose(flux, k * expected, rtol=2e-3)
    # the relative variation (peak to peak over the mean) is the truth's within 2% of itself
    measured = np.ptp(flux) / np.mean(flux)
    true = np.ptp(expected) / np.mean(expected)
    assert measured == pytest.approx(true, rel=0.02)
    assert np.all(np.diff(time) > 0)


def test_threshold_mask_picks_the_region_at_the_centre():
    image = np.zeros((9, 9))
    image[4, 4] = image[4, 5] = 100.0  # the target, at the centre
    image[0, 0] = 500.0  # a brighter star in the corner
    image += np.random.default_rng(1).normal(0, 1, image.shape)
    mask = threshold_mask(image, 3)
    assert mask.sum() == 2 and mask[4, 4] and mask[4, 5]
    everything = threshold_mask(image, 3, reference_pixel=None)
    assert everything.sum() == 3 and everything[0, 0]
    assert not threshold_mask(np.full((3, 3), np.nan)).any()
