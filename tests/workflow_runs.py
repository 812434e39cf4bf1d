"""Running the workflow from tests: one place for the Snakemake command line, the demo run and the comparison
of two runs' products (used by the report, reproducibility and Slurm tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
#: One build time for runs whose products are compared byte for byte.
EPOCH = "1700000000"


def snakemake(
    workdir: Path,
    configfile: str,
    *extra: str,
    epoch: str | None = EPOCH,
    timeout: int = 1800,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir`` with ``configfile`` and ``extra`` options (``SOURCE_DATE_EPOCH`` pinned
    unless ``epoch`` is None; ``env``: more environment variables)."""
    env = {**os.environ, **(env or {})}
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = epoch
    return subprocess.run(
        [*SNAKEMAKE, "--configfile", configfile, *extra],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_demo(workdir: Path, *extra: str) -> Path:
    """Run the offline demo (``config.example.yaml``) locally in ``workdir``; return its ``results`` folder."""
    shutil.copy(ROOT / "config.example.yaml", workdir / "config.example.yaml")
    proc = snakemake(workdir, "config.example.yaml", "--cores", "2", *extra)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir / "results"


def products(results: Path) -> dict[str, bytes]:
    """Every product under ``results``: logs and benchmark tables excluded (they hold times and hosts), and the
    hidden bookkeeping files (the ``.{index}.stat`` caches of each product's size, mtime and inode)."""
    return {
        str(p.relative_to(results)): p.read_bytes()
        for p in sorted(results.rglob("*"))
        if p.is_file()
        and p.relative_to(results).parts[0] not in ("logs", "benchmarks")
        and not p.name.startswith(".")
    }


def differing(first: dict[str, bytes], second: dict[str, bytes]) -> list[str]:
    """Names of the products that are not byte-identical in both runs (or exist in one run only)."""
    return sorted(set(first) ^ set(second)) + sorted(
        n for n in set(first) & set(second) if first[n] != second[n]
    )
