"""Shared, session-scoped simulated data sets (made once per test session with skycut.simulate).

* ``sim_tess``  - 6 SPOC-like FFIs, sector 11 camera 1 CCD 1, a 120 x 140 (rows x cols) window of the CCD;
  the variable star and the moving source's whole path lie inside it.
* ``sim_hst``   - HST skycells x05y09/x06y09 in f435w, f606w, f814w, 300 x 300 pixels each.
* ``sim_roman`` - one Roman WFI Level 2 ASDF image, 256 x 256.

Each returns a :class:`skycut.simulate.SimResult` (``.files``, ``.truth``, ``.truth_file``). Tests must not
modify these files: copy them first (``shutil.copy``) if a test needs to change one.
"""

from __future__ import annotations

import pytest

from skycut.simulate import SimResult, make_hst_images, make_roman_asdf, make_tess_ffis

TESS_SHAPE = (120, 140)
TESS_N_FFI = 6
HST_SHAPE = (300, 300)
ROMAN_SHAPE = (256, 256)


@pytest.fixture(scope="session")
def sim_tess(tmp_path_factory) -> SimResult:
    """6 small SPOC-like FFIs (sector 11, camera 1, CCD 1, shape (120, 140))."""
    out = tmp_path_factory.mktemp("sim_tess")
    return make_tess_ffis(out, sector=11, camera=1, ccd=1, n_ffi=TESS_N_FFI, shape=TESS_SHAPE, seed=0)


@pytest.fixture(scope="session")
def sim_hst(tmp_path_factory) -> SimResult:
    """Two overlapping HST skycells in each of f435w, f606w, f814w (300 x 300 each)."""
    out = tmp_path_factory.mktemp("sim_hst")
    return make_hst_images(out, bands=("f435w", "f606w", "f814w"), shape=HST_SHAPE, seed=0)


@pytest.fixture(scope="session")
def sim_roman(tmp_path_factory) -> SimResult:
    """One Roman-like WFI Level 2 ASDF image (256 x 256)."""
    out = tmp_path_factory.mktemp("sim_roman")
    return make_roman_asdf(out, shape=ROMAN_SHAPE, seed=0)
