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
from pathlib import Path

import pytest
import yaml
from workflow_runs import differing, products, snakemake

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


SLURM_OPTIONS = [
    # no slurmdbd on a test cluster: poll with squeue, submit without an account
    "--slurm-status-command",
    "squeue",
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks",
    "5",
]


def _run_on_slurm(workdir: Path, configfile: str, *extra: str) -> str:
    """Run the workflow through ``profiles/slurm`` in ``workdir``; return Snakemake's output (asserting success)."""
    proc = snakemake(
        workdir, configfile, "--profile", str(ROOT / "profiles" / "slurm"), *SLURM_OPTIONS, *extra
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake exited {proc.returncode}:\n{log[-6000:]}{_slurm_logs(workdir)}"
    return log


def _assert_matches_a_local_run(workdir: Path, configfile: str) -> dict[str, bytes]:
    """Run ``configfile`` locally in a fresh directory and assert its products are ``workdir``'s, byte for byte."""
    local = workdir.parent / f"{workdir.name}-local"
    local.mkdir()
    shutil.copy(workdir / configfile, local / configfile)
    proc = snakemake(local, configfile, "--cores", "2", "--workflow-profile", "none")
    assert proc.returncode == 0, proc.stderr[-4000:]
    on_slurm = products(workdir / "results")
    assert differing(on_slurm, products(local / "results")) == [], "products differ between Slurm and local"
    return on_slurm


def test_workflow_runs_through_slurm(slurm, tmp_path):
    manifest, first_input = _tiny_manifest(tmp_path)
    log = _run_on_slurm(tmp_path, manifest.name, "--jobs", "2", "--slurm-keep-successful-logs")

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
    _assert_matches_a_local_run(tmp_path, manifest.name)


def test_demo_through_slurm_matches_a_local_run(slurm, tmp_path):
    """The offline demo (config.example.yaml: every stage) through the Slurm profile gives, byte for byte, the
    products of a local run of the same manifest in another directory with the same SOURCE_DATE_EPOCH."""
    workdir = tmp_path / "demo"
    workdir.mkdir()
    shutil.copy(ROOT / "config.example.yaml", workdir / "config.example.yaml")
    log = _run_on_slurm(workdir, "config.example.yaml", "--jobs", "4")
    submitted = SUBMITTED.findall(log)
    assert len(submitted) >= 10, f"only {len(submitted)} jobs went to Slurm:\n{log[-4000:]}"
    for _, slurm_id, _ in submitted[:3]:
        assert _scontrol_job(slurm_id)["JobState"] == "COMPLETED"
    assert len(_assert_matches_a_local_run(workdir, "config.example.yaml")) > 50
