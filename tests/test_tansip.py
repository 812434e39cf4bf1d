"""skycut.core.tansip.TanSip, the one TAN-SIP transform and SIP inverse, against astropy's WCS."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.coordinates import FK5, ICRS, SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from skycut.core.tansip import TanSip


def _header(frame: str | None = None, sip: bool = True) -> dict:
    h = {
        "CTYPE1": "RA---TAN-SIP" if sip else "RA---TAN",
        "CTYPE2": "DEC--TAN-SIP" if sip else "DEC--TAN",
        "CRPIX1": 1024.5,
        "CRPIX2": 1000.25,
        "CRVAL1": 206.8,
        "CRVAL2": -37.2,
        "CD1_1": -5.8e-3,
        "CD1_2": 1.1e-4,
        "CD2_1": -9.0e-5,
        "CD2_2": -5.7e-3,
    }
    if sip:
        h.update(
            {
                "A_ORDER": 2,
                "B_ORDER": 2,
                "A_2_0": 2.1e-6,
                "A_1_1": -3.3e-6,
                "A_0_2": 1.2e-6,
                "B_2_0": -1.5e-6,
                "B_1_1": 2.7e-6,
                "B_0_2": 3.1e-6,
            }
        )
    if frame == "FK5":
        h.update({"RADESYS": "FK5", "EQUINOX": 2000.0})
    elif frame == "ICRS":
        h["RADESYS"] = "ICRS"
    return h


def _astropy(h: dict) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(fits.Header(h), relax=True)


@pytest.mark.parametrize("frame", [None, "ICRS", "FK5"])
@pytest.mark.parametrize("sip", [True, False])
def test_forward_and_inverse_match_astropy(frame, sip):
    h = _header(frame, sip)
    mine, ref = TanSip(h), _astropy(h)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 2048, 500), rng.uniform(0, 2048, 500)
    ra, dec = mine.all_pix2world(x, y, 0)
    rra, rdec = ref.all_pix2world(x, y, 0)
    assert np.max(np.abs(ra - rra)) < 1e-10 and np.max(np.abs(dec - rdec)) < 1e-10
    px, py = mine.all_world2pix(rra, rdec, 0)
    assert np.max(np.abs(px - x)) < 1e-6 and np.max(np.abs(py - y)) < 1e-6  # Newton to 1e-8 px
    qx, qy = ref.all_world2pix(rra, rdec, 0, tolerance=1e-10, maxiter=50)
    assert np.max(np.abs(px - qx)) < 1e-6 and np.max(np.abs(py - qy)) < 1e-6


def test_frames():
    assert TanSip(_header()).frame == "ICRS"
    assert TanSip(_header("FK5")).frame == "FK5"
    assert TanSip.supports(_header("FK5"))
    assert not TanSip.supports({**_header(), "RADESYS": "FK5", "EQUINOX": 1950.0})
    assert not TanSip.supports({**_header(), "EQUINOX": 1950.0})  # FK4 by wcslib's default


def test_icrs_to_fk5_matches_astropy_skycoord():
    """The image path converts ICRS targets to the image's frame with SkyCoord; TanSip must give the same."""
    mine = TanSip(_header("FK5"))
    rng = np.random.default_rng(5)
    ra, dec = rng.uniform(0, 360, 200), rng.uniform(-89, 89, 200)
    lon, lat = mine.icrs_to_native(ra, dec)
    ref = SkyCoord(ra, dec, unit="deg", frame=ICRS()).transform_to(FK5(equinox="J2000"))
    dlon = (lon - ref.ra.deg + 180.0) % 360.0 - 180.0
    assert (
        np.max(np.abs(dlon * np.cos(np.radians(lat)))) < 1e-12 and np.max(np.abs(lat - ref.dec.deg)) < 1e-12
    )
    shift = np.hypot(((lon - ra + 180) % 360 - 180) * np.cos(np.radians(dec)), lat - dec) * 3.6e6  # mas
    assert 10 < np.median(shift) < 40  # the frame bias is really applied
    assert TanSip(_header("ICRS")).icrs_to_native(ra, dec)[0] is not None
    np.testing.assert_array_equal(TanSip(_header("ICRS")).icrs_to_native(ra, dec)[0], ra)
