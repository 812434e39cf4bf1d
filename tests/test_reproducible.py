"""Two runs of the demo in two directories, with the same manifest, inputs and SOURCE_DATE_EPOCH, give
byte-identical products (issue 10); every product records the skycut version and its manifest hash."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EPOCH = "1700000000"

pytestmark = pytest.mark.slow


def _run_demo(workdir: Path) -> Path:
    shutil.copy(ROOT / "config.example.yaml", workdir)
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--cores",
            "2",
            "--configfile",
            "config.example.yaml",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir / "results"


def _products(results: Path) -> dict[str, bytes]:
    """Every file under ``results`` but the logs, the benchmarks and the hidden stat caches of the indexes."""
    return {
        str(p.relative_to(results)): p.read_bytes()
        for p in sorted(results.rglob("*"))
        if p.is_file()
        and not str(p.relative_to(results)).startswith(("logs/", "benchmarks/"))
        and not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    return [_products(_run_demo(tmp_path_factory.mktemp(name))) for name in ("first", "second")]


def test_two_runs_give_identical_bytes(two_runs):
    first, second = two_runs
    assert sorted(first) == sorted(second)
    assert len(first) > 80  # the whole demo: simulated inputs, cutouts, cubes, TPFs, images, indexes, summary
    differ = sorted(name for name in first if first[name] != second[name])
    assert differ == []


def test_products_embed_no_run_directory(two_runs, tmp_path_factory):
    first, _ = two_runs
    base = str(tmp_path_factory.getbasetemp())
    assert [name for name, data in first.items() if base.encode() in data] == []


def test_every_product_records_version_and_hash(two_runs, tmp_path_factory):
    from astropy.io import fits
    from PIL import Image

    import skycut

    results = tmp_path_factory.getbasetemp() / "first0" / "results"
    first, _ = two_runs
    indexes = [
        json.loads(first[name])
        for name in first
        if name.endswith(".json") and "/demo/" not in f"/{name}" and "provenance" in json.loads(first[name])
    ]
    assert len(indexes) >= 10
    stamped = 0
    for index in indexes:
        assert index["provenance"]["skycut_version"] == skycut.__version__
        hashes = index["provenance"]["manifest_hashes"]
        for item, files in index["products"].items():
            for file in files:
                path = results.parent / file
                if file.endswith(".fits"):
                    assert fits.getval(path, "SKYCHASH") == hashes[item], file
                    assert fits.getval(path, "SKYCVER") == skycut.__version__
                elif file.endswith(".png"):
                    with Image.open(path) as img:
                        assert img.text["skycut manifest hash"] == hashes[item], file
                stamped += 1
    assert stamped >= 20
    for declared in ("cubes/tess-s0011-1-1-cube.fits", "paths/demo-asteroid.fits"):
        assert len(fits.getval(results / declared, "SKYCHASH")) == 64
