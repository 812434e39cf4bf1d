"""The committed JSON Schema matches the models; the `skycut` command validates manifests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from skycut.pipeline.cli import main
from skycut.pipeline.manifest import json_schema

ROOT = Path(__file__).resolve().parents[1]


def test_committed_schema_is_current():
    committed = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())
    assert committed == json_schema(), (
        "schemas/manifest.schema.json is stale: run `skycut schema -o schemas/manifest.schema.json`"
    )


def test_schema_accepts_the_example_config():
    jsonschema = __import__("jsonschema")
    config = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    jsonschema.validate(config, json_schema())


def test_schema_rejects_unknown_keys():
    jsonschema = __import__("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    errors = list(validator.iter_errors({"targets": [{"name": "a", "coordinates": "1 2", "colour": "red"}]}))
    assert errors


def test_validate_ok(capsys):
    assert main(["validate", str(ROOT / "config.example.yaml")]) == 0
    assert "OK" in capsys.readouterr().out


def test_validate_reports_each_problem_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "targets": [{"name": "a", "coordinates": "1 2", "size": -4}],
                "cubes": {"c": {"files": ["x"], "sector": 1, "camera": 9, "ccd": 1}},
            }
        )
    )
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "INVALID (2 problems)" in err
    assert "targets[0].size" in err and "-4" in err
    assert "cubes.c.camera" in err and "9" in err


def test_console_script_exit_status(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("render: {r: {inputs: [x], stretch: cubic}}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "skycut.pipeline.cli", "validate", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "render.r.stretch" in proc.stderr


def test_schema_command_prints_json(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "skycut manifest"


def test_plan_and_simulate_commands(tmp_path, capsys):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "output_dir": str(tmp_path / "out"),
                "allow_output_outside": True,  # an absolute path outside the working directory
                "targets": [{"name": f"t{i}", "coordinates": [10 + i, 20]} for i in range(5)],
                "inputs": {"a": {"paths": ["x.fits"], "batch_size": 2}},
                "demo": {"hst": {"bands": ["f606w"], "shape": [64, 64]}},
            }
        )
    )
    assert main(["plan", str(manifest)]) == 0
    assert "image cutout jobs: 3" in capsys.readouterr().out
    assert main(["simulate", str(manifest)]) == 0
    assert "hst: 2 file(s)" in capsys.readouterr().out
    assert len(list((tmp_path / "out" / "demo" / "hst").glob("*_drc.fits"))) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("cubes: {c: {files: ['nothing/*.fits'], sector: 1, camera: 1, ccd: 1}}\n")
    capsys.readouterr()
    assert main(["plan", str(bad)]) == 2
    assert "cubes.c.files: no file matches 'nothing/*.fits'" in capsys.readouterr().err
    assert main(["plan", str(tmp_path / "missing.yaml")]) == 2
