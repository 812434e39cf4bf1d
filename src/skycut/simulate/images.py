"""Simulated HST-like drizzled skycell images (FITS) and a Roman-like WFI Level 2 image (ASDF).

HST: for every band two overlapping skycell files ``hst_skycell-p{pcell:04d}x05y09_{inst}_{det}_{band}_drc.fits``
and ``...x06y09...``, each::

    0  PRIMARY  no data; FILENAME, TELESCOP='HST', INSTRUME, DETECTOR, FILTER, SKYCELL, EXPTIME, ...
    1  SCI      float32 (rows, cols) e-/s, TAN WCS (0.04"/px, north up, east left)
    2  WHT      float32 (rows, cols) weight (effective exposure time, s), same WCS

Both skycells of a band share one tangent plane (same CRVAL, CD matrix; CRPIX differs by an integer
shift), as real skycells of one projection cell do: skycell ``x06`` is skycell ``x05`` moved by
``cols - overlap`` pixels along +x, with ``overlap = cols // 3``. The tangent point, by default the centre
of the overlap, is the position used by astrocut's combine example (211.27128477, 53.66062066).

Roman: one ASDF file with ``tree["roman"] = {"meta": {..., "wcs": gwcs.WCS}, "data", "err", "dq", "context"}``
built with plain asdf + gwcs + astropy (no roman_datamodels).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import atomic_output
from ..core.provenance import settle_asdf_history
from ..exceptions import InvalidInputError
from .common import SimResult, check_shape, magnitudes, render_gaussians, write_fits, write_truth

log = logging.getLogger(__name__)

HST_SCALE_ARCSEC = 0.04
HST_CENTER = (211.27128477, 53.66062066)
HST_SKYCELLS = ("x05y09", "x06y09")
# band -> (instrument, detector, PSF sigma in 0.04" pixels, AB zero point for 1 e-/s, source colour offset)
_HST_BANDS = {
    "f275w": ("wfc3", "uvis", 0.95, 24.1, 1.0),
    "f336w": ("wfc3", "uvis", 0.95, 24.7, 0.8),
    "f435w": ("acs", "wfc", 1.00, 25.7, 0.6),
    "f475w": ("acs", "wfc", 1.00, 26.1, 0.45),
    "f555w": ("acs", "wfc", 1.02, 25.7, 0.35),
    "f606w": ("acs", "wfc", 1.05, 26.5, 0.2),
    "f775w": ("acs", "wfc", 1.15, 25.7, 0.05),
    "f814w": ("acs", "wfc", 1.20, 25.9, 0.0),
    "f850lp": ("acs", "wfc", 1.30, 24.9, -0.05),
    "f105w": ("wfc3", "ir", 2.2, 26.3, -0.1),
    "f125w": ("wfc3", "ir", 2.3, 26.2, -0.15),
    "f160w": ("wfc3", "ir", 2.5, 25.9, -0.2),
}
HST_READ_VARIANCE = 64.0  # e-^2 per output pixel (4 exposures of 4 e- read noise)
ROMAN_SCALE_ARCSEC = 0.11
ROMAN_CENTER = (269.697, 66.045)


def _band(band: str) -> tuple[str, tuple]:
    key = str(band).lower()
    if key not in _HST_BANDS:
        raise InvalidInputError(f"unknown HST band {band!r}; known: {', '.join(_HST_BANDS)}")
    return key, _HST_BANDS[key]


def hst_image_names(
    bands: tuple[str, ...] | list[str] = ("f435w", "f606w", "f814w"), pcell: int = 1
) -> list[str]:
    """Return the file names :func:`make_hst_images` makes, band by band, skycell ``x05y09`` then ``x06y09``."""
    if isinstance(bands, str):
        bands = (bands,)
    names = []
    for band in bands:
        key, (inst, det, *_) = _band(band)
        names += [f"hst_skycell-p{int(pcell):04d}{cell}_{inst}_{det}_{key}_drc.fits" for cell in HST_SKYCELLS]
    return names


def _tan_wcs(
    crval: tuple[float, float],
    crpix: tuple[float, float],
    scale_deg: float,
    shape_xy: tuple[int, int],
    rotation_deg: float = 0.0,
):
    """North-up (for rotation 0), east-left TAN WCS; ``crpix`` is 1-based FITS."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = list(crpix)
    c, s = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
    w.wcs.cd = scale_deg * np.array([[-c, s], [s, c]])
    w.wcs.radesys = "ICRS"
    w.wcs.cunit = ["deg", "deg"]
    w.pixel_shape = shape_xy
    return w


def _hst_sources(rng: np.random.Generator, rows: int, cols: int, shift: int) -> dict[str, Any]:
    """Return stars and Gaussian "galaxies" over the union of the two skycells, in skycell x05's 0-based pixels."""
    area = (cols + shift) * rows
    n_star, n_gal = max(12, area // 3000), max(12, area // 2000)
    n = n_star + n_gal
    return {
        "x": rng.uniform(-5, cols + shift + 5, n),
        "y": rng.uniform(-5, rows + 5, n),
        "mag": np.concatenate([magnitudes(rng, n_star, 19.0, 26.0), magnitudes(rng, n_gal, 21.0, 26.5)]),
        "sigma_pix": np.concatenate([np.zeros(n_star), rng.uniform(1.5, 5.0, n_gal)]),
        "colour": rng.normal(0.0, 0.4, n),
        "kind": ["star"] * n_star + ["galaxy"] * n_gal,
    }


def _weight_map(rows: int, cols: int) -> np.ndarray:
    """WHT: effective exposure (s), 2400 s with a 5 % gradient along x, tapering to 85 % at the edges."""
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    edge = np.minimum(np.minimum(xx, cols - 1 - xx), np.minimum(yy, rows - 1 - yy))
    return (2400.0 * (0.85 + 0.15 * np.clip(edge / 20.0, 0, 1)) * (1 + 0.05 * xx / cols)).astype(np.float32)


def _skycell_hdulist(name: str, data: np.ndarray, wht: np.ndarray, wcs, band: str, cell: str, pcell: int):
    """PRIMARY + SCI + WHT HDUList of one skycell file."""
    from astropy.io import fits

    inst, det, _, zp, _ = _HST_BANDS[band]
    primary = fits.Header(
        [
            ("NEXTEND", 2, "number of standard extensions"),
            ("FILENAME", name, "name of file"),
            ("FILETYPE", "SCI", "type of data found in data file"),
            ("TELESCOP", "HST", "telescope used to acquire data"),
            ("INSTRUME", inst.upper(), "identifier for instrument used to acquire data"),
            ("DETECTOR", det.upper(), "detector in use"),
            ("FILTER", band.upper(), "element selected from filter wheel"),
            ("SKYCELL", f"p{int(pcell):04d}{cell}", "sky cell name"),
            ("EXPTIME", 2400.0, "exposure duration (seconds)--calculated"),
            ("TEXPTIME", 2400.0, "total exposure time (seconds)"),
            ("DATE-OBS", "2021-03-04", "UT date of start of first exposure"),
            ("TIME-OBS", "05:06:07", "UT time of start of first exposure"),
            ("PHOTZPT", zp, "AB magnitude of 1 e-/s"),
            ("SIMDATA", True, "file is based on simulated data"),
            ("ORIGIN", "skycut.simulate", "program that made this file"),
        ]
    )
    wcs_header = wcs.to_header()
    hdus = [fits.PrimaryHDU(header=primary)]
    for ext, array, unit in (("SCI", data, "ELECTRONS/S"), ("WHT", wht, "")):
        h = fits.Header([("EXTNAME", ext, "extension name"), ("EXTVER", 1, "extension version")])
        if unit:
            h["BUNIT"] = (unit, "brightness units")
        h.extend(wcs_header)
        h["WCSNAME"] = ("SKYCELL", "projection-cell tangent plane")
        hdus.append(fits.ImageHDU(data=array, header=h))
    return fits.HDUList(hdus)


def make_hst_images(
    out_dir: str | Path,
    *,
    bands: tuple[str, ...] | list[str] = ("f435w", "f606w", "f814w"),
    shape: tuple[int, int] = (1000, 1000),
    seed: int = 0,
    pcell: int = 1,
    center: tuple[float, float] = HST_CENTER,
) -> SimResult:
    """Write HST-like drizzled images: two overlapping skycells per band (see the module notes).

    Parameters
    ----------
    out_dir : path-like
        Output directory (also gets ``hst_skycell-p{pcell:04d}_truth.json``).
    bands : sequence of str
        HST filters (``f435w``, ``f606w``, ``f814w``, ``f275w``, ...); the instrument follows from the band.
    shape : (rows, cols)
        numpy shape of each skycell image.
    seed : int
        Random seed (byte-identical files for the same arguments).
    pcell : int
        Projection-cell number in the file names.
    center : (ra, dec)
        Tangent point in degrees, at the centre of the overlap of the two skycells.

    Returns
    -------
    SimResult
        ``files`` band by band (x05 then x06); ``truth["sources"]`` has ``ra, dec, sigma_pix`` (intrinsic
        Gaussian sigma, 0 for stars), ``kind`` and per band total ``flux`` (e-/s); ``truth["skycells"]``
        has per file name the 0-based ``x, y`` of every source and the pixel offset of the skycell.
        SCI is sky-subtracted; its noise is Poisson (sources + 0.02 e-/s sky) and read noise for WHT seconds.
    """
    if isinstance(bands, str):
        bands = (bands,)
    if not bands:
        raise InvalidInputError("bands must name at least one HST filter")
    rows, cols = check_shape(shape)
    out_dir = Path(out_dir)
    names = hst_image_names(bands, pcell)
    overlap = max(cols // 3, 4)
    shift = cols - overlap
    scale = HST_SCALE_ARCSEC / 3600.0
    # 0-based pixel of the tangent point in skycell x05 (x06: x - shift)
    xc, yc = cols - overlap / 2 - 0.5, rows / 2 - 0.5
    src = _hst_sources(np.random.default_rng([seed, pcell, 3]), rows, cols, shift)
    ra, dec = _tan_wcs(center, (xc + 1, yc + 1), scale, (cols, rows)).all_pix2world(src["x"], src["y"], 0)
    stars = src["sigma_pix"] == 0
    wht = _weight_map(rows, cols)
    sky = np.float32(0.02)  # e-/s per pixel, subtracted as HAP does

    files: list[Path] = []
    flux_by_band: dict[str, list[float]] = {}
    skycells: dict[str, dict] = {}
    k = 0
    for b_index, band in enumerate(bands):
        key, (_, _, psf, zp, offset) = _band(band)
        flux = 10 ** (-0.4 * (src["mag"] + offset * (1 + src["colour"]) - zp))
        flux_by_band[key] = flux.tolist()
        sig = np.sqrt(psf**2 + src["sigma_pix"] ** 2)
        for c_index, cell in enumerate(HST_SKYCELLS):
            name = names[k]
            k += 1
            dx = c_index * shift
            x, y = src["x"] - dx, src["y"]
            wcs = _tan_wcs(center, (xc - dx + 1, yc + 1), scale, (cols, rows))
            model = np.zeros((rows, cols), dtype=np.float32)
            render_gaussians(model, x[stars], y[stars], flux[stars], sig[stars])
            render_gaussians(model, x[~stars], y[~stars], flux[~stars], sig[~stars])
            sigma = np.sqrt(np.maximum(model + sky, 0) * wht + np.float32(HST_READ_VARIANCE)) / wht
            noise = np.random.default_rng([seed, pcell, 4, b_index, c_index]).standard_normal(
                (rows, cols), dtype=np.float32
            )
            data = (model + sigma * noise).astype(np.float32)
            files.append(write_fits(_skycell_hdulist(name, data, wht, wcs, key, cell, pcell), out_dir / name))
            skycells[name] = {
                "band": key,
                "skycell": cell,
                "x_offset": dx,
                "x": x,
                "y": y,
                "crpix": [xc - dx + 1, yc + 1],
            }
            log.info("wrote %s", files[-1])

    truth = {
        "kind": "hst_skycells",
        "seed": seed,
        "shape": [rows, cols],
        "pcell": pcell,
        "bands": list(flux_by_band),
        "center": list(center),
        "pixel_scale_arcsec": HST_SCALE_ARCSEC,
        "overlap_pix": overlap,
        "skycell_shift_pix": shift,
        "files": [p.name for p in files],
        "sources": {
            "ra": ra,
            "dec": dec,
            "kind": src["kind"],
            "sigma_pix": src["sigma_pix"],
            "flux": flux_by_band,
        },
        "skycells": skycells,
        "psf_sigma_pix": {b: _HST_BANDS[b][2] for b in flux_by_band},
        "noise": {
            "sky_e_per_s": float(sky),
            "read_variance_e2": HST_READ_VARIANCE,
            "note": "SCI = model + noise, sigma = sqrt((model + sky) * WHT + read_variance) / WHT",
        },
        "note": "pixel x, y are 0-based in each file; x06 = x05 shifted by skycell_shift_pix along +x",
    }
    truth_file = write_truth(truth, out_dir / f"hst_skycell-p{int(pcell):04d}_truth.json")
    return SimResult(files=files, truth=truth, truth_file=truth_file)


# ----------------------------------------------------------------------------------------------------------
# Roman
# ----------------------------------------------------------------------------------------------------------


def roman_asdf_name(detector: int = 1) -> str:
    """Return the file name of the simulated Roman WFI Level 2 image.

    ``r0000101001001001001_0001_wfi{nn}_cal.asdf``, ``nn`` the two-digit ``detector``.
    """
    return f"r0000101001001001001_0001_wfi{int(detector):02d}_cal.asdf"


def _shear_step(axis: int, coeffs: tuple[float, ...]):
    """Return the shear ``(u, v) -> (u + f(v), v)`` (``axis=0``) or ``(u, v + f(u))`` (``axis=1``).

    ``f`` is a polynomial with ``f(0) = 0``; the model has its exact inverse (subtract the same ``f``).
    """
    from astropy.modeling import models

    other = 1 - axis
    poly = models.Polynomial1D(len(coeffs), **{f"c{i + 1}": c for i, c in enumerate(coeffs)})
    keep = models.Mapping((axis,), n_inputs=2)
    shift = models.Mapping((other,), n_inputs=2) | poly
    passthrough = models.Mapping((other,), n_inputs=2)
    order = (0, 1, 0, 1)
    if axis == 0:
        forward = models.Mapping(order) | ((keep + shift) & passthrough)
        forward.inverse = models.Mapping(order) | ((keep - shift) & passthrough)
    else:
        forward = models.Mapping(order) | (passthrough & (keep + shift))
        forward.inverse = models.Mapping(order) | (passthrough & (keep - shift))
    return forward


def _distortion(half: float, quad_px: float, cubic_px: float):
    """Return a small optical distortion (pixels, about the reference pixel) with an exact analytic inverse.

    Two shears: ``u1 = u + f(v)``, then ``v1 = v + g(u1)``, with ``f(t) = g(t) = quad_px (t/half)^2 +
    cubic_px (t/half)^3``: a displacement of up to ``quad_px + cubic_px`` pixels at the image edge, none
    at the reference pixel. The inverse undoes the shears in reverse order, to machine precision.
    """
    coeffs = (0.0, quad_px / half**2, cubic_px / half**3)
    return _shear_step(0, coeffs) | _shear_step(1, coeffs)


def roman_gwcs(
    shape: tuple[int, int],
    center: tuple[float, float] = ROMAN_CENTER,
    x_ref: float | None = None,
    y_ref: float | None = None,
    scale_arcsec: float = ROMAN_SCALE_ARCSEC,
    roll_deg: float = 30.0,
    distortion: bool = True,
):
    """Return a gwcs ``detector -> world`` (ICRS) imaging WCS with a bounding box over ``shape`` (rows, cols).

    Pipeline: shift by ``(-x_ref, -y_ref)`` (0-based; default the image centre) -> optional small
    distortion (see :func:`_distortion`: up to ~0.9 px at the image edge, zero at the reference
    pixel) -> rotation by ``roll_deg`` and scale (east left for roll 0) -> TAN projection ->
    rotation to ``center``. Every step has an exact analytic inverse, so ``wcs.invert`` needs no
    iteration. ``bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))``.
    """
    from astropy import coordinates
    from astropy import units as u
    from astropy.modeling import models
    from gwcs import coordinate_frames as cf
    from gwcs import wcs as gwcs_wcs

    rows, cols = shape
    x_ref = (cols - 1) / 2 if x_ref is None else x_ref
    y_ref = (rows - 1) / 2 if y_ref is None else y_ref
    scale = scale_arcsec / 3600.0
    c, s = np.cos(np.radians(roll_deg)), np.sin(np.radians(roll_deg))
    matrix = scale * np.array([[-c, s], [s, c]])
    transform = models.Shift(-x_ref) & models.Shift(-y_ref)
    if distortion:
        transform = transform | _distortion(max(rows, cols) / 2, 0.3, 0.6)
    transform = (
        transform
        | models.AffineTransformation2D(matrix=matrix)
        | models.Pix2Sky_TAN()
        | models.RotateNative2Celestial(center[0], center[1], 180.0)
    )
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), axes_names=("x", "y"), unit=(u.pix, u.pix))
    world = cf.CelestialFrame(
        reference_frame=coordinates.ICRS(), name="world", axes_names=("lon", "lat"), unit=(u.deg, u.deg)
    )
    wcs = gwcs_wcs.WCS([(detector, transform), (world, None)])
    wcs.bounding_box = ((-0.5, cols - 0.5), (-0.5, rows - 0.5))
    wcs.pixel_shape = (cols, rows)
    wcs.array_shape = (rows, cols)
    return wcs


def make_roman_asdf(
    out_path_or_dir: str | Path,
    *,
    shape: tuple[int, int] = (1024, 1024),
    seed: int = 0,
    detector: int = 1,
    center: tuple[float, float] = ROMAN_CENTER,
    distortion: bool = True,
) -> SimResult:
    """Write a Roman-like WFI Level 2 (``_cal``) ASDF image.

    Parameters
    ----------
    out_path_or_dir : path-like
        A ``.asdf`` file path, or a directory (then :func:`roman_asdf_name` is used).
    shape : (rows, cols)
        numpy shape of ``data``.
    seed : int
        Random seed (byte-identical files for the same arguments).
    detector : int
        WFI detector number (1-18), used in the name and ``meta.instrument.detector``.
    center : (ra, dec)
        Sky position of the image centre in degrees.
    distortion : bool
        Include the small optical distortion of :func:`roman_gwcs` (so the gwcs is not a pure TAN).

    Returns
    -------
    SimResult
        ``truth["stars"]`` has 0-based ``x, y``, ``ra, dec`` (from the file's gwcs) and ``flux`` (DN/s).
    """
    import asdf
    from astropy.time import Time, TimeDelta

    rows, cols = check_shape(shape)
    target = Path(out_path_or_dir)
    path = target if target.suffix == ".asdf" else target / roman_asdf_name(detector)
    wcs = roman_gwcs((rows, cols), center, distortion=distortion)
    rng = np.random.default_rng([seed, detector, 5])
    n = max(20, rows * cols // 2500)
    x = rng.uniform(-0.5, cols - 0.5, n)
    y = rng.uniform(-0.5, rows - 0.5, n)
    flux = 10 ** (-0.4 * (magnitudes(rng, n, 17.0, 25.0) - 26.3))  # DN/s, F158-like zero point
    model = np.zeros((rows, cols), dtype=np.float32)
    render_gaussians(model, x, y, flux, 0.9)
    model += np.float32(0.3)
    texp = 139.8
    err = (np.sqrt(np.maximum(model, 0) * texp + 20.0**2) / texp).astype(np.float32)
    data = (model + err * rng.standard_normal((rows, cols), dtype=np.float32)).astype(np.float32)
    dq = np.zeros((rows, cols), dtype=np.uint32)
    bad = rng.choice(rows * cols, size=max(1, rows * cols // 5000), replace=False)
    dq.flat[bad] = 2**9  # "hot" pixels
    context = np.zeros((2, rows, cols), dtype=np.uint32)
    context[0] = 1
    ra, dec = wcs(x, y, with_bounding_box=False)
    start = Time("2027-06-01T12:00:00", scale="utc")
    meta = {
        "filename": path.name,
        "file_date": Time("2027-06-02T00:00:00", scale="utc"),
        "model_type": "ImageModel",
        "origin": "skycut.simulate",
        "telescope": "ROMAN",
        "instrument": {"name": "WFI", "detector": f"WFI{int(detector):02d}", "optical_element": "F158"},
        "exposure": {
            "start_time": start,
            "end_time": start + TimeDelta(texp, format="sec"),
            "exposure_time": texp,
            "type": "WFI_IMAGE",
        },
        "wcsinfo": {
            "aperture_name": f"WFI{int(detector):02d}_FULL",
            "ra_ref": float(center[0]),
            "dec_ref": float(center[1]),
            "x_ref": (cols - 1) / 2,
            "y_ref": (rows - 1) / 2,
            "roll_ref": 30.0,
            "v2_ref": 0.0,
            "v3_ref": 0.0,
            "vparity": -1,
            "v3yangle": -60.0,
            "pixel_scale": ROMAN_SCALE_ARCSEC,
        },
        "wcs": wcs,
    }
    tree = {"roman": {"meta": meta, "data": data, "err": err, "dq": dq, "context": context}}
    with atomic_output(path) as tmp, asdf.config_context() as config:
        config.validate_on_write = False  # schema validation only costs time (seconds of YAML parsing)
        settle_asdf_history(asdf.AsdfFile(tree)).write_to(tmp)  # history extensions in a fixed order
    log.info("wrote %s", path)
    truth = {
        "kind": "roman_asdf",
        "seed": seed,
        "shape": [rows, cols],
        "detector": detector,
        "center": list(center),
        "pixel_scale_arcsec": ROMAN_SCALE_ARCSEC,
        "files": [path.name],
        "stars": {"x": x, "y": y, "ra": ra, "dec": dec, "flux": flux},
        "psf_sigma_pix": 0.9,
        "background": 0.3,
        "dq_flagged": int(bad.size),
        "noise": {
            "exposure_s": texp,
            "read_noise_e": 20.0,
            "note": "data = model + err * N(0, 1), err = sqrt(model * exposure + read_noise^2) / exposure;"
            " model includes the background",
        },
    }
    truth_file = write_truth(truth, path.with_name(path.name.replace(".asdf", "_truth.json")))
    return SimResult(files=[path], truth=truth, truth_file=truth_file)
