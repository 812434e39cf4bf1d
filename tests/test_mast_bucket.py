"""Footprint cutouts against MAST's public cubes, offline (issue 9).

A fake of MAST's public bucket runs on loopback (moto's S3 server, bucket ``stpubdata``) holding simulated cubes
under MAST's names (``tess/public/mast/tess-sSSSS-C-D-cube.fits``). The plan finds the cubes with tess-point's
real geometry (no monkeypatching: the simulator's WCS comes from the same geometry, and the target below is near
the centre of sector 9's camera 2 CCD 1 and of sector 35's camera 2 CCD 2, inside the simulated windows). Sector 8
also sees it (camera 2, CCD 2), but that cube is not in the bucket.

Also: config/mast-tess.yaml is accepted offline by ``skycut plan`` and ``snakemake -n``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import servers
import yaml

from skycut import CubeFactory
from skycut.pipeline.jobs.footprints import footprint_cube_cutouts, footprint_cutouts
from skycut.pipeline.jobs.index import read_index
from skycut.pipeline.manifest import validate_manifest
from skycut.pipeline.plan import Plan
from skycut.simulate.tess import make_tess_ffis

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET = (143.49309216497613, -37.10077844083884)  # found with skycut.tess.sectors: near both CCD centres
SEEN_BY = {8: (2, 2), 9: (2, 1), 35: (2, 2)}  # sector -> (camera, CCD), tess-point's answer for TARGET
IN_BUCKET = (9, 35)
PREFIX = "tess/public/mast/"


@pytest.fixture(scope="module")
def mast_bucket(tmp_path_factory):
    """The fake public bucket with the simulated cubes of sectors 9 and 35 (sector 8's cube missing)."""
    work = tmp_path_factory.mktemp("mast")
    with servers.S3Server(bucket="stpubdata") as server:
        for sector in IN_BUCKET:
            camera, ccd = SEEN_BY[sector]
            sim = make_tess_ffis(
                work / f"s{sector}",
                sector=sector,
                camera=camera,
                ccd=ccd,
                n_ffi=3,
                shape=(128, 128),
                seed=sector,
            )
            cube = work / f"tess-s{sector:04d}-{camera}-{ccd}-cube.fits"
            CubeFactory().make_cube([str(f) for f in sim.files], str(cube), verbose=False)
            server.upload(cube, key=PREFIX + cube.name)
        _make_public(server)
        yield server


def _make_public(server: servers.S3Server) -> None:
    """Anonymous reads, as on MAST's bucket (moto refuses unsigned requests to private objects)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.key,
        aws_secret_access_key=server.secret,
        region_name="us-east-1",
    )
    client.put_bucket_policy(
        Bucket=server.bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": ["s3:GetObject", "s3:ListBucket"],
                        "Resource": [f"arn:aws:s3:::{server.bucket}", f"arn:aws:s3:::{server.bucket}/*"],
                    }
                ],
            }
        ),
    )
    server.log.reset()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # output_dir must lie inside the working directory


def _manifest(server: servers.S3Server, tmp_path: Path, **spec) -> dict:
    return {
        "output_dir": "results",
        "targets": [{"name": "TOI test star", "coordinates": f"{TARGET[0]} {TARGET[1]}", "size": 11}],
        "footprint_cutouts": {
            "mast": {
                "sectors": sorted(SEEN_BY),
                "cube_base_uri": "s3://stpubdata/" + PREFIX,
                "fsspec": {"anon": True, "endpoint_url": server.endpoint_url},
                "threads": 2,
                **spec,
            }
        },
    }


def test_plan_finds_every_sector_offline(mast_bucket, tmp_path):
    mast_bucket.log.reset()
    plan = Plan(validate_manifest(_manifest(mast_bucket, tmp_path)))
    jobs = plan.footprint_jobs()
    assert [(j.key, j.batch) for j in jobs] == [
        (f"mast/tess-s{s:04d}-{c}-{d}", "batch-0000") for s, (c, d) in sorted(SEEN_BY.items())
    ]
    assert [j.cube for j in jobs] == [
        f"s3://stpubdata/tess/public/mast/tess-s{s:04d}-{c}-{d}-cube.fits"
        for s, (c, d) in sorted(SEEN_BY.items())
    ]
    assert all([t.name for t in j.targets] == ["TOI test star"] for j in jobs)
    assert (
        plan.footprint_index("mast/tess-s0009-2-1", "batch-0000")
        == "results/footprint_cutouts/mast/tess-s0009-2-1/batch-0000.json"
    )
    assert plan.footprint_cube_inputs("mast", "tess-s0009-2-1", "batch-0000") == []  # remote: no local input
    assert mast_bucket.log.n_requests == 0  # planning touched neither the bucket nor the footprint file


def test_two_sectors_two_tpfs_missing_cube_reported(mast_bucket, tmp_path):
    import lightkurve

    plan = Plan(validate_manifest(_manifest(mast_bucket, tmp_path)))
    indexes = {}
    for job in plan.footprint_jobs():
        path = plan.footprint_index(job.key, job.batch)
        indexes[job.key] = footprint_cube_cutouts(job.cube, job.targets, job.spec, path)
        assert read_index(path) == indexes[job.key]

    missing = indexes["mast/tess-s0008-2-2"]
    assert missing["products"] == {}
    reason = missing["skipped"]["TOI test star"]
    assert "s3://stpubdata/tess/public/mast/tess-s0008-2-2-cube.fits" in reason and "not found" in reason

    tpfs = []
    for sector in IN_BUCKET:
        camera, ccd = SEEN_BY[sector]
        index = indexes[f"mast/tess-s{sector:04d}-{camera}-{ccd}"]
        assert index["skipped"] == {}
        assert index["cube"] == f"s3://stpubdata/tess/public/mast/tess-s{sector:04d}-{camera}-{ccd}-cube.fits"
        (tpf,) = index["products"]["TOI test star"]
        assert Path(tpf).parent == Path("results/footprint_cutouts/mast/TOI-test-star")  # the name's slug
        assert Path(tpf).name == (
            f"tess-s{sector:04d}-{camera}-{ccd}_{TARGET[0]:.7f}_{TARGET[1]:.7f}_11-x-11_astrocut.fits"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lc_tpf = lightkurve.read(tpf, quality_bitmask="none")  # the simulator flags cadences
        assert lc_tpf.shape == (3, 11, 11)
        assert (lc_tpf.sector, lc_tpf.camera, lc_tpf.ccd) == (sector, camera, ccd)
        assert np.isfinite(lc_tpf.flux.value).all()
        centre = lc_tpf.wcs.world_to_pixel_values(*TARGET)
        assert np.allclose(
            centre, (5, 5), atol=1.0
        )  # the target is in the middle of each TPF (whole-pixel box)
        tpfs.append(tpf)
    assert len(set(tpfs)) == 2


def test_missing_cube_alone_is_a_skip_not_a_failure(mast_bucket, tmp_path):
    """A planned cube that MAST lacks gives a finished job (an index), so the rest of a run goes on."""
    plan = Plan(validate_manifest(_manifest(mast_bucket, tmp_path, sectors=[8])))
    (job,) = plan.footprint_jobs()
    index = footprint_cube_cutouts(job.cube, job.targets, job.spec, plan.footprint_index(job.key, job.batch))
    assert index["products"] == {} and list(index["skipped"]) == ["TOI test star"]


def test_footprint_file_mode_still_per_target_batch(mast_bucket, tmp_path):
    """With a footprint file the jobs stay per target batch, matched when the job runs."""
    footprints = tmp_path / "fp.json"
    ring = "POLYGON 142 -38 145 -38 145 -36 142 -36"
    footprints.write_text(
        json.dumps(
            {
                "s_region": [ring],
                "sequence_number": [9],
                "target_name": ["TESS FFI"],
                "obs_id": ["tess-s0009-2-1"],
            }
        )
    )
    manifest = validate_manifest(_manifest(mast_bucket, tmp_path, footprint_uri=str(footprints)))
    plan = Plan(manifest)
    (job,) = plan.footprint_jobs()
    assert (job.key, job.batch, job.cube) == ("mast", "batch-0000", None)
    assert plan.footprint_local_inputs("mast") == [str(footprints)]
    index = footprint_cutouts(job.targets, job.spec, plan.footprint_index(job.key, job.batch))
    (tpf,) = index["products"]["TOI test star"]
    assert Path(tpf).name.startswith("tess-s0009-2-1_")


# ------------------------------------------------------------------------------------------ config/mast-tess.yaml


def _offline_env() -> dict:
    """No proxy, no credentials: any attempt to reach MAST or S3 would fail (and the plan makes none)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HTTP", "HTTPS", "http", "https"))
    }
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="",
    )
    return env


def test_mast_config_plans_offline(tmp_path):
    config = REPO / "config/mast-tess.yaml"
    data = yaml.safe_load(config.read_text())
    spec = data["footprint_cutouts"]["mast"]
    assert "footprint_uri" not in spec and spec["cube_base_uri"] == "s3://stpubdata/tess/public/mast/"
    run = subprocess.run(
        [str(BIN / "skycut"), "plan", "--outputs", str(config)],
        cwd=tmp_path,
        env=_offline_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    outputs = [ln.strip() for ln in run.stdout.splitlines() if ln.strip().endswith(".json")]
    names = {Path(o).parent.name for o in outputs}
    assert len(outputs) == len(names) > 20  # one job per cube here (7 targets, batch_size 25)
    assert all(o.startswith("results/mast-tess/footprint_cutouts/mast/tess-s") for o in outputs)
    sectors = {int(n[6:10]) for n in names}
    assert min(sectors) >= 1 and max(sectors) <= spec["last_sector"]

    run = subprocess.run(
        [
            str(BIN / "snakemake"),
            "-n",
            "--configfile",
            str(config),
            "-d",
            str(tmp_path),
            "-s",
            str(REPO / "Snakefile"),
        ],
        cwd=tmp_path,
        env=_offline_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    text = run.stdout + run.stderr
    assert f"footprint_cube_cutouts {len(outputs):>8}" in " ".join(text.split("\n")) or any(
        ln.split() == ["footprint_cube_cutouts", str(len(outputs))] for ln in text.splitlines()
    )
