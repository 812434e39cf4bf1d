"""`skycut run MANIFEST [snakemake options]`: the manifest is read as data and validated, and Snakemake gets the
validated config as JSON, so nothing in a manifest is evaluated (issue 11)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_runs import snakemake

from skycut.pipeline import cli
from skycut.pipeline.cli import find_snakefile, main

ROOT = Path(__file__).resolve().parents[1]
SKYCUT = [sys.executable, "-m", "skycut.pipeline.cli"]

# yte evaluates `?expr` values of a file that says `__use_yte__: true`: this one writes a file when evaluated
YTE_MANIFEST = """\
__use_yte__: true
targets:
  - name: ?__import__("pathlib").Path("EVALUATED").write_text("yte ran") and "t1"
    coordinates: "10 20"
"""


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


class FakeRun:
    """Stands in for subprocess.run: records the Snakemake command, returns a chosen status."""

    def __init__(self, status: int = 0):
        self.status = status
        self.commands: list[list[str]] = []

    def __call__(self, command, check=False):
        self.commands.append(list(command))
        return subprocess.CompletedProcess(command, self.status)


@pytest.fixture
def fake_snakemake(monkeypatch):
    fake = FakeRun()
    monkeypatch.setattr(cli.subprocess, "run", fake)
    return fake


def _small_manifest(**extra) -> dict:
    data = {
        "targets": [{"name": "t1", "coordinates": "10 20", "size": 5}],
        "inputs": {"a": {"paths": ["a.fits"]}, "b": {"paths": ["b.fits"]}},
    }
    data.update(extra)
    return data


def test_yte_manifest_is_refused_and_never_evaluated(in_tmp, capsys):
    (in_tmp / "m.yaml").write_text(YTE_MANIFEST)
    assert main(["run", "m.yaml", "-n", "--cores", "1"]) == 2
    err = capsys.readouterr().err
    assert "__use_yte__" in err and "never evaluates yte" in err
    assert not (in_tmp / "EVALUATED").exists()
    assert not (in_tmp / "results").exists()  # refused before anything is written
    assert main(["validate", "m.yaml"]) == 2
    assert not (in_tmp / "EVALUATED").exists()


@pytest.mark.slow
def test_yte_manifest_through_skycut_run_vs_plain_configfile(tmp_path):
    """The README's claim: plain `snakemake --configfile` evaluates the template; `skycut run` does not."""
    (tmp_path / "m.yaml").write_text(YTE_MANIFEST)
    run = subprocess.run(
        [*SKYCUT, "run", "m.yaml", "-n", "--cores", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2, run.stderr
    assert not (tmp_path / "EVALUATED").exists()
    snakemake(tmp_path, "m.yaml", "-n", "--cores", "1", epoch=None, timeout=300)
    assert (tmp_path / "EVALUATED").read_text() == "yte ran"  # what skycut run protects against


@pytest.mark.slow
def test_demo_manifest_dry_run(tmp_path):
    shutil.copy(ROOT / "config.example.yaml", tmp_path)
    proc = subprocess.run(
        [*SKYCUT, "run", "config.example.yaml", "-n", "--cores", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "simulate" in out and "cube_cutouts" in out  # the demo's jobs were planned
    (config,) = (tmp_path / "results" / ".skycut").glob("manifest-*.json")
    assert json.loads(config.read_text()) == yaml.safe_load((ROOT / "config.example.yaml").read_text())
    assert not (tmp_path / "results" / "demo").exists()  # a dry run


def test_snakemake_gets_the_validated_config_as_json(in_tmp, fake_snakemake):
    data = _small_manifest(output_dir="out")
    (in_tmp / "m.yaml").write_text(yaml.safe_dump(data))
    assert main(["run", "m.yaml", "--cores", "2", "-n"]) == 0
    (command,) = fake_snakemake.commands
    assert command[:3] == [sys.executable, "-m", "snakemake"]
    config = Path(command[command.index("--configfile") + 1])
    assert config.parent == in_tmp / "out" / ".skycut" and config.suffix == ".json"
    assert json.loads(config.read_text()) == data  # JSON: Snakemake never hands it to yte
    assert command[-3:] == ["--cores", "2", "-n"]
    assert command[command.index("--snakefile") + 1] == str(ROOT / "Snakefile")  # no ./Snakefile here


def test_exit_status_is_snakemakes(in_tmp, fake_snakemake):
    fake_snakemake.status = 7
    (in_tmp / "m.yaml").write_text(yaml.safe_dump(_small_manifest()))
    assert main(["run", "m.yaml"]) == 7


def test_snakefile_choice(in_tmp, fake_snakemake):
    (in_tmp / "m.yaml").write_text(yaml.safe_dump(_small_manifest()))
    assert main(["run", "m.yaml", "-s", "my/Snakefile"]) == 0
    assert main(["run", "m.yaml", "--snakefile=other"]) == 0
    for command in fake_snakemake.commands:
        assert command.count("--snakefile") + command.count("-s") <= 1  # the user's wins, not added
    assert fake_snakemake.commands[0][-2:] == ["-s", "my/Snakefile"]
    (in_tmp / "Snakefile").write_text("rule all:\n")
    assert find_snakefile([]) == "Snakefile"
    assert find_snakefile(["--cores", "1"]) == "Snakefile"
    assert find_snakefile(["-s", "x"]) is None


def test_custom_combiner_is_refused_without_allow_code(in_tmp, fake_snakemake, capsys):
    data = _small_manifest(combine={"m": {"inputs": ["a", "b"], "combiner": "mypkg.combine:builder"}})
    (in_tmp / "m.yaml").write_text(yaml.safe_dump(data))
    assert main(["run", "m.yaml", "--cores", "1"]) == 2
    err = capsys.readouterr().err
    assert "combine.m.combiner: 'mypkg.combine:builder'" in err and "--allow-code" in err
    assert fake_snakemake.commands == []
    assert main(["run", "--allow-code", "m.yaml", "--cores", "1"]) == 0
    assert main(["run", "m.yaml", "--allow-code", "--cores", "1"]) == 0
    assert len(fake_snakemake.commands) == 2
    assert all("--allow-code" not in c for c in fake_snakemake.commands)  # not passed on to Snakemake


def test_builtin_combiners_need_no_permission(in_tmp, fake_snakemake):
    data = _small_manifest(combine={"m": {"inputs": ["a", "b"], "combiner": "median"}})
    (in_tmp / "m.yaml").write_text(yaml.safe_dump(data))
    assert main(["run", "m.yaml"]) == 0


@pytest.mark.parametrize(
    "option", [["--configfile", "x.yaml"], ["--config", "a=1"], ["--configfile=x.yaml"], ["-C", "a=1"]]
)
def test_other_config_sources_are_refused(in_tmp, fake_snakemake, option, capsys):
    (in_tmp / "m.yaml").write_text(yaml.safe_dump(_small_manifest()))
    assert main(["run", "m.yaml", *option]) == 2
    assert "whole configuration" in capsys.readouterr().err
    assert fake_snakemake.commands == []


def test_invalid_manifest_is_not_run(in_tmp, fake_snakemake, capsys):
    data = _small_manifest()
    data["targets"][0]["size"] = 10**9
    data["output_dir"] = "../elsewhere"
    (in_tmp / "m.yaml").write_text(yaml.safe_dump(data))
    assert main(["run", "m.yaml"]) == 2
    err = capsys.readouterr().err
    assert (
        "INVALID (2 problems)" in err and "limits.max_cutout_pixels" in err and "allow_output_outside" in err
    )
    assert fake_snakemake.commands == []
