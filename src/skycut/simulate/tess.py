"""Simulated SPOC-like TESS calibrated full-frame images (FFIs).

Layout of a simulated FFI (as SPOC's ``*-s_ffic.fits``)::

    0  PRIMARY                 no data; TELESCOP, INSTRUME, SECTOR, CAMERA, CCD, TSTART, TSTOP, DATE-OBS, ...
    1  CAMERA.CCD c.d cal      float32 (2078, 2136) e-/s; time keywords, the 33 image keywords astrocut copies,
                               TAN-SIP celestial WCS and the physical (``...P``) WCS
    2  CAMERA.CCD c.d uncert   float32 (2078, 2136) 1-sigma uncertainty of extension 1, same header keywords

Pixel layout (SPOC): FITS columns 45..2092 and rows 1..2048 (1-based) are science pixels; columns 1..44 and
2093..2136 and rows 2049..2078 are collateral (calibrated to ~0 plus read noise here).
tess-point's ``col``/``row`` are 1-based FITS columns/rows *including* the 44 leading collateral columns
(its reverse function subtracts 45 and 1 to get 0-based science-pixel centres), so the 0-based pixel of
:mod:`skycut.core.geometry` is ``x = col - 1``, ``y = row - 1``.

Celestial WCS: :func:`tess_ccd_wcs` maps a 10 x 10 grid over the science pixels to the sky with tess-point's
reverse function for the sector's pointing and fits a TAN-SIP WCS (order 4) with
``astropy.wcs.utils.fit_wcs_from_points``; the inverse SIP (AP/BP, order 6) is fitted with astropy's linear
least-squares fitter and inverts the forward SIP to < 0.01 px over the whole FFI. The WCS deviates from
tess-point by at most ~0.15-0.3 px over a CCD (~0.02 px near its centre); the tangent point is the CCD
centre, which keeps the fit good for CCDs containing a celestial pole.

Small shapes: ``shape=(rows, cols)`` smaller than the full FFI is a *window* of the real FFI centred on the
science area: its 0-based pixel ``(x, y)`` is pixel ``(x + x0, y + y0)`` of the full FFI, with
``x0 = 44 + (2048 - cols) // 2`` and ``y0 = (2048 - rows) // 2`` (clipped to the FFI). The window's WCS is
the full-CCD WCS with CRPIX (and the SIP reference) shifted by ``(x0, y0)``; the physical WCS records the
offset the way SPOC does (``CRVAL1P = x0 + 1``, ``CRVAL2P = y0 + 1``), and the truth has ``window``.

Times: the first FFI starts at tess-point's sector mid-time minus 14.0 d (the nominal start of a 28-day
sector; for sector 11 this is TJD 1596.774, within minutes of the real first FFI); FFIs are consecutive
cadences of 1800 s (prime mission, sectors 1-26), 600 s (sectors 27-55) or 200 s (sectors 56+).
TSTART/TSTOP are TJD = BJD(TDB) - 2457000 at the exposure start/end; BARYCORR (days) is the barycentric
light-travel-time (Roemer) correction of the geocentre towards the CCD centre; DATE-OBS/DATE-END are the
UTC spacecraft times ``TSTART/TSTOP - BARYCORR``. The file-name time stamp is DATE-END truncated to seconds.
DQUALITY is 32 (momentum dump) on FFIs 2, 7, 12, ... and 2048 (stray light) on the last of 4 or more FFIs.

Scene (all in e-/s, PSF a pixel-integrated Gaussian of sigma 0.85 px, T = 10 gives 15000 e-/s):
~8000 stars per full CCD (at least 25 per window) with TESS magnitudes 7.5-15.5, fixed in all FFIs; a bright
variable star (T = 8) at ~(0.35 cols, 0.35 rows) whose flux is ``mean * (1 + 0.25 sin(2 pi (t - t0) / P))``
with ``P`` = 1.5 x the span of the simulated FFIs, averaged over each exposure; a moving source (T = 10.5)
on a straight pixel path from ~(0.15 cols, 0.75 rows) to ~(0.85 cols, 0.55 rows) between the first and
last FFI's mid-times (so it crosses most of any window, whatever the cadence); a sky background of
80-88 e-/s with a gentle gradient. Noise is Poisson + read noise for the exposure (1425.6 s for 1800-s
FFIs, 720 reads of 9.5 e-); extension 2 is exactly that noise model's sigma. The truth gives it all.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import InvalidInputError
from .common import SimResult, check_shape, magnitudes, render_gaussians, write_fits, write_truth

log = logging.getLogger(__name__)

FFI_ROWS, FFI_COLS = 2078, 2136  # numpy shape of a full FFI (NAXIS2, NAXIS1)
SCI_X0, SCI_NX, SCI_NY = 44, 2048, 2048  # 0-based first science column; science area size
TJD_OFFSET = 2457000.0
PSF_SIGMA = 0.85  # Gaussian PSF sigma in pixels (FWHM ~2 px ~ 42")
ZERO_POINT = 15000.0  # e-/s for TESS magnitude 10
READ_NOISE = 9.5  # e- per read per pixel
STARS_PER_PIXEL = 8000 / (SCI_NX * SCI_NY)
DEADC = 0.792  # 0.8 (cosmic-ray mitigation) x 0.99 (frame transfer)
# spacecraft configuration ID of the FFI file names of the first sectors (approximate, for realism only)
_SCID = {
    1: 120,
    2: 121,
    3: 123,
    4: 124,
    5: 125,
    6: 126,
    7: 131,
    8: 136,
    9: 139,
    10: 140,
    11: 143,
    12: 144,
    13: 146,
}


# ----------------------------------------------------------------------------------------------------------
# geometry and times
# ----------------------------------------------------------------------------------------------------------


def _check_ccd(sector: Any, camera: Any, ccd: Any) -> tuple[int, int, int]:
    import tess_stars2px

    try:
        sector, camera, ccd = int(sector), int(camera), int(ccd)
    except Exception as exc:
        raise InvalidInputError(
            f"sector/camera/ccd must be integers, got {sector!r}/{camera!r}/{ccd!r}"
        ) from exc
    if not 1 <= sector <= tess_stars2px.max_sector:
        raise InvalidInputError(
            f"sector must be 1..{tess_stars2px.max_sector} (tess-point's table), got {sector}"
        )
    if camera not in (1, 2, 3, 4) or ccd not in (1, 2, 3, 4):
        raise InvalidInputError(f"camera and ccd must be 1..4, got camera={camera} ccd={ccd}")
    return sector, camera, ccd


@functools.lru_cache(maxsize=8)
def _pointing(sector: int):
    import tess_stars2px

    return tess_stars2px.TESS_Spacecraft_Pointing_Data(trySector=sector)


def _reverse(sector: int, camera: int, ccd: int, col: float, row: float) -> tuple[float, float]:
    """Return (ra, dec) degrees of 1-based FFI (col, row), by tess-point's reverse transform."""
    import tess_stars2px

    ra, dec, _ = tess_stars2px.tess_stars2px_reverse_function_entry(
        sector, camera, ccd, float(col), float(row), scInfo=_pointing(sector)
    )
    return float(ra), float(dec)


def ccd_center(sector: int, camera: int, ccd: int) -> tuple[float, float]:
    """Return (ra, dec) in degrees of the centre of the science area (0-based pixel (1067.5, 1023.5))."""
    sector, camera, ccd = _check_ccd(sector, camera, ccd)
    return _reverse(sector, camera, ccd, SCI_X0 + SCI_NX / 2 + 0.5, SCI_NY / 2 + 0.5)


def _fit_inverse_sip(
    sip_a: np.ndarray, sip_b: np.ndarray, order: int, nx: int, ny: int, crpix: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Return AP/BP coefficients (polynomials of degree ``order``) inverting the forward SIP ``(A, B)``.

    Fitted over an ``nx`` x ``ny`` pixel area (``crpix`` 1-based).
    """
    from astropy.modeling import fitting, models

    x, y = np.meshgrid(np.linspace(0, nx - 1, 40), np.linspace(0, ny - 1, 40))
    u = x.ravel() + 1 - crpix[0]
    v = y.ravel() + 1 - crpix[1]
    fu = np.zeros_like(u)
    fv = np.zeros_like(v)
    forward = sip_a.shape[0] - 1
    for i in range(forward + 1):
        for j in range(forward + 1 - i):
            fu += sip_a[i, j] * u**i * v**j
            fv += sip_b[i, j] * u**i * v**j
    big_u, big_v = u + fu, v + fv
    scale = float(max(nx, ny))  # fit in scaled coordinates for a well-conditioned problem
    fitter = fitting.LinearLSQFitter()
    out = []
    for target in (u - big_u, v - big_v):
        model = fitter(models.Polynomial2D(order), big_u / scale, big_v / scale, target)
        coef = np.zeros((order + 1, order + 1))
        for i in range(order + 1):
            for j in range(order + 1 - i):
                coef[i, j] = getattr(model, f"c{i}_{j}").value / scale ** (i + j)
        out.append(coef)
    return out[0], out[1]


@functools.lru_cache(maxsize=16)
def _ccd_wcs_cached(sector: int, camera: int, ccd: int, sip_degree: int):
    from astropy.coordinates import SkyCoord
    from astropy.wcs import Sip
    from astropy.wcs.utils import fit_wcs_from_points

    cols = np.linspace(SCI_X0 + 1, SCI_X0 + SCI_NX, 10)  # 1-based, tess-point convention
    rows = np.linspace(1, SCI_NY, 10)
    cc, rr = np.meshgrid(cols, rows)
    radec = np.array(
        [_reverse(sector, camera, ccd, c, r) for c, r in zip(cc.ravel(), rr.ravel(), strict=True)]
    )
    sky = SkyCoord(radec[:, 0], radec[:, 1], unit="deg")
    # tangent point at the CCD centre (astropy's default guess fails for CCDs that contain a celestial pole)
    centre = SkyCoord(*_reverse(sector, camera, ccd, SCI_X0 + SCI_NX / 2 + 0.5, SCI_NY / 2 + 0.5), unit="deg")
    wcs = fit_wcs_from_points(
        (cc.ravel() - 1, rr.ravel() - 1), sky, proj_point=centre, projection="TAN", sip_degree=sip_degree
    )
    s = wcs.sip
    # the inverse needs two more orders than the forward SIP to reach ~0.006 px over the whole FFI
    ap, bp = _fit_inverse_sip(s.a, s.b, sip_degree + 2, FFI_COLS, FFI_ROWS, tuple(s.crpix))
    wcs.sip = Sip(s.a, s.b, ap, bp, s.crpix)
    wcs.pixel_shape = (FFI_COLS, FFI_ROWS)
    return wcs


def tess_ccd_wcs(sector: int = 11, camera: int = 1, ccd: int = 1, sip_degree: int = 4):
    """TAN-SIP ``astropy.wcs.WCS`` of a full FFI (2136 x 2078 pixels) fitted to tess-point's geometry.

    Pixel coordinates are 0-based over the whole FFI including collateral columns, i.e. tess-point's
    ``(col, row)`` is ``(x + 1, y + 1)``. A fresh copy is returned (the fit is cached per process).
    """
    sector, camera, ccd = _check_ccd(sector, camera, ccd)
    return _ccd_wcs_cached(sector, camera, ccd, int(sip_degree)).deepcopy()


def cadence_seconds(sector: int) -> float:
    """FFI cadence: 1800 s (sectors 1-26), 600 s (27-55), 200 s (56 and later)."""
    return 1800.0 if sector <= 26 else 600.0 if sector <= 55 else 200.0


def window_origin(shape: tuple[int, int]) -> tuple[int, int]:
    """Return the 0-based ``(x0, y0)`` of a ``(rows, cols)`` window in the full FFI (centred on the science area).

    Raises
    ------
    InvalidInputError
        The window is larger than the full FFI.
    """
    rows, cols = shape
    if rows > FFI_ROWS or cols > FFI_COLS:
        raise InvalidInputError(f"shape {shape} exceeds the full FFI ({FFI_ROWS}, {FFI_COLS})")
    if (rows, cols) == (FFI_ROWS, FFI_COLS):
        return 0, 0
    x0 = min(max(SCI_X0 + (SCI_NX - cols) // 2, 0), FFI_COLS - cols)
    y0 = min(max((SCI_NY - rows) // 2, 0), FFI_ROWS - rows)
    return int(x0), int(y0)


def tess_sector_times(sector: int = 11, camera: int = 1, ccd: int = 1, n_ffi: int = 8) -> dict[str, Any]:
    """Return the times of ``n_ffi`` consecutive FFIs from the start of ``sector`` (see the module notes).

    Returns a dict of lists: ``tstart``, ``tstop``, ``tmid`` (TJD, TDB), ``barycorr`` (d), ``date_obs``,
    ``date_end`` (UTC ISO strings), ``stamp`` (``YYYYDDDHHMMSS`` of DATE-END) and ``cadence_s``.
    """
    from astropy import constants
    from astropy import units as u
    from astropy.coordinates import SkyCoord, get_body_barycentric
    from astropy.time import Time

    sector, camera, ccd = _check_ccd(sector, camera, ccd)
    n_ffi = int(n_ffi)
    if n_ffi < 1:
        raise InvalidInputError(f"n_ffi must be at least 1, got {n_ffi}")
    cadence = cadence_seconds(sector)
    t0 = float(_pointing(sector).midtimes[0]) - TJD_OFFSET - 14.0
    tstart = t0 + np.arange(n_ffi) * cadence / 86400.0
    tstop = tstart + cadence / 86400.0
    tmid = 0.5 * (tstart + tstop)
    # Roemer delay of the geocentre towards the CCD centre (builtin ephemeris: no IERS tables, no download)
    ra, dec = ccd_center(sector, camera, ccd)
    direction = SkyCoord(ra, dec, unit="deg").cartesian.xyz.value
    earth = get_body_barycentric("earth", Time(tmid + TJD_OFFSET, format="jd", scale="tdb"))
    barycorr = (earth.xyz.to_value(u.m).T @ direction) / constants.c.value / 86400.0
    start_utc = Time(tstart - barycorr + TJD_OFFSET, format="jd", scale="tdb").utc
    end_utc = Time(tstop - barycorr + TJD_OFFSET, format="jd", scale="tdb").utc
    return {
        "cadence_s": cadence,
        "tstart": tstart.tolist(),
        "tstop": tstop.tolist(),
        "tmid": tmid.tolist(),
        "barycorr": barycorr.tolist(),
        "date_obs": [d + "Z" for d in start_utc.isot],  # millisecond precision, as SPOC
        "date_end": [d + "Z" for d in end_utc.isot],
        "stamp": [str(v) for v in end_utc.strftime("%Y%j%H%M%S")],
    }


def tess_ffi_names(sector: int = 11, camera: int = 1, ccd: int = 1, n_ffi: int = 8) -> list[str]:
    """Return the SPOC file names (44 characters) of the FFIs :func:`make_tess_ffis` makes, in time order.

    Each is ``tess{YYYYDDDHHMMSS}-s{sector:04d}-{camera}-{ccd}-{scid:04d}-s_ffic.fits``.
    """
    sector, camera, ccd = _check_ccd(sector, camera, ccd)
    times = tess_sector_times(sector, camera, ccd, n_ffi)
    scid = _SCID.get(sector, 120 + sector)
    return [f"tess{st}-s{sector:04d}-{camera}-{ccd}-{scid:04d}-s_ffic.fits" for st in times["stamp"]]


# ----------------------------------------------------------------------------------------------------------
# headers
# ----------------------------------------------------------------------------------------------------------


def _wcs_cards(wcs) -> list[tuple[str, Any, str]]:
    """Celestial WCS cards as SPOC writes them (CD matrix, SIP with AP/BP)."""
    hdr = wcs.to_header(relax=True)
    cd = wcs.pixel_scale_matrix
    cards: list[tuple[str, Any, str]] = [
        ("RADESYS", "ICRS", "reference frame of celestial coordinates"),
        ("EQUINOX", 2000.0, "equinox of celestial coordinate system"),
        ("WCSAXES", 2, "number of WCS axes"),
        ("CTYPE1", "RA---TAN-SIP", "Gnomonic projection + SIP distortions"),
        ("CTYPE2", "DEC--TAN-SIP", "Gnomonic projection + SIP distortions"),
        ("CRVAL1", float(wcs.wcs.crval[0]), "RA at CRPIX1, CRPIX2"),
        ("CRVAL2", float(wcs.wcs.crval[1]), "DEC at CRPIX1, CRPIX2"),
        ("CRPIX1", float(wcs.wcs.crpix[0]), "X reference pixel"),
        ("CRPIX2", float(wcs.wcs.crpix[1]), "Y reference pixel"),
        ("CD1_1", float(cd[0, 0]), "Transformation matrix"),
        ("CD1_2", float(cd[0, 1]), "Transformation matrix"),
        ("CD2_1", float(cd[1, 0]), "Transformation matrix"),
        ("CD2_2", float(cd[1, 1]), "Transformation matrix"),
    ]
    for key in hdr:
        if key[:2] in ("A_", "B_") or key[:3] in ("AP_", "BP_"):
            cards.append((key, hdr[key], hdr.comments[key]))
    return cards


def _physical_cards(x0: int, y0: int) -> list[tuple[str, Any, str]]:
    return [
        ("WCSNAMEP", "PHYSICAL", "name of world coordinate system alternate P"),
        ("WCSAXESP", 2, "number of WCS physical axes"),
        ("CTYPE1P", "RAWX", "physical WCS axis 1 type CCD col"),
        ("CUNIT1P", "PIXEL", "physical WCS axis 1 unit"),
        ("CRPIX1P", 1, "reference CCD column"),
        ("CRVAL1P", x0 + 1, "value at reference CCD column"),
        ("CDELT1P", 1.0, "physical WCS axis 1 step"),
        ("CTYPE2P", "RAWY", "physical WCS axis 2 type CCD row"),
        ("CUNIT2P", "PIXEL", "physical WCS axis 2 units"),
        ("CRPIX2P", 1, "reference CCD row"),
        ("CRVAL2P", y0 + 1, "value at reference CCD row"),
        ("CDELT2P", 1.0, "physical WCS axis 2 step"),
    ]


def _image_cards(sector: int, camera: int, ccd: int, cadence: float) -> list[tuple[str, Any, str]]:
    """Constant image keywords of extensions 1 and 2 (the 33 keywords astrocut copies, and more)."""
    nfrm = int(round(cadence / 2.0))
    exposure = cadence * DEADC / 86400.0
    cards: list[tuple[str, Any, str]] = [
        ("BUNIT", "electrons/s", "physical units of image data"),
        ("TIMEREF", "SOLARSYSTEM", "barycentric correction applied to times"),
        ("TASSIGN", "SPACECRAFT", "where time is assigned"),
        ("TIMESYS", "TDB", "time system is Barycentric Dynamical Time (TDB)"),
        ("BJDREFI", 2457000, "integer part of BTJD reference date"),
        ("BJDREFF", 0.0, "fraction of the day in BTJD reference date"),
        ("TIMEUNIT", "d", "time unit for TIME, TSTART and TSTOP"),
        ("TELAPSE", cadence / 86400.0, "[d] TSTOP - TSTART"),
        ("LIVETIME", exposure, "[d] TELAPSE multiplied by DEADC"),
        ("EXPOSURE", exposure, "[d] time on source"),
        ("DEADC", DEADC, "deadtime correction"),
        ("TIMEPIXR", 0.5, "bin time beginning=0 middle=0.5 end=1"),
        ("TIERRELA", 1.16e-05, "[d] relative time error"),
        ("INT_TIME", 1.98, "[s] photon accumulation time per frame"),
        ("READTIME", 0.02, "[s] readout time per frame"),
        ("FRAMETIM", 2.0, "[s] frame time (INT_TIME + READTIME)"),
        ("NUM_FRM", nfrm, "number of frames per time stamp"),
        ("TIMEDEL", cadence / 86400.0, "[d] time resolution of data"),
        ("BACKAPP", True, "background is subtracted"),
        ("DEADAPP", True, "deadtime applied"),
        ("VIGNAPP", True, "vignetting or collimator correction applied"),
    ]
    for i, amp in enumerate("ABCD"):
        cards.append(
            (f"GAIN{amp}", round(5.2 + 0.05 * i, 2), f"[electrons/count] CCD output {amp} gain factor")
        )
    for i, amp in enumerate("ABCD"):
        cards.append(
            (f"READNOI{amp}", round(READ_NOISE + 0.1 * i, 2), f"[electrons] read noise CCD output {amp}")
        )
    cards += [
        ("NREADOUT", int(round(nfrm * 0.8)), "number of read per cadence"),
        ("FXDOFF", 209715200, "compression fixed offset"),
    ]
    for i, amp in enumerate("ABCD"):
        cards.append((f"MEANBLC{amp}", 6500 + 20 * i, f"[count] FSW mean black level CCD output {amp}"))
    cards += [
        ("CAMERA", camera, "Camera number"),
        ("CCD", ccd, "CCD chip number"),
        ("CDPP0_5", 0.0, "RMS CDPP on 0.5-hr time scales (not for FFIs)"),
        ("CDPP1_0", 0.0, "RMS CDPP on 1.0-hr time scales (not for FFIs)"),
        ("CDPP2_0", 0.0, "RMS CDPP on 2.0-hr time scales (not for FFIs)"),
        ("CROWDSAP", 1.0, "Ratio of target flux to total flux in op. ap."),
        ("FLFRCSAP", 1.0, "Frac. of target flux w/in the op. aperture"),
        (f"TMOFST{camera}{ccd}", 2.0, f"(s) readout delay for camera {camera} and ccd {ccd}"),
    ]
    return cards


def _primary_cards(
    sector: int, camera: int, ccd: int, times: dict, i: int, ffiindex: int, date: str
) -> list[tuple[str, Any, str]]:
    pnt = _pointing(sector)
    return [
        ("NEXTEND", 2, "number of standard extensions"),
        ("EXTNAME", "PRIMARY", "name of extension"),
        ("EXTVER", 1, "extension version number (not format version)"),
        ("SIMDATA", True, "file is based on simulated data"),
        ("ORIGIN", "NASA/Ames", "institution responsible for creating this file"),
        ("DATE", date, "file creation date."),
        ("TSTART", times["tstart"][i], "observation start time in TJD"),
        ("TSTOP", times["tstop"][i], "observation stop time in TJD"),
        ("DATE-OBS", times["date_obs"][i], "TSTART as UTC calendar date"),
        ("DATE-END", times["date_end"][i], "TSTOP as UTC calendar date"),
        ("CREATOR", "skycut.simulate FfiExporter", "program used to produce this file"),
        ("PROCVER", "skycut-sim-1.0", "SW version"),
        ("FILEVER", "1.0", "file format version"),
        ("TIMVERSN", "OGIP/93-003", "OGIP memo number for file format"),
        ("TELESCOP", "TESS", "telescope"),
        ("INSTRUME", "TESS Photometer", "detector type"),
        ("DATA_REL", sector, "data release version number"),
        ("SECTOR", sector, "Observing sector"),
        ("CAMERA", camera, "Camera number"),
        ("CCD", ccd, "CCD chip number"),
        ("FFIINDEX", ffiindex, "number of FFI cadence interval of first cadence"),
        ("RADESYS", "ICRS", "reference frame of celestial coordinates"),
        ("EQUINOX", 2000.0, "equinox of celestial coordinate system"),
        ("RA_NOM", float(pnt.ras[0]), "[deg] RA of spacecraft boresight (tess-point)"),
        ("DEC_NOM", float(pnt.decs[0]), "[deg] declination of spacecraft boresight"),
        ("ROLL", float(pnt.rolls[0]), "[deg] spacecraft roll (tess-point)"),
        ("CRMITEN", True, "spacecraft cosmic ray mitigation enabled"),
        ("CRBLKSZ", 10, "[exposures] cosmic ray mitigation block size"),
        ("CRSPOC", False, "SPOC cosmic ray cleaning enabled"),
    ]


def _quality_flags(n: int) -> list[int]:
    """Return the DQUALITY of each of ``n`` FFIs.

    32 (reaction-wheel desaturation) on every 5th FFI from index 2, 2048 (stray light) on the last FFI when
    there are at least 4.
    """
    flags = [32 if i % 5 == 2 else 0 for i in range(n)]
    if n >= 4:
        flags[-1] |= 2048
    return flags


# ----------------------------------------------------------------------------------------------------------
# the simulator
# ----------------------------------------------------------------------------------------------------------


def _science_mask(rows: int, cols: int, x0: int, y0: int) -> tuple[slice, slice]:
    """Return the slices (rows, cols) of the window that are science pixels."""
    xs = slice(max(SCI_X0 - x0, 0), max(min(SCI_X0 + SCI_NX - x0, cols), 0))
    ys = slice(max(-y0, 0), max(min(SCI_NY - y0, rows), 0))
    return ys, xs


def _variable_flux(
    mean: float, amp: float, period: float, t0: float, tstart: np.ndarray, tstop: np.ndarray
) -> np.ndarray:
    """Exposure-averaged flux of ``mean * (1 + amp * sin(2 pi (t - t0) / period))`` over [tstart, tstop]."""
    w = 2 * np.pi / period
    p1, p2 = w * (tstart - t0), w * (tstop - t0)
    return mean * (1 + amp * (np.cos(p1) - np.cos(p2)) / (p2 - p1))


def _scene(
    rows: int, cols: int, x0: int, y0: int, tstart: np.ndarray, tstop: np.ndarray, rng: np.random.Generator
) -> dict[str, Any]:
    """Return positions (0-based window pixels) and fluxes (e-/s) of everything in the FFIs; see the module notes."""
    sy, sx = _science_mask(rows, cols, x0, y0)
    xlo, xhi = max(sx.start - 3, SCI_X0 - x0), min(sx.stop + 3, SCI_X0 + SCI_NX - x0)
    ylo, yhi = max(sy.start - 3, -y0), min(sy.stop + 3, SCI_NY - y0)
    n_stars = max(25, int(round(STARS_PER_PIXEL * (xhi - xlo) * (yhi - ylo))))
    stars = {
        "x": rng.uniform(xlo - 0.5, xhi - 0.5, n_stars),
        "y": rng.uniform(ylo - 0.5, yhi - 0.5, n_stars),
        "tmag": magnitudes(rng, n_stars, 7.5, 15.5),
    }
    stars["flux"] = ZERO_POINT * 10 ** (-0.4 * (stars["tmag"] - 10))

    tmid = 0.5 * (tstart + tstop)
    var = {
        "x": 0.35 * cols + rng.uniform(-0.5, 0.5),
        "y": 0.35 * rows + rng.uniform(-0.5, 0.5),
        "tmag": 8.0,
        "amplitude": 0.25,
        "period": 1.5 * float(tstop[-1] - tstart[0]),
        "t0": float(tstart[0]),
    }
    var["mean_flux"] = ZERO_POINT * 10 ** (-0.4 * (var["tmag"] - 10))
    var["flux"] = _variable_flux(var["mean_flux"], var["amplitude"], var["period"], var["t0"], tstart, tstop)

    frac = np.zeros(len(tmid)) if len(tmid) == 1 else (tmid - tmid[0]) / (tmid[-1] - tmid[0])
    moving = {
        "x": (0.15 + 0.70 * frac) * cols + rng.uniform(-0.5, 0.5),
        "y": (0.75 - 0.20 * frac) * rows + rng.uniform(-0.5, 0.5),
        "tmag": 10.5,
        "flux": ZERO_POINT * 10 ** (-0.4 * (10.5 - 10)),
        "tjd": tmid,
        "time_jd": tmid + TJD_OFFSET,
        "time_scale": "tdb",
    }
    background = {
        "level": 80.0 * (1 + 0.1 * frac),
        "gx": 0.004,
        "gy": -0.003,
        "x_ref": SCI_X0 + SCI_NX / 2 - 0.5 - x0,
        "y_ref": SCI_NY / 2 - 0.5 - y0,
        "note": "bkg(x, y) = level[i] + gx * (x - x_ref) + gy * (y - y_ref) on science pixels",
    }
    return {
        "stars": stars,
        "variable": var,
        "moving": moving,
        "background": background,
        "science_pixels": {"x": [sx.start, sx.stop], "y": [sy.start, sy.stop]},
    }


def _expose(
    model: np.ndarray, texp: float, nread: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return a noisy image and its 1-sigma uncertainty (float32, e-/s) for a noise-free ``model`` (e-/s).

    Poisson noise of ``model * texp`` electrons plus ``nread`` reads of :data:`READ_NOISE` electrons.
    """
    sigma = np.sqrt(np.maximum(model, 0) * np.float32(texp) + np.float32(nread * READ_NOISE**2))
    sigma /= np.float32(texp)
    data = model + sigma * rng.standard_normal(model.shape, dtype=np.float32)
    return data.astype(np.float32, copy=False), sigma.astype(np.float32, copy=False)


def make_tess_ffis(
    out_dir: str | Path,
    *,
    sector: int = 11,
    camera: int = 1,
    ccd: int = 1,
    n_ffi: int = 8,
    shape: tuple[int, int] | None = None,
    seed: int = 0,
) -> SimResult:
    """Write ``n_ffi`` SPOC-like calibrated TESS FFIs (consecutive cadences from the sector's start).

    Parameters
    ----------
    out_dir : path-like
        Directory for the FFIs and ``tess-s{sector:04d}-{camera}-{ccd}_truth.json``.
    sector, camera, ccd : int
        Which CCD; the WCS comes from tess-point's geometry for that sector's pointing.
    n_ffi : int
        Number of FFIs.
    shape : (rows, cols) or None
        ``None`` = full FFI (2078 rows x 2136 columns); smaller = a window of the real FFI centred on the
        science area (see the module notes).
    seed : int
        Random seed; the same arguments give byte-identical files. The star field does not depend on
        ``n_ffi``; the variable star's period and the moving source's speed do.

    Returns
    -------
    SimResult
        ``files`` in time order; ``truth`` holds ``times``, ``window``, ``stars`` (columns ``x, y, ra, dec,
        flux, tmag``), ``variable`` (``x, y, ra, dec, mean_flux, amplitude, period, t0``, ``flux`` per FFI),
        ``moving`` (per FFI ``tjd, time_jd, x, y, ra, dec``; ``flux``), ``background`` and ``noise``.
        Fluxes are e-/s summed over the PSF; pixels are 0-based in the file's own grid.
    """
    from astropy.io import fits
    from astropy.time import Time

    from ..core.geometry import shifted_wcs

    sector, camera, ccd = _check_ccd(sector, camera, ccd)
    rows, cols = (FFI_ROWS, FFI_COLS) if shape is None else check_shape(shape)
    x0, y0 = window_origin((rows, cols))
    out_dir = Path(out_dir)
    names = tess_ffi_names(sector, camera, ccd, n_ffi)
    times = tess_sector_times(sector, camera, ccd, n_ffi)
    cadence = times["cadence_s"]
    tstart, tstop = np.asarray(times["tstart"]), np.asarray(times["tstop"])
    texp = cadence * DEADC
    nread = int(round(cadence / 2.0 * 0.8))
    wcs = shifted_wcs(tess_ccd_wcs(sector, camera, ccd), x0, y0, (cols, rows))
    scene = _scene(rows, cols, x0, y0, tstart, tstop, np.random.default_rng([seed, sector, camera, ccd, 1]))
    stars, var, mov, bkg = scene["stars"], scene["variable"], scene["moving"], scene["background"]

    static = np.zeros((rows, cols), dtype=np.float32)
    render_gaussians(static, stars["x"], stars["y"], stars["flux"], PSF_SIGMA)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    static += bkg["gx"] * (xx - np.float32(bkg["x_ref"])) + bkg["gy"] * (yy - np.float32(bkg["y_ref"]))
    del xx, yy
    science = np.zeros((rows, cols), dtype=bool)
    sp = scene["science_pixels"]
    science[sp["y"][0] : sp["y"][1], sp["x"][0] : sp["x"][1]] = True

    date = Time(tstart[0] + 33.0 + TJD_OFFSET, format="jd", scale="tdb").utc.strftime("%Y-%m-%d")
    ext_cards = _image_cards(sector, camera, ccd, cadence) + _wcs_cards(wcs) + _physical_cards(x0, y0)
    flags = _quality_flags(n_ffi)
    files = []
    for i, name in enumerate(names):
        model = static + np.float32(bkg["level"][i])
        render_gaussians(model, [var["x"]], [var["y"]], [var["flux"][i]], PSF_SIGMA)
        render_gaussians(model, [mov["x"][i]], [mov["y"][i]], [mov["flux"]], PSF_SIGMA)
        model[~science] = 0.0
        data, sigma = _expose(model, texp, nread, np.random.default_rng([seed, sector, camera, ccd, 2, i]))
        ffiindex = int(round(tstart[i] * 86400.0 / cadence))
        hdus = [
            fits.PrimaryHDU(header=fits.Header(_primary_cards(sector, camera, ccd, times, i, ffiindex, date)))
        ]
        time_cards = [
            ("TSTART", times["tstart"][i], "observation start time in TJD"),
            ("TSTOP", times["tstop"][i], "observation stop time in TJD"),
            ("DATE-OBS", times["date_obs"][i], "TSTART as UTC calendar date"),
            ("DATE-END", times["date_end"][i], "TSTOP as UTC calendar date"),
            ("BARYCORR", times["barycorr"][i], "[d] barycentric time correction"),
            ("DQUALITY", flags[i], "data quality flags"),
        ]
        for kind, array in (("cal", data), ("uncert", sigma)):
            header = fits.Header(
                [
                    ("INHERIT", True, "inherit the primary header"),
                    ("EXTNAME", f"CAMERA.CCD {camera}.{ccd} {kind}", "name of extension"),
                    ("EXTVER", 1, "extension version number (not format version)"),
                    *time_cards,
                    *ext_cards,
                ]
            )
            hdus.append(fits.ImageHDU(data=array, header=header))
        files.append(write_fits(fits.HDUList(hdus), out_dir / name))
        log.info("wrote %s", files[-1])

    def sky(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        return wcs.all_pix2world(np.atleast_1d(x), np.atleast_1d(y), 0)

    stars["ra"], stars["dec"] = sky(stars["x"], stars["y"])
    var["ra"], var["dec"] = (float(v[0]) for v in sky(var["x"], var["y"]))
    var["note"] = "flux[i] = exposure average of mean_flux * (1 + amplitude * sin(2 pi (t - t0) / period))"
    mov["ra"], mov["dec"] = sky(mov["x"], mov["y"])
    truth = {
        "kind": "tess_ffi",
        "seed": seed,
        "sector": sector,
        "camera": camera,
        "ccd": ccd,
        "shape": [rows, cols],
        "full_shape": [FFI_ROWS, FFI_COLS],
        "window": {
            "x0": x0,
            "y0": y0,
            "note": "file pixel (x, y) = full-FFI pixel (x + x0, y + y0), 0-based",
        },
        "files": [p.name for p in files],
        "times": {**times, "dquality": flags},
        "psf_sigma_pix": PSF_SIGMA,
        "zero_point_e_per_s_tmag10": ZERO_POINT,
        "noise": {"exposure_s": texp, "n_reads": nread, "read_noise_e": READ_NOISE},
        **scene,
    }
    truth_file = write_truth(truth, out_dir / f"tess-s{sector:04d}-{camera}-{ccd}_truth.json")
    return SimResult(files=files, truth=truth, truth_file=truth_file)


def write_path_table(truth: dict | SimResult, path: str | Path) -> Path:
    """Write the moving source's path as a table with columns ``time`` (JD, TDB), ``ra``, ``dec`` (deg).

    ``.ecsv`` keeps ``time`` as an astropy ``Time`` (format jd, scale tdb); any other suffix writes CSV with
    ``time`` as a float JD. ``truth`` is a TESS :class:`SimResult`, its ``truth`` dict or the ``moving`` part.
    """
    from astropy import units as u
    from astropy.table import Table
    from astropy.time import Time

    from ..core.atomic import atomic_output

    if isinstance(truth, SimResult):
        truth = truth.truth
    moving = truth.get("moving", truth) if isinstance(truth, dict) else None
    if not isinstance(moving, dict) or not {"time_jd", "ra", "dec"} <= set(moving):
        raise InvalidInputError(
            "write_path_table needs a TESS truth with a 'moving' section (time_jd, ra, dec)"
        )
    path = Path(path)
    jd = np.asarray(moving["time_jd"], dtype=float)
    ecsv = path.suffix.lower() == ".ecsv"
    table = Table()
    table["time"] = Time(jd, format="jd", scale="tdb") if ecsv else jd
    table["ra"] = np.asarray(moving["ra"], dtype=float) * u.deg
    table["dec"] = np.asarray(moving["dec"], dtype=float) * u.deg
    with atomic_output(path) as tmp:
        table.write(tmp, format="ascii.ecsv" if ecsv else "ascii.csv", overwrite=True)
    return path
