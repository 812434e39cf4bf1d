"""Manifests read as data and bounded (issue 11), and validation that reports every problem at once (issue 10).

Each case failed (or was silently accepted) before: an alias bomb ran for minutes, a duplicate key replaced the
first, an empty file said OK, sizes and the demo had no bounds, ``size: true`` was 1 pixel, RA 400 written with a
unit was wrapped, ``max_memory: .inf`` overflowed the plan, ``output_dir`` could point anywhere, a targets-file
row without dec was a traceback, and a bad field hid the cross-reference problems.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import pytest
import yaml

from skycut.exceptions import ManifestError
from skycut.pipeline.checks import DEFAULT_MAX_CUTOUT_PIXELS
from skycut.pipeline.cli import main
from skycut.pipeline.manifest import load_manifest, validate_manifest
from skycut.pipeline.manifest_file import MAX_NODES, parse_manifest_text
from skycut.pipeline.targets import read_targets_file

ROOT = Path(__file__).resolve().parents[1]


def base() -> dict:
    return {
        "targets": [{"name": "a", "coordinates": "10 20", "size": 11}],
        "inputs": {"img": {"paths": ["x.fits"], "targets": ["a"]}},
    }


def problems_of(data) -> list[tuple[str, str, object]]:
    with pytest.raises(ManifestError) as info:
        validate_manifest(data)
    return info.value.problems


def fields(problems) -> set[str]:
    return {p[0] for p in problems}


def message_for(problems, field: str) -> str:
    found = [p[1] for p in problems if p[0] == field]
    assert found, f"no problem for {field}: {problems}"
    return " | ".join(found)


# ------------------------------------------------------------------------------------------ reading the file

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


def test_alias_bomb_is_refused_before_it_expands():
    assert len(ALIAS_BOMB) < 500  # 9**9 = 387 million values once expanded
    with pytest.raises(ManifestError, match="aliases expand to more than") as info:
        parse_manifest_text(ALIAS_BOMB, "bomb.yaml")
    assert info.value.problems[0][2] == "bomb.yaml"
    assert str(MAX_NODES) in info.value.problems[0][1]


def test_alias_bomb_through_skycut_validate(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert main(["validate", str(path)]) == 2
    assert "alias bomb" in capsys.readouterr().err


def test_small_aliases_still_work(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "target_defaults: &d {size: 7}\ntargets: [{name: a, coordinates: '1 2'}]\n"
        "inputs: {x: {paths: [a.fits]}}\n"
    )
    assert load_manifest(path).targets[0].size.pixels() == (7, 7)


def test_duplicate_top_level_key_is_refused(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "targets: [{name: a, coordinates: '1 2'}]\noutput_dir: x\ntargets: [{name: b, coordinates: '3 4'}]\n"
    )
    with pytest.raises(ManifestError, match=r"duplicate key 'targets' \(first on line 1, again on line 3\)"):
        load_manifest(path)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_empty_manifest_is_refused(tmp_path, text, capsys):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError, match="the manifest is empty"):
        load_manifest(path)
    assert main(["validate", str(path)]) == 2
    assert "OK" not in capsys.readouterr().out


def test_oversized_manifest_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "m.yaml"
    path.write_text("output_dir: results\n" + "# padding\n" * 200)
    monkeypatch.setenv("SKYCUT_MAX_MANIFEST_BYTES", "1000")
    with pytest.raises(ManifestError, match="larger than 1000 bytes"):
        load_manifest(path)


def test_python_tags_are_not_constructed(tmp_path):
    marker = tmp_path / "created"
    path = tmp_path / "m.yaml"
    path.write_text(f"output_dir: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_manifest(path)
    assert not marker.exists()


def test_yte_marker_is_named(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("__use_yte__: true\ntargets: [{name: a, coordinates: '1 2'}]\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert "never evaluates yte" in message_for(info.value.problems, "__use_yte__")


# ------------------------------------------------------------------------------------------ bounds


@pytest.mark.parametrize(
    ("size", "word"),
    [
        (10**9, "limits.max_cutout_pixels"),
        ("1e9", "limits.max_cutout_pixels"),
        ([10, 10**6], "limits.max_cutout_pixels"),
        ("100000 deg", "limits.max_cutout_degrees"),
        (["1 arcmin", "5 deg"], "limits.max_cutout_degrees"),
    ],
)
def test_sizes_are_bounded(size, word):
    data = base()
    data["targets"][0]["size"] = size
    assert word in message_for(problems_of(data), "targets[0].size")


def test_default_and_path_sizes_are_bounded_too():
    data = base()
    data["target_defaults"] = {"size": 10**9}
    data["paths"] = {"p": {"table": "t.ecsv", "size": "100000 deg", "cubes": ["c.fits"]}}
    problems = problems_of(data)
    assert "max_cutout_pixels" in message_for(problems, "target_defaults.size")
    assert "max_cutout_degrees" in message_for(problems, "paths.p.size")


def test_limits_can_be_raised():
    data = base()
    data["targets"][0]["size"] = [20_000, "3 deg"]
    assert "max_cutout_pixels" in message_for(problems_of(data), "targets[0].size")
    data["limits"] = {"max_cutout_pixels": 50_000, "max_cutout_degrees": 5}
    assert validate_manifest(data).targets[0].size.x == 20_000
    assert DEFAULT_MAX_CUTOUT_PIXELS == 10_000


def test_limits_apply_to_targets_file_rows(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("name,ra,dec,size\nbig,10,20,20000\n")
    problems = problems_of({"targets_file": str(table)})
    assert "line 2" in message_for(problems, "targets_file")
    assert validate_manifest({"targets_file": str(table), "limits": {"max_cutout_pixels": 30000}}).targets


def test_bad_limits_are_reported():
    problems = problems_of({**base(), "limits": {"max_cutout_pixels": 0, "max_cutout_degrees": math.inf}})
    assert {"limits.max_cutout_pixels", "limits.max_cutout_degrees"} <= fields(problems)


def test_demo_is_bounded():
    for n_ffi in (10**9, 1.0e9):  # YAML 1.0e+9 is a float
        problems = problems_of({"demo": {"tess": {"n_ffi": n_ffi}}})
        assert "limits.max_demo_ffis" in message_for(problems, "demo.tess.n_ffi")
    problems = problems_of({"demo": {"hst": {"shape": [100, 10**6]}}})
    assert "limits.max_demo_image_side" in message_for(problems, "demo.hst")
    ok = validate_manifest({"demo": {"tess": {"n_ffi": 1000}}, "limits": {"max_demo_ffis": 1000}})
    assert ok.demo.tess.n_ffi == 1000


@pytest.mark.parametrize("value", [math.inf, math.nan, -1.0, 0])
def test_max_memory_is_finite_and_positive(value):
    data = {"cubes": {"c": {"files": ["f.fits"], "sector": 1, "camera": 1, "ccd": 1, "max_memory": value}}}
    assert "cubes.c.max_memory" in fields(problems_of(data))


def test_max_memory_inf_from_yaml_file(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("cubes: {c: {files: [f.fits], sector: 1, camera: 1, ccd: 1, max_memory: .inf}}\n")
    with pytest.raises(ManifestError, match="cubes.c.max_memory: Input should be a finite number"):
        load_manifest(path)


# ------------------------------------------------------------------------------------------ coordinates, sizes


@pytest.mark.parametrize(
    ("coordinates", "word"),
    [
        ([math.nan, 53.66], "finite"),
        ("nan 53.66", "finite"),
        ([math.inf, 10], "finite"),
        ({"ra": 10, "dec": math.nan}, "finite"),
        ([400, 10], "right ascension"),
        ("400 10", "right ascension"),
        ("400d 10d", "right ascension"),
        ({"ra": "400d", "dec": "10d"}, "right ascension"),
        ({"ra": "370 deg", "dec": "10 deg"}, "right ascension"),
        ("10 91", "declination"),
        ({"ra": 1, "dec": 91}, "declination"),
        ([True, 10], "true/false"),
    ],
)
def test_bad_coordinates_name_the_field(coordinates, word):
    data = base()
    data["targets"][0]["coordinates"] = coordinates
    assert word in message_for(problems_of(data), "targets[0].coordinates")


def test_text_coordinates_in_range_still_parse():
    data = base()
    data["targets"][0]["coordinates"] = "14:05:05.0 +53:39:36"
    data["targets"].append({"name": "b", "coordinates": {"ra": "10h00m22.7s", "dec": "+02d23m12.5s"}})
    data["targets"].append({"name": "c", "coordinates": "359.9d -10d"})
    m = validate_manifest(data)
    assert m.targets[0].ra == pytest.approx(211.2708333)
    assert m.targets[1].ra == pytest.approx(150.0945833)
    assert m.targets[2].ra == pytest.approx(359.9)


@pytest.mark.parametrize("size", [True, False, [True, 5], [10, False]])
def test_boolean_sizes_are_refused(size):
    data = base()
    data["targets"][0]["size"] = size
    assert "true/false" in message_for(problems_of(data), "targets[0].size")
    data = base()
    data["target_defaults"] = {"size": size}
    assert "target_defaults.size" in fields(problems_of(data))


# ------------------------------------------------------------------------------------------ output_dir


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("output_dir", ["../x", "/etc", "results/../../x"])
def test_output_dir_outside_the_working_directory_is_refused(in_tmp, output_dir):
    message = message_for(problems_of({**base(), "output_dir": output_dir}), "output_dir")
    assert "outside the working directory" in message and "allow_output_outside" in message


def test_output_dir_outside_is_allowed_explicitly(in_tmp):
    outside = in_tmp.parent / "elsewhere"
    m = validate_manifest({**base(), "output_dir": str(outside), "allow_output_outside": True})
    assert m.output_dir == str(outside)
    assert validate_manifest({**base(), "output_dir": str(in_tmp / "inside")}).output_dir  # absolute, inside


def test_demo_directory_is_checked_too(in_tmp):
    problems = problems_of({"demo": {"directory": "../demo", "hst": {"shape": [64, 64]}}})
    assert "outside the working directory" in message_for(problems, "demo.directory")


@pytest.mark.parametrize("allow", [False, True])
def test_tilde_is_refused(in_tmp, allow):
    problems = problems_of({**base(), "output_dir": "~/results", "allow_output_outside": allow})
    assert "'~' is not expanded" in message_for(problems, "output_dir")
    assert not (in_tmp / "~").exists()


def test_output_dir_that_is_a_file(in_tmp, capsys):
    (in_tmp / "results").write_text("a file")
    problems = problems_of(base())
    assert "existing file, not a directory" in message_for(problems, "output_dir")
    problems = problems_of({**base(), "output_dir": "results/sub"})
    assert "existing file" in message_for(problems, "output_dir")
    (in_tmp / "m.yaml").write_text(yaml.safe_dump(base()))
    assert main(["plan", "m.yaml"]) == 2
    assert "output_dir: " in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ target tables


def test_csv_takes_every_size_form(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text(
        "name,ra,dec,size\n"
        "pix,10,20,11\n"
        "ang,10.5,20,30 arcsec\n"
        'pair,11,20,"[200, 300]"\n'
        'mixed,12,20,"[1 arcmin, 40]"\n'
        "sexa,10:00:22.7,+02:23:12.5,\n"
        "NGC 1300,49.92,-19.41,7.0\n"
    )
    m = validate_manifest({"targets_file": str(table)})
    by_name = {t.name: t for t in m.targets}
    assert by_name["pix"].size.pixels() == (11, 11)
    assert by_name["ang"].size.units == ("deg", "deg") and by_name["ang"].size.x == pytest.approx(30 / 3600)
    assert by_name["pair"].size.pixels() == (200, 300)
    assert by_name["mixed"].size.units == ("deg", "pixel") and by_name["mixed"].size.y == 40
    assert by_name["sexa"].ra == pytest.approx(150.0945833) and by_name["sexa"].size.pixels() == (25, 25)
    assert by_name["NGC 1300"].size.pixels() == (7, 7)


def test_ecsv_takes_every_size_form(tmp_path):
    from astropy import units as u
    from astropy.table import Table

    table = Table(
        {
            "name": ["a", "b", "c"],
            "ra": [10.0, 11.0, 12.0] * u.deg,
            "dec": [20.0, 21.0, 22.0] * u.deg,
            "size": ["11", "30 arcsec", "[200, 300]"],
        }
    )
    path = tmp_path / "t.ecsv"
    table.write(path, format="ascii.ecsv")
    m = validate_manifest({"targets_file": str(path)})
    assert [t.size.pixels() if t.size.in_pixels else t.size.label for t in m.targets] == [
        (11, 11),
        "30arcsec-x-30arcsec",
        (200, 300),
    ]
    assert [(t.ra, t.dec) for t in m.targets] == [(10.0, 20.0), (11.0, 21.0), (12.0, 22.0)]
    pairs = Table({"name": ["p"], "ra": [1.0 * 15] * u.deg, "dec": [2.0] * u.deg, "size": [[9, 13]]})
    pairs["ra"] = pairs["ra"].to(u.hourangle)  # a unit other than degrees is converted
    pairs.write(tmp_path / "p.ecsv", format="ascii.ecsv")
    (target,) = validate_manifest({"targets_file": str(tmp_path / "p.ecsv")}).targets
    assert target.size.pixels() == (9, 13) and target.ra == pytest.approx(15.0)


def test_bad_rows_name_file_and_line_without_cascade(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text(
        "name,ra,dec,size\ngood,10,20,5\nnodec,10\nbadnum,10,abc,5\nbadsize,10,20,-3\nfar,400,20,5\n"
    )
    data = {
        "targets_file": str(table),
        "inputs": {"img": {"paths": ["x.fits"], "targets": ["good", "nodec", "badnum", "badsize", "far"]}},
    }
    problems = problems_of(data)
    messages = [p[1] for p in problems if p[0] == "targets_file"]
    assert any(f"{table} line 3: dec is missing" in m for m in messages), messages
    assert any(f"{table} line 4: ra/dec" in m for m in messages), messages
    assert any(f"{table} line 5: size" in m and "positive" in m for m in messages), messages
    assert any(f"{table} line 6: ra/dec" in m and "right ascension" in m for m in messages), messages
    assert not any("unknown target" in p[1] for p in problems), problems  # no cascade
    with pytest.raises(ManifestError, match="line 3: dec is missing"):
        read_targets_file(table)


def test_targets_file_row_without_dec_exits_2(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("name,ra,dec\na,10,\n")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump({"targets_file": str(table)}))
    assert main(["validate", str(manifest)]) == 2
    assert f"{table} line 2: dec is missing" in capsys.readouterr().err


def test_name_only_rows_are_targets_to_resolve(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("name,ra,dec\nTIC 261136679,,\n")
    (target,) = validate_manifest({"targets_file": str(table)}).targets
    assert target.coordinates is None


def test_targets_file_duplicates_and_missing_columns(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("name,ra,dec\na,1,2\n")
    problems = problems_of({**base(), "targets_file": str(table)})
    assert "line 2: duplicate target name (also targets[0])" in message_for(problems, "targets_file")
    table.write_text("name,ra\na,1\n")
    assert "missing column(s) ['dec']" in message_for(
        problems_of({"targets_file": str(table)}), "targets_file"
    )


# ------------------------------------------------------------------------------------------ one pass


def test_field_errors_and_cross_references_in_one_pass():
    data = copy.deepcopy(base())
    data["targets"][0]["size"] = 0  # a field error in the target ...
    data["inputs"]["img"]["targets"] = ["a", "nobody"]  # ... and a reference error elsewhere
    data["render"] = {"r": {"inputs": ["ghost"]}}
    problems = problems_of(data)
    assert {"targets[0].size", "inputs.img.targets[1]", "render.r.inputs[0]"} <= fields(problems)
    assert "inputs.img.targets[0]" not in fields(problems)  # 'a' is defined, though its size is bad


def test_misspelt_keys_get_the_nearest_valid_key():
    data = base()
    data["tragets"] = data.pop("targets")
    data["inputs"]["img"]["pahts"] = data["inputs"]["img"].pop("paths")
    data["cubes"] = {"c": {"files": ["f"], "sector": 1, "camera": 1, "ccd": 1, "max_memroy": 1}}
    data["demo"] = {"tess": {"nffi": 3}}
    problems = problems_of(data)
    assert "did you mean 'targets'?" in message_for(problems, "tragets")
    assert "did you mean 'paths'?" in message_for(problems, "inputs.img.pahts")
    assert "did you mean 'max_memory'?" in message_for(problems, "cubes.c.max_memroy")
    assert "did you mean 'n_ffi'?" in message_for(problems, "demo.tess.nffi")
    assert "did you mean" not in message_for(problems_of({**base(), "zzzzzz": 1}), "zzzzzz")


def test_misspelt_references_get_the_nearest_name():
    data = base()
    data["inputs"]["img"]["targets"] = ["aa"]
    data["combine"] = {"m": {"inputs": ["im", "img"]}}
    problems = problems_of(data)
    assert "did you mean 'a'?" in message_for(problems, "inputs.img.targets[0]")
    assert "did you mean 'img'?" in message_for(problems, "combine.m.inputs[0]")


def test_validate_reports_globs_with_everything_else(in_tmp, capsys):
    data = base()
    data["targets"][0]["size"] = -1
    data["inputs"]["img"]["paths"] = ["nothing/*.fits"]
    data["tragets"] = []
    (in_tmp / "m.yaml").write_text(yaml.safe_dump(data))
    assert main(["validate", "m.yaml"]) == 2
    err = capsys.readouterr().err
    assert "INVALID (3 problems)" in err
    assert "targets[0].size" in err and "did you mean 'targets'?" in err
    assert "inputs.img.paths: no file matches 'nothing/*.fits'" in err


def test_demo_globs_count_as_matches(in_tmp, capsys):
    assert main(["validate", str(ROOT / "config.example.yaml")]) == 0
    assert "OK" in capsys.readouterr().out


def test_validate_warns_that_custom_combiners_are_code(in_tmp, capsys):
    data = base()
    data["inputs"]["img2"] = {"paths": ["y.fits"]}
    data["combine"] = {"m": {"inputs": ["img", "img2"], "combiner": "mypkg.combiners:build"}}
    (in_tmp / "m.yaml").write_text(yaml.safe_dump(data))
    assert main(["validate", "m.yaml"]) == 0
    captured = capsys.readouterr()
    assert "OK" in captured.out
    assert (
        "combine.m.combiner: 'mypkg.combiners:build' is code" in captured.err
        and "--allow-code" in captured.err
    )


def test_plan_exits_2_for_file_level_problems(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text("a: 1\na: 2\n")
    assert main(["plan", str(path)]) == 2
    assert "duplicate key 'a'" in capsys.readouterr().err


def test_cwd_is_unchanged():
    assert Path(os.getcwd()).exists()
