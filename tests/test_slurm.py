"""The workflow through Snakemake's Slurm executor on a real Slurm cluster (a local single-node one in CI).

Skipped unless ``sinfo`` shows an idle (or partly allocated) node and ``snakemake-executor-plugin-slurm`` is
installed; ``SKYCUT_SLURM=1`` turns those skips into failures. Start a local cluster with
``sudo bash tests/slurm/setup_local_slurm.sh`` and stop it with ``tests/slurm/stop_local_slurm.sh``.

The run uses ``profiles/slurm`` plus the options a cluster without an accounting database needs:
``--slurm-status-command squeue`` (``sacct`` answers "Slurm accounting storage is disabled" there),
``--slurm-no-account``, a short first status check, and ``--slurm-keep-successful-logs`` so the per-job Slurm
logs can be checked. Evidence that the jobs really ran under Slurm: the job ids Snakemake reports, then for each
``scontrol show job`` (finished jobs stay in slurmctld for ``MinJobAge``: an hour with the setup script) says
COMPLETED, exit code 0:0, and the job's working directory is this test's directory, and its Slurm log exists.
Then the same manifest runs locally in another directory with the same ``SOURCE_DATE_EPOCH``, and every product
(``results/`` without logs and benchmark tables) must be byte for byte the Slurm run's.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FORCED = os.environ.get("SKYCUT_SLURM") == "1"
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.?\s*$", re.M)

pytestmark = pytest.mark.slow


def _slurm_problem() -> str | None:
    """Why the Slurm test cannot run here, or None if it can."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')"
    for tool in ("sinfo", "sbatch", "squeue", "scontrol"):
        if shutil.which(tool) is None:
            return f"no Slurm here: '{tool}' is not on PATH (start one: sudo bash tests/slurm/setup_local_slurm.sh)"
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    if proc.returncode != 0:
        return f"sinfo failed (exit {proc.returncode}): {proc.stderr.strip()}"
    states = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    if not any(len(s) == 2 and s[1].rstrip("*~#!%$@^-") in ("idle", "mix") for s in states):
        return f"sinfo shows no idle node: {proc.stdout.strip() or '(no nodes)'}"
    return None


@pytest.fixture(scope="module")
def slurm():
    problem = _slurm_problem()
    if problem is not None:
        if FORCED:
            pytest.fail(f"SKYCUT_SLURM=1 but Slurm is unusable: {problem}")
        pytest.skip(problem)


def _tiny_manifest(workdir: Path) -> tuple[Path, str]:
    """A manifest that simulates two small HST f606w skycells and cuts one 21 x 21 target from the first."""
    from skycut.simulate import demo_file_names
    from skycut.simulate.images import HST_CENTER

    demo = {"seed": 1, "hst": {"bands": ["f606w"], "shape": [200, 200]}}
    first = demo_file_names(demo, "results/demo")["hst"][0]
    manifest = {
        "output_dir": "results",
        "demo": demo,
        # The simulator's tangent point: the centre of the overlap of the two skycells.
        "targets": [{"name": "t1", "coordinates": f"{HST_CENTER[0]:.8f} {HST_CENTER[1]:.8f}", "size": 21}],
        "inputs": {"f606w": {"paths": [first]}},
    }
    path = workdir / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path, first


def _scontrol_job(job_id: str) -> dict[str, str]:
    proc = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, f"scontrol show job {job_id} failed: {proc.stderr.strip()}"
    # one line of Key=Value pairs; values have no spaces except in a few fields we do not read
    return dict(item.split("=", 1) for item in proc.stdout.split() if "=" in item)


def _slurm_logs(workdir: Path, tail: int = 3000) -> str:
    """The end of every per-job Slurm log (what the job printed), for failure messages."""
    parts = []
    for path in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log")):
        parts.append(f"\n--- {path.relative_to(workdir)} ---\n{path.read_text(errors='replace')[-tail:]}")
    return "".join(parts)


#: One build time for the Slurm run and the local run, so that time-stamped products compare byte for byte.
EPOCH = "1700000000"


def _products(workdir: Path) -> dict[str, bytes]:
    """Every product under ``results/``: logs and benchmark tables excluded (they hold times and hosts), and hidden
    bookkeeping files (the ``.{index}.stat`` caches of each product's size, mtime and inode)."""
    res = workdir / "results"
    return {
        str(p.relative_to(res)): p.read_bytes()
        for p in sorted(res.rglob("*"))
        if p.is_file()
        and p.relative_to(res).parts[0] not in ("logs", "benchmarks")
        and not p.name.startswith(".")
    }


def test_workflow_runs_through_slurm(slurm, tmp_path):
    manifest, first_input = _tiny_manifest(tmp_path)
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--configfile",
        str(manifest),
        "--profile",
        str(ROOT / "profiles" / "slurm"),
        "--directory",
        str(tmp_path),
        "--jobs",
        "2",
        # no slurmdbd on a test cluster: poll with squeue, submit without an account
        "--slurm-status-command",
        "squeue",
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks",
        "5",
        "--slurm-keep-successful-logs",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1200, env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake exited {proc.returncode}:\n{log[-6000:]}{_slurm_logs(tmp_path)}"

    # outputs: the simulated input, the cutout and the job's index
    assert (tmp_path / first_input).is_file()
    cutout = tmp_path / "results" / "image_cutouts" / "f606w" / "t1.fits"
    index = json.loads((tmp_path / "results" / "image_cutouts" / "f606w" / "batch-0000.json").read_text())
    assert index["skipped"] == {}
    assert index["products"] == {"t1": ["results/image_cutouts/f606w/t1.fits"]}
    from astropy.io import fits

    with fits.open(cutout) as hdul:
        images = [h for h in hdul if h.is_image and h.data is not None]
        assert images, f"{cutout} has no image HDU"
        assert images[0].data.shape == (21, 21)

    # the two rule jobs went to Slurm (rule `all` is local), each with its own Slurm job id
    submitted = SUBMITTED.findall(log)
    rules = sorted(
        Path(p).relative_to(tmp_path / ".snakemake" / "slurm_logs").parts[0] for _, _, p in submitted
    )
    assert rules == ["rule_image_cutouts", "rule_simulate"], (
        f"jobs submitted to Slurm: {submitted}\n{log[-4000:]}"
    )
    assert len({slurm_id for _, slurm_id, _ in submitted}) == 2
    for _, slurm_id, slurm_log in submitted:
        job = _scontrol_job(slurm_id)
        assert job["JobState"] == "COMPLETED", f"Slurm job {slurm_id}: {job}"
        assert job["ExitCode"] == "0:0", f"Slurm job {slurm_id}: {job}"
        assert Path(job["WorkDir"]).resolve() == tmp_path.resolve(), f"Slurm job {slurm_id}: {job}"
        assert Path(slurm_log).is_file(), f"no Slurm log {slurm_log} for job {slurm_id}"

    # the same manifest run locally in another directory gives the same bytes
    local = tmp_path / "local"
    local.mkdir()
    shutil.copy(manifest, local / manifest.name)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--configfile",
            manifest.name,
            "--cores",
            "2",
            "--workflow-profile",
            "none",
        ],
        cwd=local,
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    on_slurm, here = _products(tmp_path), _products(local)
    assert set(on_slurm) == set(here), sorted(set(on_slurm) ^ set(here))
    differ = sorted(name for name in on_slurm if on_slurm[name] != here[name])
    assert not differ, f"products differ between the Slurm run and the local run: {differ}"


def test_demo_through_slurm_matches_a_local_run(slurm, tmp_path):
    """The offline demo (config.example.yaml: every stage) through the Slurm profile gives, byte for byte, the
    products of a local run of the same manifest in another directory with the same SOURCE_DATE_EPOCH."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    on_cluster, local = tmp_path / "slurm", tmp_path / "local"
    for workdir in (on_cluster, local):
        workdir.mkdir()
        shutil.copy(ROOT / "config.example.yaml", workdir / "config.example.yaml")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--configfile",
            "config.example.yaml",
            "--profile",
            str(ROOT / "profiles" / "slurm"),
            "--jobs",
            "4",
            "--slurm-status-command",
            "squeue",
            "--slurm-no-account",
            "--slurm-init-seconds-before-status-checks",
            "5",
        ],
        cwd=on_cluster,
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, (
        f"snakemake exited {proc.returncode}:\n{log[-6000:]}{_slurm_logs(on_cluster)}"
    )
    submitted = SUBMITTED.findall(log)
    assert len(submitted) >= 10, f"only {len(submitted)} jobs went to Slurm:\n{log[-4000:]}"
    for _, slurm_id, _ in submitted[:3]:
        assert _scontrol_job(slurm_id)["JobState"] == "COMPLETED"

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--configfile",
            "config.example.yaml",
            "--cores",
            "2",
            "--workflow-profile",
            "none",
        ],
        cwd=local,
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    on_slurm, here = _products(on_cluster), _products(local)
    assert len(on_slurm) > 50
    assert set(on_slurm) == set(here), sorted(set(on_slurm) ^ set(here))
    differ = sorted(name for name in on_slurm if on_slurm[name] != here[name])
    assert not differ, f"products differ between the Slurm run and the local run: {differ}"
