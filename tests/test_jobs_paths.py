"""The moving-target job (skycut.pipeline.jobs.paths.moving_target): a missing or failing cube does not stop the
other cubes of the path; the job fails only when no cube can be cut."""

from __future__ import annotations

import logging

import pytest
from astropy.io import fits

from skycut.exceptions import InvalidQueryError
from skycut.pipeline.jobs.paths import moving_target
from skycut.pipeline.sections import PathSpec


@pytest.fixture(scope="module")
def sim_path(sim_tess, tmp_path_factory):
    """A cube of the simulated FFIs and the simulated moving source's path table."""
    from skycut.simulate import write_path_table
    from skycut.tess.cube_factory import CubeFactory

    out = tmp_path_factory.mktemp("jobs_paths")
    cube = CubeFactory().make_cube(
        [str(f) for f in sim_tess.files], str(out / "tess-s0011-1-1-cube.fits"), verbose=False
    )
    table = write_path_table(sim_tess.truth, out / "path.csv")
    return str(cube), str(table)


def test_a_missing_cube_does_not_stop_the_others(sim_path, tmp_path, caplog):
    cube, table = sim_path
    missing = str(tmp_path / "tess-s0012-1-1-cube.fits")  # never made
    spec = PathSpec(table=table, size=[9, 7], target="sim", cubes=[missing, cube])
    output = str(tmp_path / "moving.fits")
    with caplog.at_level(logging.WARNING, logger="skycut"):
        assert moving_target(spec, [missing, cube], output) == output
    with fits.open(output) as hdul:
        assert len(hdul[1].data) > 0  # cadences from the good cube
        assert hdul[0].header["OBJECT"] == "sim"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(missing in m and "cannot open cube" in m for m in warned), warned  # the cube and the cause


def test_no_cube_that_can_be_cut_fails_naming_each(tmp_path, sim_path):
    _, table = sim_path
    missing = [str(tmp_path / "a-cube.fits"), str(tmp_path / "b-cube.fits")]
    spec = PathSpec(table=table, size=5, cubes=missing)
    with pytest.raises(InvalidQueryError, match="no cube could be cut") as info:
        moving_target(spec, missing, str(tmp_path / "moving.fits"))
    assert all(m in str(info.value) for m in missing)
    assert not (tmp_path / "moving.fits").exists()
