"""The cube-cutout job behind the workflow, exercised directly (no Snakemake)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from skycut.pipeline.jobs.cube_cutouts import cut_cube
from skycut.pipeline.manifest import validate_manifest


@pytest.fixture(scope="module")
def cube(sim_tess, tmp_path_factory):
    from skycut.tess.cube_factory import CubeFactory

    out = tmp_path_factory.mktemp("cube") / "c-cube.fits"
    return CubeFactory().make_cube([str(f) for f in sim_tess.files], cube_file=str(out), verbose=False)


def _manifest(cube, targets):
    return validate_manifest({"targets": targets, "cube_cutouts": {"tpf": {"cubes": [str(cube)]}}})


def test_cut_cube_batch_skips_off_ccd_targets(sim_tess, cube, tmp_path):
    var = sim_tess.truth["variable"]
    m = _manifest(
        cube,
        [
            {"name": "var", "coordinates": [var["ra"], var["dec"]], "size": 7},
            {"name": "var9", "coordinates": [var["ra"], var["dec"]], "size": 9},
            {"name": "nowhere", "coordinates": [(var["ra"] + 180) % 360, -var["dec"]], "size": 7},
        ],
    )
    index = cut_cube(str(cube), m.targets, m.cube_cutouts["tpf"], str(tmp_path / "tpf" / "b.json"))
    assert set(index["products"]) == {"var", "var9"}
    assert "nowhere" in index["skipped"]
    assert (
        "CCD" in index["skipped"]["nowhere"] or "cube" in index["skipped"]["nowhere"]
    )  # the library's reason
    assert index["cube"] == str(cube)
    with fits.open(index["products"]["var9"][0]) as hdul:
        assert hdul["PIXELS"].data["FLUX"].shape[1:] == (9, 9)
        flux = hdul["PIXELS"].data["FLUX"]
        assert np.isfinite(flux).all()


def test_cube_cutout_job_loads_no_astropy_coordinates(sim_tess, cube, tmp_path):
    """Decimal targets: the job hands the library resolved floats, so astropy.coordinates is never imported."""
    var = sim_tess.truth["variable"]
    targets = [
        {"name": "var", "coordinates": f"{var['ra']} {var['dec']}", "size": 5},
        {"name": "list", "coordinates": [var["ra"], var["dec"]], "size": [5, 7]},
    ]
    index = tmp_path / "out" / "batch-0000.json"
    code = f"""
import json, sys
from skycut.pipeline.manifest import validate_manifest
from skycut.pipeline.jobs.cube_cutouts import cut_cube
m = validate_manifest({{"targets": {targets!r}, "cube_cutouts": {{"tpf": {{"cubes": [{str(cube)!r}]}}}}}})
index = cut_cube({str(cube)!r}, m.targets, m.cube_cutouts["tpf"], {str(index)!r})
print(json.dumps({{"products": sorted(index["products"]), "coordinates": "astropy.coordinates" in sys.modules}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["products"] == ["list", "var"]
    assert report["coordinates"] is False
    with fits.open(tmp_path / "out" / "list.fits") as hdul:
        assert hdul["PIXELS"].data["FLUX"].shape[1:] == (7, 5)
