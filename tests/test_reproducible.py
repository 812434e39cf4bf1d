"""Two runs of the demo in two directories, with the same manifest, inputs and SOURCE_DATE_EPOCH, give
byte-identical products (issue 10); every product records the skycut version and its manifest hash."""

from __future__ import annotations

import json

import pytest
from workflow_runs import differing, products, run_demo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    return [products(run_demo(tmp_path_factory.mktemp(name))) for name in ("first", "second")]


def test_two_runs_give_identical_bytes(two_runs):
    first, second = two_runs
    assert len(first) > 80  # the whole demo: simulated inputs, cutouts, cubes, TPFs, images, indexes, summary
    assert differing(first, second) == []


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
    frames_hash = fits.getval(results / "paths/demo-asteroid.fits", "SKYCHASH")
    with Image.open(results / "paths/demo-asteroid_frames.png") as img:
        assert img.text["skycut manifest hash"] == frames_hash
    with Image.open(results / "paths/demo-asteroid_frames.gif") as img:
        assert img.info["comment"].decode().endswith(f"skycut manifest hash: {frames_hash}")
        assert img.n_frames > 1
