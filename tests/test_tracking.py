"""Tracked products (issue 10): provenance stamps and manifest hashes, damaged products found from the indexes,
only the damaged or changed batches rerun, and the run's summary (``fail_on_skip``)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from workflow_runs import snakemake

from skycut.core.batch import BatchResult
from skycut.core.provenance import canonical_json, entry_hash, settle_asdf_history
from skycut.core.stamps import stamp_product
from skycut.pipeline.jobs.index import damaged_products, provenance, write_index
from skycut.pipeline.manifest import validate_manifest
from skycut.pipeline.plan import Plan, target_entry
from skycut.pipeline.summary import collect, finish_run, format_summary

ROOT = Path(__file__).resolve().parents[1]
EPOCH = "1700000000"


# ------------------------------------------------------------------------------------------ manifest hashes
def test_entry_hash_is_the_sha256_of_the_canonical_json():
    entry = {"paths": ["a.fits"], "batch_size": 2, "fill_value": None}
    target = {"name": "M 31", "coordinates": "10.68 41.27", "resolved": {"ra": 10.68, "dec": 41.27}}
    text = (
        '{"entry":{"batch_size":2,"fill_value":null,"paths":["a.fits"]},"name":"set","section":"inputs",'
        '"target":{"coordinates":"10.68 41.27","name":"M 31","resolved":{"dec":41.27,"ra":10.68}}}'
    )
    assert canonical_json({"section": "inputs", "name": "set", "entry": entry, "target": target}) == text
    assert entry_hash("inputs", "set", entry, target) == hashlib.sha256(text.encode()).hexdigest()
    assert canonical_json({"n": "é"}) == '{"n":"\\u00e9"}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def _manifest(**changes) -> dict:
    manifest = {
        "demo": {"seed": 1, "hst": {"bands": ["f606w"], "shape": [64, 64]}},
        "target_defaults": {"size": 9},
        "targets": [
            {"name": "t1", "coordinates": "211.27128477 53.66062066"},
            {"name": "t2", "coordinates": "211.27140000 53.66070000"},
        ],
        "inputs": {
            "a": {
                "paths": ["results/demo/hst/hst_skycell-p0001x05y09_acs_wfc_f606w_drc.fits"],
                "batch_size": 1,
            },
            "b": {
                "paths": ["results/demo/hst/hst_skycell-p0001x05y09_acs_wfc_f606w_drc.fits"],
                "targets": ["t1"],
            },
        },
    }
    manifest.update(changes)
    return manifest


def test_one_changed_target_changes_only_its_hashes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = Plan(validate_manifest(_manifest()))
    before = {(j.key, j.batch): plan.job_provenance("inputs", j) for j in plan.image_jobs()}
    assert set(before) == {("a", "batch-0000"), ("a", "batch-0001"), ("b", "batch-0000")}
    assert list(before[("a", "batch-0001")]) == ["t2"]  # a batch's params hold its own targets only
    t1 = plan.manifest.target_map()["t1"]
    assert before[("a", "batch-0000")]["t1"] == entry_hash(
        "inputs", "a", plan.manifest.inputs["a"].model_dump(mode="json"), target_entry(t1)
    )
    assert target_entry(t1)["resolved"]["size"] == {
        "x": 9.0,
        "y": 9.0,
        "units": ["pixel", "pixel"],
        "label": "9-x-9",
    }
    changed = _manifest()
    changed["targets"][0]["size"] = 11
    after = {
        (j.key, j.batch): Plan(validate_manifest(changed)).job_provenance("inputs", j)
        for j in plan.image_jobs()
    }
    assert after[("a", "batch-0001")] == before[("a", "batch-0001")]
    assert after[("a", "batch-0000")] != before[("a", "batch-0000")]
    assert after[("b", "batch-0000")] != before[("b", "batch-0000")]
    # the default size is part of what a target resolves to
    defaults = Plan(validate_manifest(_manifest(target_defaults={"size": 7})))
    assert defaults.provenance("inputs", "a", ["t2"]) != plan.provenance("inputs", "a", ["t2"])


# ------------------------------------------------------------------------------------------ stamps
def test_fits_stamp_keeps_data_and_checksums(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    from skycut.core.atomic import write_hdulist

    data = np.arange(12.0).reshape(3, 4)
    primary = fits.PrimaryHDU()
    for k in range(33):  # 33 cards + the defaults + CHECKSUM/DATASUM: a full first block, so the header grows
        primary.header[f"KEY{k}"] = k
    for name, hdu in (("roomy.fits", fits.PrimaryHDU()), ("full.fits", primary)):
        path = write_hdulist(fits.HDUList([hdu, fits.ImageHDU(data, name="SCI")]), tmp_path / name)
        stamp_product(path, "ab" * 32)
        stamp_product(path, "cd" * 32)  # a second stamp replaces the first
        with fits.open(path, checksum=True) as hdul:
            hdul.verify("exception")
            header = hdul[0].header
            assert header["SKYCVER"] and header["SKYCHASH"] == "cd" * 32
            assert list(header.keys()).count("SKYCHASH") == 1
            assert sum("SKYCHASH: sha256" in str(c) for c in header["COMMENT"]) == 1
            assert "2023-11-14T22:13:20" in header.comments["CHECKSUM"]
            np.testing.assert_array_equal(hdul["SCI"].data, data)


def test_png_and_asdf_stamps(tmp_path):
    import asdf
    from PIL import Image

    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(tmp_path / "a.png")
    stamp_product(tmp_path / "a.png", "ef" * 32, version="9.9")
    with Image.open(tmp_path / "a.png") as img:
        img.load()
        assert img.text["skycut version"] == "9.9" and img.text["skycut manifest hash"] == "ef" * 32
        np.testing.assert_array_equal(np.asarray(img), np.arange(64, dtype=np.uint8).reshape(8, 8))
    asdf.AsdfFile({"data": np.arange(5)}).write_to(tmp_path / "a.asdf")
    stamp_product(tmp_path / "a.asdf", "01" * 32, version="9.9")
    with asdf.open(tmp_path / "a.asdf") as af:
        assert af.tree["skycut"] == {"version": "9.9", "manifest_hash": "01" * 32}
        np.testing.assert_array_equal(af.tree["data"], np.arange(5))
    assert not stamp_product(tmp_path / "a.txt", "01" * 32)  # no stamp for other formats (nothing read)


def test_asdf_history_extensions_are_sorted():
    import astropy.units as u
    from asdf import AsdfFile

    af = settle_asdf_history(AsdfFile({"q": 3 * u.m, "a": np.arange(3)}))
    uris = [str(e.get("extension_uri") or "") for e in af.tree["history"]["extensions"]]
    assert len(uris) >= 2 and uris == sorted(uris)


# ------------------------------------------------------------------------------------------ damage
def _index_with_products(tmp_path, hashes=None):
    for name in ("t1", "t2"):
        (tmp_path / f"{name}.png").write_bytes(
            b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + bytes(17) + name.encode()
        )
    result = BatchResult()
    result.add("t1", [tmp_path / "t1.fits"])
    result.add("t2", [tmp_path / "t2.fits"])
    for name in ("t1", "t2"):
        write_hdu = fits.HDUList([fits.PrimaryHDU(np.full((4, 4), len(name), dtype=np.int16))])
        write_hdu.writeto(tmp_path / f"{name}.fits")
    with provenance(hashes):
        return write_index(tmp_path / "batch-0000.json", result)


def test_index_records_and_stamps_its_products(tmp_path):
    index = _index_with_products(tmp_path, {"t1": "11" * 32, "t2": "22" * 32})
    assert index["provenance"]["manifest_hashes"] == {"t1": "11" * 32, "t2": "22" * 32}
    for name in ("t1", "t2"):
        path = str(tmp_path / f"{name}.fits")
        assert index["files"][path] == {
            "size": os.path.getsize(path),
            "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        }
        assert fits.getval(path, "SKYCHASH") == index["provenance"]["manifest_hashes"][name]
    assert damaged_products(tmp_path / "batch-0000.json") == {}


def test_damaged_products_missing_resized_or_rewritten(tmp_path):
    _index_with_products(tmp_path)
    index = tmp_path / "batch-0000.json"
    t1, t2 = tmp_path / "t1.fits", tmp_path / "t2.fits"
    os.utime(t2, ns=(0, 10**18))  # a new mtime, the same bytes: intact (the hash decides)
    assert damaged_products(index) == {}
    raw = bytearray(t2.read_bytes())
    st = t2.stat()
    raw[-1] ^= 0xFF  # the same size, the mtime put back: the ctime still tells
    t2.write_bytes(bytes(raw))
    os.utime(t2, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert damaged_products(index) == {str(t2): "content changed"}
    t1.unlink()
    assert damaged_products(index) == {str(t1): "missing", str(t2): "content changed"}
    t2.write_bytes(b"short")
    assert damaged_products(index)[str(t2)] == "size changed"


def _demo_indexes(tmp_path, monkeypatch, **changes):
    monkeypatch.chdir(tmp_path)
    plan = Plan(validate_manifest(_manifest(**changes)))
    for job in plan.image_jobs():
        result = BatchResult()
        for t in job.targets:
            if t.name == "t2":
                result.skip(t.name, "the cutout is entirely outside the image")
                continue
            path = Path(plan.image_index(job.key, job.batch)).with_name(f"{t.name}.fits")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * 2880)
            result.add(t.name, [path])
        write_index(plan.image_index(job.key, job.batch), result)
    return plan


def test_plan_lists_damaged_indexes_and_the_summary(tmp_path, monkeypatch):
    plan = _demo_indexes(tmp_path, monkeypatch)
    assert plan.damaged_indexes() == {}
    Path("results/image_cutouts/b/t1.fits").unlink()
    assert plan.damaged_indexes() == {
        "results/image_cutouts/b/batch-0000.json": {"results/image_cutouts/b/t1.fits": "missing"}
    }
    Path("results/image_cutouts/a/batch-0001.json").write_text("{not json")
    assert plan.damaged_indexes()["results/image_cutouts/a/batch-0001.json"] == {
        "results/image_cutouts/a/batch-0001.json": "unreadable index"
    }
    Path("results/image_cutouts/a/batch-0001.json").unlink()
    rows = collect(plan)
    assert [(r.job, r.item, r.status) for r in rows] == [
        ("image_cutouts/a/batch-0000.json", "t1", "made"),
        ("image_cutouts/a/batch-0001.json", "", "failed"),
        ("image_cutouts/b/batch-0000.json", "t1", "made"),
    ]
    assert format_summary(rows)[0] == "image_cutouts: 2 made, 0 skipped, 1 failed"


def test_fail_on_skip_sets_the_exit_status(tmp_path, monkeypatch):
    plan = _demo_indexes(tmp_path, monkeypatch)
    lines, status = finish_run(plan, succeeded=True)
    assert status == 0
    assert "image_cutouts: 2 made, 1 skipped, 0 failed" in lines
    assert "  skipped t2 (image_cutouts/a/batch-0001.json): the cutout is entirely outside the image" in lines
    table = Path("results/summary.tsv").read_text().splitlines()
    assert table[0] == "stage\tjob\titem\tstatus\tdetail"
    assert (
        "image_cutouts\timage_cutouts/a/batch-0001.json\tt2\tskipped\tthe cutout is entirely outside the image"
        in table
    )
    strict = _demo_indexes(tmp_path, monkeypatch, fail_on_skip=True)
    lines, status = finish_run(strict, succeeded=True)
    assert status == 1 and "fail_on_skip" in lines[-1]


# ------------------------------------------------------------------------------------------ snakemake runs
def _snakemake(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    return snakemake(workdir, "m.yaml", "--cores", "2", *extra, epoch=EPOCH, timeout=900)


def _planned(dry: subprocess.CompletedProcess) -> dict[str, str]:
    """Output -> reason of every job a dry run lists."""
    out = dry.stdout + dry.stderr
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        output = re.search(r"^\s+output: (.+)$", block, re.M)
        reason = re.search(r"^\s+reason: (.+)$", block, re.M)
        if output:
            for path in output.group(1).split(", "):
                jobs[path] = reason.group(1) if reason else ""
    return jobs


@pytest.mark.slow
def test_damaged_or_changed_batches_rerun_alone(tmp_path):
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(_manifest()))
    first = _snakemake(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "image_cutouts: 3 made, 0 skipped, 0 failed" in first.stderr
    res = tmp_path / "results" / "image_cutouts"
    t1, t2 = res / "a" / "t1.fits", res / "a" / "t2.fits"
    original = {p: p.read_bytes() for p in (t1, t2)}
    index = json.loads((res / "a" / "batch-0000.json").read_text())
    assert fits.getval(t1, "SKYCHASH") == index["provenance"]["manifest_hashes"]["t1"]
    assert "Nothing to be done" in _snakemake(tmp_path, "-n").stdout

    # a deleted product: its batch alone is forced, and comes back byte for byte
    t1.unlink()
    dry = _snakemake(tmp_path, "-n")
    assert _planned(dry) == {"results/image_cutouts/a/batch-0000.json": "Forced execution"}, dry.stdout[
        -3000:
    ]
    assert "rebuilding results/image_cutouts/a/batch-0000.json" in dry.stderr
    assert not t1.exists()  # a dry run changes nothing
    untouched = (res / "a" / "batch-0001.json").stat().st_mtime_ns
    again = _snakemake(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert t1.read_bytes() == original[t1]
    assert (res / "a" / "batch-0001.json").stat().st_mtime_ns == untouched

    # one byte changed, the size and mtime kept
    raw = bytearray(t2.read_bytes())
    st = t2.stat()
    raw[-100] ^= 0x01
    t2.write_bytes(bytes(raw))
    os.utime(t2, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert set(_planned(_snakemake(tmp_path, "-n"))) == {"results/image_cutouts/a/batch-0001.json"}
    assert _snakemake(tmp_path).returncode == 0
    assert t2.read_bytes() == original[t2]
    assert "Nothing to be done" in _snakemake(tmp_path, "-n").stdout

    # one target's size changed: the batches holding it rerun (params), the others do not
    changed = _manifest()
    changed["targets"][0]["size"] = 11
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(changed))
    planned = _planned(_snakemake(tmp_path, "-n"))
    assert set(planned) == {
        "results/image_cutouts/a/batch-0000.json",
        "results/image_cutouts/b/batch-0000.json",
    }
    assert all("Params have changed" in reason for reason in planned.values()), planned
    assert _snakemake(tmp_path).returncode == 0
    with fits.open(t1) as hdul:
        assert hdul[1].data.shape == (11, 11)
    assert t2.read_bytes() == original[t2]


@pytest.mark.slow
def test_fail_on_skip_fails_the_run(tmp_path):
    manifest = _manifest(fail_on_skip=True)
    manifest["targets"].append({"name": "far", "coordinates": "10 20"})
    manifest["inputs"]["b"]["targets"] = ["t1", "far"]
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(manifest))
    proc = _snakemake(tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "image_cutouts: 3 made, 2 skipped, 0 failed" in proc.stderr  # far: in a (every target) and b
    assert "skipped far (image_cutouts/b/batch-0000.json)" in proc.stderr
    assert "fail_on_skip" in proc.stderr
    rows = (tmp_path / "results" / "summary.tsv").read_text().splitlines()
    assert any(r.startswith("image_cutouts\timage_cutouts/b/batch-0000.json\tfar\tskipped\t") for r in rows)
    manifest["fail_on_skip"] = False
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(manifest))
    assert _snakemake(tmp_path, "--forceall").returncode == 0
