"""Target pixel files of one (cube, target batch), their light curves, and a light-curve plot and mean image each.

The light curves are measured as lightkurve measures them.

The cube-cutout job is numpy-only for decimal targets: it hands the library the targets' resolved ICRS
``(ra, dec)`` floats, so neither it nor :func:`~skycut.tess.cube_batch.cut_cube_targets` loads
``astropy.coordinates``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.batch import BatchResult
from ..names import object_name, slugify, tic_id
from ..options import fill, fsspec_kwargs
from .index import finish, read_index

if TYPE_CHECKING:  # pragma: no cover
    from ..sections import CubeCutoutSpec
    from ..targets import Target

log = logging.getLogger(__name__)


def cut_cube(cube: str, targets: list[Target], spec: CubeCutoutSpec, index_path: str) -> dict[str, Any]:
    """Cut a batch of targets from one cube into ``{target}.fits`` TPFs beside the index.

    Files are named by the target's slug (:func:`skycut.pipeline.names.slugify`), the index keyed by its name.
    A TPF's ``OBJECT`` is :func:`skycut.pipeline.names.object_name` of the target and a TIC name sets ``TICID``.

    The cube is opened, and its table and WCS read, once per distinct cutout size in the batch (usually once).

    Parameters
    ----------
    cube : str
        Path or URI of the cube.
    targets : list of Target
        The batch's targets (resolved ICRS ``ra``/``dec`` and ``size``).
    spec : CubeCutoutSpec
        The manifest's cube-cutout set (fill value, threads, fsspec options).
    index_path : str
        The job's JSON index (with the key ``cube``).

    Returns
    -------
    dict
        The index: a target entirely off the CCD is skipped, a target that could not be made failed, each with
        the library's reason (:class:`skycut.core.batch.BatchResult`).
    """
    from ...tess.cube_batch import cut_cube_targets

    by_size: dict[Any, list[Target]] = {}
    for target in targets:
        by_size.setdefault(target.size, []).append(target)  # a hashable core.coords.CutoutSize
    out = Path(index_path).parent
    result = BatchResult()
    for size, group in by_size.items():
        result.merge(
            cut_cube_targets(
                cube,
                [(t.name, (t.ra, t.dec)) for t in group],
                size,
                output_paths={t.name: out / f"{t.slug}.fits" for t in group},
                object_names={t.name: object_name(t.name) for t in group},
                tic_ids={t.name: tic_id(t.name) for t in group if tic_id(t.name) is not None},
                fill_value=fill(spec.fill_value),
                threads=spec.threads,
                fsspec_kwargs=fsspec_kwargs(spec.fsspec),
            )
        )
    return finish(index_path, result, cube=cube)


@dataclass
class LightCurve:
    """A TPF's light curve measured as lightkurve measures one (:func:`measure_light_curve`).

    ``time`` is BTJD (BJD - 2457000); ``flux`` the aperture sum minus ``background`` (e-/s), ``flux_err`` its
    1-sigma uncertainty, ``background`` the sky in the aperture (per-pixel sky times the aperture's size),
    ``quality`` the TPF's QUALITY; ``aperture`` and ``background_pixels`` are the boolean masks used,
    ``median_image`` the per-pixel median over cadences they were chosen from, ``mean_image`` the per-pixel
    mean (NaN off the CCD).
    """

    time: Any
    flux: Any
    flux_err: Any
    background: Any
    quality: Any
    aperture: Any
    background_pixels: Any
    median_image: Any
    mean_image: Any
    threshold: float


def threshold_mask(
    image: Any, threshold: float = 3.0, reference_pixel: tuple[float, float] | str | None = "center"
):
    """Compute lightkurve's ``TargetPixelFile.create_threshold_mask`` on an image (the median image of a TPF).

    Pixels at or above ``median + threshold * 1.4826 * MAD`` of the image's finite pixels; with a reference
    pixel, only the contiguous region (``scipy.ndimage.label``, 4-connected) holding the above-threshold pixel
    nearest to it.

    Parameters
    ----------
    image : 2-D array
        The image (NaN pixels are never selected).
    threshold : float
        In robust standard deviations above the median.
    reference_pixel : (column, row), "center" or None
        ``"center"`` is ``(ncols / 2, nrows / 2)`` as in lightkurve; None keeps every region.

    Returns
    -------
    numpy.ndarray of bool
        The mask (all False when no pixel passes).
    """
    import numpy as np
    from scipy.ndimage import label

    image = np.asarray(image, dtype=float)
    values = image[np.isfinite(image)]
    if values.size == 0:
        return np.zeros(image.shape, dtype=bool)
    median = np.median(values)
    cut = 1.4826 * np.median(np.abs(values - median)) * threshold + median
    mask = np.nan_to_num(image) >= cut
    if reference_pixel is None or not mask.any():
        return mask
    if isinstance(reference_pixel, str):
        if reference_pixel != "center":
            raise ValueError(
                f"reference_pixel must be (column, row), 'center' or None, got {reference_pixel!r}"
            )
        reference_pixel = (image.shape[1] / 2, image.shape[0] / 2)
    labels = label(mask)[0]
    pixels = np.argwhere(labels > 0)  # (row, column)
    nearest = pixels[
        np.argmin(np.hypot(pixels[:, 0] - reference_pixel[1], pixels[:, 1] - reference_pixel[0]))
    ]
    return labels == labels[nearest[0], nearest[1]]


def measure_light_curve(tpf_path: str, threshold: float = 3.0) -> LightCurve:
    """Measure the light curve of a TPF's target as lightkurve measures one.

    * Aperture: :func:`threshold_mask` (lightkurve's ``create_threshold_mask(threshold)``) of the median
      image: the contiguous region above ``threshold`` robust sigmas nearest the cutout's centre. Pixels off
      the CCD (APERTURE = 0, or not finite) are never in it. When no pixel passes (a blank cutout), the
      centre pixel alone.
    * Background: per cadence, the median of the background pixels (lightkurve's ``estimate_background``
      with an explicit mask): every valid pixel outside every above-threshold region (so no star's wings
      count as sky), or, when fewer than 3 such pixels remain, every valid pixel outside the aperture. The
      aperture's background is that median times the number of aperture pixels.
    * Flux: the aperture sum of FLUX minus that background (lightkurve's ``to_lightcurve(aperture_mask)``
      minus ``estimate_background(mask) * npix``); ``flux_err`` adds the aperture's FLUX_ERR in quadrature
      with the error of the background median (``sqrt(pi / 2)`` times the standard error of a mean).

    A sum of sky with star would rise and fall with the sky (the simulator's sky rises by 10% over the demo):
    subtracting the sky leaves a constant star flat within its noise.

    Parameters
    ----------
    tpf_path : str
        The TPF (PIXELS table with TIME, FLUX, FLUX_ERR, QUALITY; APERTURE image, non-zero on the CCD).
    threshold : float
        The aperture's threshold in robust sigmas (lightkurve's default, 3).

    Returns
    -------
    LightCurve
        Cadences with no finite aperture pixel have NaN flux.
    """
    import warnings

    import numpy as np
    from astropy.io import fits

    with fits.open(tpf_path) as hdul:
        table = hdul["PIXELS"].data
        on_ccd = np.asarray(hdul["APERTURE"].data) > 0
        cube = np.asarray(table["FLUX"], dtype=float)
        errors = np.asarray(table["FLUX_ERR"], dtype=float)
        time = np.asarray(table["TIME"], dtype=float)
        quality = np.asarray(table["QUALITY"])
    cube = np.where(on_ccd, cube, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels (off the CCD)
        median_image = np.nanmedian(cube, axis=0)
        mean_image = np.nanmean(cube, axis=0)
    valid = np.isfinite(median_image)
    aperture = threshold_mask(median_image, threshold) & valid
    if not aperture.any():
        log.warning(
            "%s: no pixel %.1f sigma above the median; the aperture is the centre pixel", tpf_path, threshold
        )
        aperture[median_image.shape[0] // 2, median_image.shape[1] // 2] = True
    background_pixels = valid & ~threshold_mask(median_image, threshold, reference_pixel=None)
    if background_pixels.sum() < 3:
        background_pixels = valid & ~aperture
    npix = int(aperture.sum())
    pixels = cube[:, aperture]
    has_data = np.isfinite(pixels).any(axis=1)
    total = np.where(has_data, np.nansum(pixels, axis=1), np.nan)
    total_err = np.sqrt(np.nansum(errors[:, aperture] ** 2, axis=1))
    if background_pixels.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sky = np.nanmedian(cube[:, background_pixels], axis=1)
            sky_err = (
                np.sqrt(np.pi / 2)
                * np.sqrt(np.nanmean(errors[:, background_pixels] ** 2, axis=1))
                / np.sqrt(np.isfinite(cube[:, background_pixels]).sum(axis=1))
            )
    else:  # the whole cutout is the aperture: nothing to measure the sky on
        log.warning("%s: no pixel outside the aperture; no background subtracted", tpf_path)
        sky = sky_err = np.zeros(len(time))
    background = sky * npix
    flux = total - background
    flux_err = np.hypot(total_err, sky_err * npix)
    log.debug(
        "%s: aperture %d pixels, background from %d pixels", tpf_path, npix, int(background_pixels.sum())
    )
    return LightCurve(
        time=time,
        flux=flux,
        flux_err=flux_err,
        background=background,
        quality=quality,
        aperture=aperture,
        background_pixels=background_pixels,
        median_image=median_image,
        mean_image=mean_image,
        threshold=float(threshold),
    )


def tpf_light_curve(tpf_path: str) -> tuple[Any, Any, Any]:
    """Return ``(time, flux, quality)`` of :func:`measure_light_curve`.

    They are BTJD, background-subtracted aperture flux (e-/s) and QUALITY.
    """
    lc = measure_light_curve(tpf_path)
    return lc.time, lc.flux, lc.quality


def plot_tpfs(cutout_index: str, plot_index: str) -> dict[str, Any]:
    """For every TPF of a cube-cutout index: a light-curve plot and a mean image (PNG), beside ``plot_index``.

    Writes ``{slug}_lightcurve.png`` (:func:`skycut.pipeline.plots.light_curve_figure`, the flux of
    :func:`measure_light_curve`) and ``{slug}_mean.png`` (:func:`skycut.pipeline.plots.mean_image_figure`:
    WCS axes, a colour bar and the aperture drawn).

    Parameters
    ----------
    cutout_index : str
        The cube-cutout job's index.
    plot_index : str
        This job's index.

    Returns
    -------
    dict
        The index.
    """
    from ..plots import light_curve_figure, mean_image_figure, save_figure

    result = BatchResult()
    out = Path(plot_index).parent
    for target, files in sorted(read_index(cutout_index)["products"].items()):
        tpf = files[0]
        lc = measure_light_curve(tpf)
        stem = slugify(target)
        lc_path = save_figure(light_curve_figure(lc, tpf, target), out / f"{stem}_lightcurve.png")
        mean_path = save_figure(mean_image_figure(lc, tpf, target), out / f"{stem}_mean.png")
        result.add(target, [lc_path, mean_path])
    return finish(plot_index, result)
