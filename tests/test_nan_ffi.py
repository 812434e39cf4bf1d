"""FFIs whose science image has no finite pixel: CubeFactory keeps them, warns naming the file, and flags their
cadence with skycut's DQUALITY bit (cube_table.NONFINITE_FFI_BIT), which TPFs cut from the cube carry in QUALITY.
Small simulated FFIs (skycut.simulate), offline."""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from skycut.tess.cube_cutout import cube_cut
from skycut.tess.cube_factory import CubeFactory
from skycut.tess.cube_table import NONFINITE_FFI_BIT

SHAPE = (40, 36)  # (rows, columns) of the test FFIs
N_FFI = 6
BAD = 3  # the FFI made all-NaN in make_cube tests (its SPOC DQUALITY is 0)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """Six small SPOC-like FFIs (sector 11, camera 1, CCD 1), in time order, with their truth."""
    from skycut.simulate import make_tess_ffis

    return make_tess_ffis(tmp_path_factory.mktemp("ffis"), n_ffi=N_FFI, shape=SHAPE, seed=3)


@pytest.fixture(autouse=True)
def _fixed_date(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def _copy(files, dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, dest / Path(p).name)) for p in files]


def _spoil(path: Path, fill: str = "nan") -> None:
    """Make the science image (ext 1) of an FFI non-finite in place: all NaN, or NaN, +inf and -inf mixed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path, mode="update") as hdul:
            data = hdul[1].data
            data[:] = np.nan
            if fill == "mixed":
                data[::3] = np.inf
                data[1::3] = -np.inf


def _spoc_quality(files) -> np.ndarray:
    return np.array([fits.getheader(f, 1).get("DQUALITY", 0) for f in files], dtype=np.int64)


def _warnings_naming(caplog, path: Path) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("skycut") and str(path) in r.getMessage()
    ]


def _tpf_quality(cube: Path, truth) -> np.ndarray:
    v = truth["variable"]
    hdul = cube_cut(str(cube), f"{v['ra']} {v['dec']}", 5, memory_only=True)
    return np.asarray(hdul["PIXELS"].data["QUALITY"], dtype=np.int64)


def test_normal_ffis_not_flagged(sim, tmp_path, caplog):
    caplog.set_level("WARNING", logger="skycut")
    cube = tmp_path / "cube.fits"
    CubeFactory().make_cube(sim.files, str(cube), verbose=False)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with fits.open(cube) as hdul:
        assert list(hdul[2].data["DQUALITY"]) == list(_spoc_quality(sim.files))
    assert not np.any(_tpf_quality(cube, sim.truth) & NONFINITE_FFI_BIT)


@pytest.mark.parametrize(
    ("kwargs", "fill"),
    [
        ({}, "nan"),  # direct reads, one block
        ({"max_memory": 0.00003}, "mixed"),  # direct reads, many small blocks, NaN and +-inf
        ({"max_memory": 0.00003, "strategy": "scratch"}, "nan"),  # rows read back from the HDF5 scratch file
    ],
)
def test_all_nan_ffi_flagged(sim, tmp_path, caplog, kwargs, fill):
    files = _copy(sim.files, tmp_path / "ffis")
    _spoil(files[BAD], fill)
    caplog.set_level("WARNING", logger="skycut")
    kwargs = dict(kwargs)
    memory = kwargs.pop("max_memory", 50)
    factory = CubeFactory(memory, **kwargs)
    cube = tmp_path / "cube.fits"
    factory.make_cube([str(f) for f in files], str(cube), verbose=False)
    assert factory._strategy_used == kwargs.get("strategy", "direct")
    assert (factory._num_blocks > 1) == (memory < 1)

    assert len(_warnings_naming(caplog, files[BAD])) == 1
    assert not any(_warnings_naming(caplog, f) for k, f in enumerate(files) if k != BAD)

    expected = _spoc_quality(sim.files)
    expected[BAD] |= NONFINITE_FFI_BIT
    with fits.open(cube) as hdul:
        table = hdul[2].data
        assert list(table["FFI_FILE"]) == [f.name for f in files]
        assert list(table["DQUALITY"]) == list(expected)
        flux = hdul[1].data[..., 0]
        assert not np.isfinite(flux[:, :, BAD]).any()  # the FFI stays in the cube, as it was
        assert np.isfinite(np.delete(flux, BAD, axis=2)).all()

    quality = _tpf_quality(cube, sim.truth)
    assert list(quality) == list(expected)
    assert list(np.flatnonzero(quality & NONFINITE_FFI_BIT)) == [BAD]


def test_partly_nan_ffi_not_flagged(sim, tmp_path, caplog):
    """Only an FFI with no finite pixel at all is flagged: one finite pixel (in the last row) is enough."""
    files = _copy(sim.files, tmp_path / "ffis")
    _spoil(files[BAD])
    with fits.open(files[BAD], mode="update") as hdul:
        hdul[1].data[-1, -1] = 12.5
    caplog.set_level("WARNING", logger="skycut")
    cube = tmp_path / "cube.fits"
    CubeFactory(0.00003).make_cube([str(f) for f in files], str(cube), verbose=False)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with fits.open(cube) as hdul:
        assert list(hdul[2].data["DQUALITY"]) == list(_spoc_quality(sim.files))


def test_update_cube_flags_added_all_nan_ffi(sim, tmp_path, caplog):
    files = _copy(sim.files, tmp_path / "ffis")
    first, added = files[:4], files[4:]
    _spoil(first[1])  # flagged by make_cube; update_cube keeps the flag
    _spoil(added[-1])  # the last FFI: SPOC DQUALITY 2048 (stray light), the bit is ORed in
    cube = tmp_path / "cube.fits"
    caplog.set_level("WARNING", logger="skycut")
    CubeFactory().make_cube([str(f) for f in first], str(cube), verbose=False)
    assert len(_warnings_naming(caplog, first[1])) == 1
    caplog.clear()

    CubeFactory().update_cube([str(f) for f in added], str(cube), verbose=False)
    assert len(_warnings_naming(caplog, added[-1])) == 1
    assert not any(_warnings_naming(caplog, f) for f in files[:-1])  # old planes are not warned of again

    expected = _spoc_quality(sim.files)
    assert expected[-1] == 2048
    expected[[1, N_FFI - 1]] |= NONFINITE_FFI_BIT
    with fits.open(cube) as hdul:
        assert list(hdul[2].data["FFI_FILE"]) == [f.name for f in files]
        assert list(hdul[2].data["DQUALITY"]) == list(expected)
    quality = _tpf_quality(cube, sim.truth)
    assert list(quality) == list(expected)
    assert list(np.flatnonzero(quality & NONFINITE_FFI_BIT)) == [1, N_FFI - 1]
