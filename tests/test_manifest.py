"""Manifest validation: good manifests load; each bad one fails with a message naming the field."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from skycut.core.coords import parse_size
from skycut.exceptions import ManifestError
from skycut.pipeline.manifest import Manifest, load_manifest, validate_manifest

ROOT = Path(__file__).resolve().parents[1]


def good() -> dict:
    return {
        "output_dir": "results",
        "targets": [
            {"name": "m1", "coordinates": "150.0945 2.38681", "size": [200, 300]},
            {"name": "m2", "coordinates": "10:00:22.7 +02:23:12.5", "size": "30 arcsec"},
            {"name": "m3", "coordinates": [150.1, 2.4]},
            {
                "name": "m4",
                "coordinates": {"ra": 150.2, "dec": 2.5, "frame": "icrs"},
                "size": ["1 arcmin", 40],
            },
        ],
        "inputs": {
            "hst": {"paths": ["data/*.fits"], "extensions": "all", "fill_value": 0},
            "roman": {
                "paths": ["s3://bucket/r.asdf"],
                "format": "asdf",
                "lite": True,
                "fsspec": {"anon": True, "endpoint_url": "http://127.0.0.1:5000"},
            },
            "hst2": {"paths": ["https://example.org/x.fits"], "targets": ["m1"]},
        },
        "cubes": {"s11": {"files": ["ffis/*.fits"], "sector": 11, "camera": 1, "ccd": 1, "max_memory": 0.5}},
        "cube_cutouts": {
            "tpfs": {
                "cubes": ["s11", "s3://stpubdata/tess/public/mast/tess-s0038-2-2-cube.fits"],
                "threads": "auto",
                "batch_size": 10,
            }
        },
        "footprint_cutouts": {"cloud": {"targets": ["m1"], "sectors": [1, 2]}},
        "paths": {"rock": {"table": "path.csv", "size": [15, 15], "target": "2000 AB", "cubes": ["s11"]}},
        "combine": {"mosaic": {"inputs": ["hst", "hst2"], "combiner": "median"}},
        "render": {
            "grey": {
                "inputs": ["hst", "mosaic"],
                "stretch": "sqrt",
                "minmax_percent": [1, 99],
                "invert": True,
            },
            "rgb": {"inputs": ["hst", "hst2", "hst"], "colorize": True, "format": "jpg"},
        },
        "demo": {"seed": 3, "tess": {"n_ffi": 4, "shape": [64, 64]}, "hst": {"bands": ["f606w"]}},
    }


def test_good_manifest_loads():
    m = validate_manifest(good())
    assert isinstance(m, Manifest)
    assert [t.name for t in m.targets] == ["m1", "m2", "m3", "m4"]
    assert m.size_of(m.targets[2]) == parse_size(25)  # target_defaults
    assert m.targets[2].size == parse_size(25) and m.targets[2].size.pixels() == (25, 25)
    assert m.cube_cutouts["tpfs"].threads == "auto"
    assert m.inputs["hst"].fill_value == 0
    assert m.inputs["hst2"].fill_value is None  # NaN by default
    assert m.demo_directory() == str(Path("results") / "demo")


def test_example_config_is_valid():
    m = load_manifest(ROOT / "config.example.yaml")
    assert m.demo is not None
    assert m.targets


def test_empty_manifest_is_valid():
    assert validate_manifest({}).output_dir == "results"


def test_targets_file(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("name,ra,dec,size\na,10.0,20.0,11\nb,11.0,-5.5,\n")
    m = validate_manifest({"targets_file": str(csv)})
    assert [(t.name, t.size_given) for t in m.targets] == [("a", 11), ("b", None)]
    assert [(t.name, t.size.pixels()) for t in m.targets] == [("a", (11, 11)), ("b", (25, 25))]
    assert [(t.ra, t.dec) for t in m.targets] == [(10.0, 20.0), (11.0, -5.5)]


def test_nan_fill_value_from_yaml():
    m = validate_manifest(
        yaml.safe_load(
            "targets: [{name: t, coordinates: '1 2'}]\ninputs: {a: {paths: [x.fits], fill_value: .nan}}"
        )
    )
    assert math.isnan(m.inputs["a"].fill_value)


def _set(data: dict, path: str, value):
    """Set a dotted/indexed path such as 'targets[0].size' in a nested dict (value None deletes)."""
    parts = path.replace("]", "").replace("[", ".").split(".")
    node = data
    for p in parts[:-1]:
        node = node[int(p)] if p.isdigit() else node[p]
    last = parts[-1]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


_DELETE = object()

BAD = [
    # (path to change, new value, field path expected in the message, word expected in the message)
    ("outptu_dir", "x", "outptu_dir", "Extra inputs"),
    ("targets[0].name", "a\tb", "targets[0].name", "non-printable"),  # '../escape', 'a/b': test_target_names
    ("targets[0].name", " padded", "targets[0].name", "white space"),
    ("targets[1].name", "m1", "targets[1].name", "duplicate"),
    ("targets[0].coordinates", "not a place", "targets[0].coordinates", "cannot parse"),
    ("targets[0].coordinates", [1.0, 2.0, 3.0], "targets[0].coordinates", "two numbers"),
    ("targets[0].coordinates", "10 95", "targets[0].coordinates", "declination"),
    ("targets[3].coordinates", {"ra": 1.0, "decl": 2.0}, "targets[3].coordinates", "exactly the keys"),
    ("targets[3].coordinates", {"ra": "nowhere", "dec": "x"}, "targets[3].coordinates", "cannot parse"),
    ("targets[0].size", 0, "targets[0].size", "positive"),
    ("targets[0].size", [10, -3], "targets[0].size", "positive"),
    ("targets[0].size", [1, 2, 3], "targets[0].size", "two values"),
    ("targets[0].size", "30 kg", "targets[0].size", "pixels or an angular"),
    ("targets[0].colour", "red", "targets[0].colour", "Extra inputs"),
    ("inputs.hst.paths", [], "inputs.hst.paths", "at least 1"),
    ("inputs.hst.format", "tiff", "inputs.hst.format", "'fits' or 'asdf'"),
    ("inputs.hst.lite", True, "inputs.hst.lite", "asdf inputs only"),
    ("inputs.hst.targets", ["nobody"], "inputs.hst.targets[0]", "unknown target"),
    ("inputs.hst.batch_size", 0, "inputs.hst.batch_size", "greater than 0"),
    ("inputs.roman.extensions", 1, "inputs.roman.extensions", "FITS inputs only"),
    ("inputs.roman.fsspec.endpoint", "http://x", "inputs.roman.fsspec.endpoint", "Extra inputs"),
    ("inputs.bad/name", {"paths": ["x.fits"]}, "inputs.bad/name", "letters"),
    ("cubes.s11.camera", 5, "cubes.s11.camera", "less than or equal to 4"),
    ("cubes.s11.sector", 0, "cubes.s11.sector", "greater than 0"),
    ("cubes.s11.max_memory", -1, "cubes.s11.max_memory", "greater than 0"),
    ("cube_cutouts.tpfs.cubes", ["nocube"], "cube_cutouts.tpfs.cubes[0]", "unknown cube"),
    ("cube_cutouts.tpfs.threads", 0, "cube_cutouts.tpfs.threads", "threads"),
    ("footprint_cutouts.cloud.sectors", [0], "footprint_cutouts.cloud.sectors", "positive"),
    ("paths.rock.sectors", [1], "paths.rock.cubes", "exactly one of cubes or sectors"),
    ("paths.rock.time_format", "unix", "paths.rock.time_format", "'jd'"),
    ("combine.mosaic.inputs", ["hst"], "combine.mosaic.inputs", "at least 2"),
    ("combine.mosaic.inputs", ["hst", "roman"], "combine.mosaic.inputs[1]", "only FITS"),
    ("combine.mosaic.combiner", "max", "combine.mosaic.combiner", "mean"),
    ("render.grey.stretch", "cubic", "render.grey.stretch", "'asinh'"),
    ("render.grey.minmax_value", [0, 1], "render.grey.minmax_value", "only one of"),
    ("render.grey.minmax_percent", [99, 1], "render.grey.minmax_percent", "low < high"),
    ("render.grey.minmax_percent", [1, 120], "render.grey.minmax_percent", "[0, 100]"),
    ("render.grey.inputs", ["ghost"], "render.grey.inputs[0]", "unknown input set"),
    ("render.rgb.inputs", ["hst", "hst2"], "render.rgb.inputs", "exactly three"),
    ("render.rgb.format", "gif", "render.rgb.format", "'png' or 'jpg'"),
    ("demo.tess.ccd", 9, "demo.tess.ccd", "less than or equal to 4"),
    ("demo.tess.shape", [8, 8], "demo.tess", "at least 16"),
    ("targets_file", "/nonexistent/targets.csv", "targets_file", "No such file"),
]


@pytest.mark.parametrize(("path", "value", "field", "word"), BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_bad_manifest_names_field(path, value, field, word):
    data = _set(copy.deepcopy(good()), path, value)
    with pytest.raises(ManifestError) as info:
        validate_manifest(data)
    problems = info.value.problems
    matching = [p for p in problems if p[0] == field]
    assert matching, f"no problem for {field}; got {problems}"
    assert any(word.lower() in p[1].lower() for p in matching), matching
    assert field in str(info.value)


def test_every_problem_is_reported_at_once():
    data = good()
    data["targets"][0]["size"] = 0
    data["cubes"]["s11"]["ccd"] = 7
    data["render"]["grey"]["stretch"] = "cubic"
    with pytest.raises(ManifestError) as info:
        validate_manifest(data)
    fields = {p[0] for p in info.value.problems}
    assert {"targets[0].size", "cubes.s11.ccd", "render.grey.stretch"} <= fields


def test_bad_value_is_reported():
    data = good()
    data["cubes"]["s11"]["camera"] = 5
    with pytest.raises(ManifestError) as info:
        validate_manifest(data)
    assert ("cubes.s11.camera", 5) in {(p[0], p[2]) for p in info.value.problems}


def test_sections_needing_targets():
    with pytest.raises(ManifestError) as info:
        validate_manifest({"inputs": {"a": {"paths": ["x.fits"]}}})
    assert info.value.problems[0][0] == "targets"


def test_manifest_not_a_mapping():
    with pytest.raises(ManifestError, match="mapping"):
        validate_manifest(["a", "b"])


def test_load_bad_yaml(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("targets: [\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_manifest(p)
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "missing.yaml")


def test_coordinate_mapping_with_frame_becomes_icrs():
    from astropy.coordinates import SkyCoord

    from skycut.core.coords import parse_coordinates

    got = parse_coordinates({"ra": 120.0, "dec": -30.0, "frame": "galactic"})
    want = SkyCoord(120.0, -30.0, unit="deg", frame="galactic").icrs
    assert len(got) == 1 and got[0].separation(want).arcsec < 1e-6
    assert parse_coordinates({"ra": "10h00m22.7s", "dec": "+02d23m12.5s"})[0].ra.deg > 150
