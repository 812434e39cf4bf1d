"""`snakemake --report` on the demo: every kind of image is in the report, with captions from the manifest."""

from __future__ import annotations

import json
import re
import zipfile

import numpy as np
import pytest
from PIL import Image
from workflow_runs import run_demo, snakemake

pytestmark = pytest.mark.slow

#: gallery path (under report/data/raw/<id>/) -> what its caption must say
EXPECTED = {
    "grey/f606w/knot/knot.png": [
        "Greyscale image of <strong>knot</strong>",
        "input set <strong>f606w</strong>",
    ],
    "grey/roman/roman-field/roman-field.png": [
        "<strong>roman-field</strong>",
        "input set <strong>roman</strong>",
    ],
    "grey/f606w-mosaic/skycell-overlap/skycell-overlap.png": [
        "combined cutout of <strong>skycell-overlap</strong>",
        "combine group\n<strong>f606w-mosaic</strong>",
    ],
    "colour/skycell-overlap.png": [
        "Colour composite of <strong>skycell-overlap</strong>",
        "red <strong>f814w</strong>, green <strong>f606w</strong>, blue <strong>f435w",
    ],
    "tess/tess-s0011-1-1/tess-variable.png": [
        "<strong>tess-variable</strong>",
        "TESS sector <strong>11</strong>",
    ],
    "demo-asteroid/frames.png": ["Moving target <strong>2019 SK11 (simulated)</strong>"],
    "demo-asteroid/frames.gif": ["Moving target <strong>2019 SK11 (simulated)</strong>"],
}


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("report")
    run_demo(workdir)
    rep = snakemake(workdir, "config.example.yaml", "--report", "report.zip", timeout=600)
    assert rep.returncode == 0, rep.stderr[-4000:]
    return workdir, zipfile.ZipFile(workdir / "report.zip")


def _results(html: str) -> dict:
    """The report's ``var results = {...}`` (one entry per file: caption, labels, category, mime type)."""
    found = re.search(r"var results = (\{.*?\});\n", html, re.S)
    assert found, "no results table in report.html"
    return json.loads(found.group(1))


def test_report_lists_every_kind_of_image_with_its_caption(demo_report):
    workdir, archive = demo_report
    names = archive.namelist()
    raw = [n.split("/", 4)[-1] for n in names if n.startswith("report/data/raw/")]
    # 5 grey images (3 input-set, 2 combined), 2 colour, 3 light curves, 3 mean images, strip + GIF
    assert len(raw) == 15, raw
    for path in EXPECTED:
        assert path in raw, f"{path} not in the report: {raw}"
    assert sum(p.startswith("tess/tess-s0011-1-1/") for p in raw) == 6  # light curves and mean images
    results = _results(archive.read("report/report.html").decode())
    entries = list(results.values())
    assert len(entries) == 15
    html = archive.read("report/report.html").decode()
    categories = json.loads(re.search(r"var categories = (\{.*?\});\n", html, re.S).group(1))
    counts = {name: sum(len(files) for files in sub.values()) for name, sub in categories.items()}
    assert counts == {
        "Images": 3,
        "Combined cutouts": 2,
        "Colour composites": 2,
        "TESS light curves": 3,
        "TESS mean images": 3,
        "Moving targets": 2,
    }, counts
    assert set(categories["Images"]) == {"f606w", "roman"}  # subcategory: the input set
    by_file = {}
    for e in entries:
        by_file.setdefault(e["filename"], []).append(e)
    for path, phrases in EXPECTED.items():
        (entry, *_) = by_file[path]
        caption = entry["caption"].replace("\\n", "\n")
        for phrase in phrases:
            assert phrase in caption, f"{path}: {phrase!r} not in {caption!r}"
    lc = [e for e in entries if e["filename"] == "tess/tess-s0011-1-1/tess-variable.png"]
    assert {e["labels"]["sector"] for e in lc} == {"11"}
    assert any("Light curve of" in e["caption"] for e in lc) and any(
        "Mean image of" in e["caption"] for e in lc
    )


def test_demo_products_changed_as_the_issue_asks(demo_report):
    workdir, _ = demo_report
    res = workdir / "results"
    # colour composite: the sky (most pixels of this sparse field) is grey
    pix = np.asarray(Image.open(res / "render" / "colour" / "skycell-overlap.png"), dtype=float).reshape(
        -1, 3
    )
    medians = np.median(pix, axis=0)
    assert medians.max() - medians.min() <= max(0.03 * medians.mean(), 1.0), medians
    # the moving target's GIF has one frame per cadence, the strip shows them all
    with Image.open(res / "paths" / "demo-asteroid_frames.gif") as gif:
        assert gif.n_frames == 24
    with Image.open(res / "paths" / "demo-asteroid_frames.png") as strip:
        assert strip.mode == "RGB" and strip.width > strip.height
    # the constant bright star's light curve is flat (the plain sum rose by ~1% with the sky)
    from skycut.pipeline.jobs.cube_cutouts import measure_light_curve

    lc = measure_light_curve(str(res / "cube_cutouts" / "tess" / "tess-s0011-1-1" / "tess-bright.fits"))
    good = lc.quality == 0
    assert np.std(lc.flux[good]) < 2 * np.median(lc.flux_err[good])
    assert (lc.background[-1] - lc.background[0]) > 20 * np.median(lc.flux_err)
