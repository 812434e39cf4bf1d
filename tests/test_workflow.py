"""The embedded demo run through Snakemake in a temporary directory; the second run has nothing to do."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from PIL import Image
from workflow_runs import SNAKEMAKE, snakemake

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def run_snakemake(workdir: Path, config: str = "config.example.yaml", *extra: str):
    return snakemake(workdir, config, "--cores", "2", *extra, epoch=None, timeout=900)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    shutil.copy(ROOT / "config.example.yaml", workdir)
    first = run_snakemake(workdir)
    assert first.returncode == 0, first.stderr[-4000:]
    return workdir, first


def test_demo_products(demo_run):
    workdir, _ = demo_run
    res = workdir / "results"
    config = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    # image cutouts: one FITS per target, CUTOUT of the requested FITS dimensions
    index = json.loads((res / "image_cutouts" / "f606w" / "batch-0000.json").read_text())
    assert set(index["products"]) == {"skycell-overlap", "knot"}
    with fits.open(workdir / index["products"]["skycell-overlap"][0]) as hdul:
        assert hdul[1].name == "CUTOUT"
        assert (hdul[1].header["NAXIS1"], hdul[1].header["NAXIS2"]) == (200, 300)
    # ASDF cutout
    assert (res / "image_cutouts" / "roman" / "roman-field.asdf").is_file()
    # combined cutout
    combined = json.loads((res / "combine" / "f606w-mosaic" / "index.json").read_text())
    assert set(combined["products"]) == {"skycell-overlap", "knot"}
    # colour PNG from three bands
    img = Image.open(res / "render" / "colour" / "skycell-overlap.png")
    assert img.mode == "RGB" and img.size == (200, 300)
    # cube and TPFs
    cube = res / "cubes" / "tess-s0011-1-1-cube.fits"
    with fits.open(cube) as hdul:
        assert hdul[1].data.shape[2] == config["demo"]["tess"]["n_ffi"]
    tpfs = json.loads((res / "cube_cutouts" / "tess" / "tess-s0011-1-1" / "batch-0000.json").read_text())
    assert set(tpfs["products"]) == {"tess-variable", "tess-bright", "tess-edge"}
    with fits.open(workdir / tpfs["products"]["tess-edge"][0]) as hdul:
        aperture = hdul["APERTURE"].data
        assert 0 < aperture.sum() < aperture.size  # half off the simulated window: padded, marked
    plots = json.loads(
        (res / "cube_cutouts" / "tess" / "tess-s0011-1-1" / "plots" / "batch-0000.json").read_text()
    )
    assert all((workdir / p).is_file() for files in plots["products"].values() for p in files)
    # footprint-matched cutouts against the locally built cube
    fp = json.loads((res / "footprint_cutouts" / "local-sky" / "batch-0000.json").read_text())
    assert set(fp["products"]) == {"tess-variable", "tess-bright"}
    assert all(Path(p).name.startswith("tess-s0011-1-1_") for files in fp["products"].values() for p in files)
    # the moving target: followed through the cube, re-centred on its path every cadence
    with fits.open(res / "paths" / "demo-asteroid.fits") as hdul:
        pixels = hdul["PIXELS"].data
        assert {"TGT_X", "TGT_Y", "TGT_RA", "TGT_DEC"} <= set(pixels.columns.names)
        flux = np.asarray(pixels["FLUX"], dtype=float)
        assert flux.shape[1:] == (9, 9) and len(flux) >= 12
        residual = flux - np.nanmedian(flux, axis=0)
        peaks = [np.unravel_index(np.nanargmax(im), im.shape) for im in residual]
        assert all(abs(y - 4) <= 1 and abs(x - 4) <= 1 for y, x in peaks)
    # every job left a log
    assert any((res / "logs").rglob("*.log"))


def test_demo_variable_star_varies(demo_run):
    from skycut.pipeline.jobs.cube_cutouts import tpf_light_curve

    workdir, _ = demo_run
    truth = json.loads((workdir / "results" / "demo" / "tess" / "tess-s0011-1-1_truth.json").read_text())
    tpf = workdir / "results" / "cube_cutouts" / "tess" / "tess-s0011-1-1" / "tess-variable.fits"
    _, flux, _ = tpf_light_curve(str(tpf))
    expected = np.asarray(truth["variable"]["flux"])
    # aperture flux follows the injected variation (plus sky and a little PSF loss)
    assert np.corrcoef(flux, expected)[0, 1] > 0.99


def test_second_run_has_nothing_to_do(demo_run):
    workdir, _ = demo_run
    again = run_snakemake(workdir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Nothing to be done" in again.stdout + again.stderr


def test_invalid_manifest_stops_before_any_job(tmp_path):
    bad = {
        "targets": [{"name": "x", "coordinates": "10 20", "size": -1}],
        "inputs": {"a": {"paths": ["a.fits"], "format": "tiff"}},
    }
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = run_snakemake(tmp_path, "bad.yaml")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "targets[0].size" in out and "inputs.a.format" in out
    assert not (tmp_path / "results").exists()
    # the same messages as `skycut validate`
    cli = subprocess.run(
        [sys.executable, "-m", "skycut.pipeline.cli", "validate", "bad.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2
    for line in cli.stderr.splitlines()[1:]:
        assert line.strip() in out


def test_glob_matching_nothing_names_the_field(tmp_path):
    manifest = {
        "targets": [{"name": "x", "coordinates": "10 20"}],
        "cubes": {"s1": {"files": ["ffis/*ffic.fits"], "sector": 1, "camera": 1, "ccd": 1}},
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(manifest))
    proc = run_snakemake(tmp_path, "m.yaml")
    assert proc.returncode != 0
    assert "cubes.s1.files: no file matches 'ffis/*ffic.fits'" in proc.stdout + proc.stderr


def test_missing_input_file_is_named(tmp_path):
    manifest = {
        "targets": [{"name": "x", "coordinates": "10 20"}],
        "inputs": {"a": {"paths": ["data/nothing-here.fits"]}},
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(manifest))
    proc = run_snakemake(tmp_path, "m.yaml")
    assert proc.returncode != 0
    assert "data/nothing-here.fits" in proc.stdout + proc.stderr


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return path


def test_snakemake_lint_and_snakefmt_report_nothing():
    lint = subprocess.run(
        [*SNAKEMAKE, "--lint", "--configfile", "config.example.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert lint.returncode == 0, lint.stderr[-3000:]
    assert "Lints for" not in lint.stdout + lint.stderr
    fmt = subprocess.run(
        [_tool("snakefmt"), "--check", "Snakefile", "rules/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def _tiny_hst_manifest(output_dir: str) -> dict:
    from skycut.simulate import demo_file_names
    from skycut.simulate.images import HST_CENTER

    demo = {"seed": 1, "hst": {"bands": ["f606w"], "shape": [64, 64]}}
    demo_dir = str(Path(output_dir) / "demo")
    first = demo_file_names(demo, demo_dir)["hst"][0]
    return {
        "output_dir": output_dir,
        "demo": demo,
        "targets": [{"name": "t1", "coordinates": f"{HST_CENTER[0]:.8f} {HST_CENTER[1]:.8f}", "size": 9}],
        "inputs": {"f606w": {"paths": [f"./{first}" if not first.startswith("/") else first]}},
    }


@pytest.mark.parametrize(("output_dir", "prefix"), [("./results", "results/"), (".", ""), ("out/", "out/")])
def test_output_dir_spellings_run(tmp_path, output_dir, prefix):
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(_tiny_hst_manifest(output_dir)))
    dry = run_snakemake(tmp_path, "m.yaml", "-n")
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    proc = run_snakemake(tmp_path, "m.yaml")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    index = json.loads((tmp_path / f"{prefix}image_cutouts/f606w/batch-0000.json").read_text())
    assert index["products"] == {"t1": [f"{prefix}image_cutouts/f606w/t1.fits"]}
    assert (tmp_path / f"{prefix}logs/image_cutouts/f606w/batch-0000.log").is_file()


def test_failed_job_log_has_the_traceback(tmp_path):
    (tmp_path / "bad.fits").write_text("not a FITS file")
    manifest = {"targets": [{"name": "x", "coordinates": "10 20"}], "inputs": {"a": {"paths": ["bad.fits"]}}}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(manifest))
    proc = run_snakemake(tmp_path, "m.yaml")
    assert proc.returncode != 0
    log = (tmp_path / "results" / "logs" / "image_cutouts" / "a" / "batch-0000.log").read_text()
    assert "job failed" in log and "Traceback" in log and "bad.fits" in log
    assert not (tmp_path / "results" / "image_cutouts" / "a" / "batch-0000.json").exists()
