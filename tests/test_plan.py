"""The planner: manifest -> jobs, batches and output paths (no Snakemake needed)."""

from __future__ import annotations

import pytest

from skycut.core.coords import parse_size
from skycut.core.remote import is_remote
from skycut.pipeline.manifest import validate_manifest
from skycut.pipeline.options import fsspec_kwargs
from skycut.pipeline.plan import LAYOUT, Plan, batches, memory_mb, normalise_dir, resolve_paths


def manifest(n_targets=7, **extra):
    data = {
        "output_dir": "out",
        "targets": [{"name": f"t{i}", "coordinates": [(10 + i) % 360, 20]} for i in range(n_targets)],
        "inputs": {
            "img": {"paths": ["a.fits"], "batch_size": 3},
            "few": {"paths": ["https://host/x.fits"], "targets": ["t1", "t2"]},
        },
        "cubes": {"s11": {"files": ["ffi/*.fits"], "sector": 11, "camera": 2, "ccd": 3, "max_memory": 0.5}},
        "cube_cutouts": {"tpf": {"cubes": ["s11", "s3://bucket/tess-s0038-2-2-cube.fits"], "batch_size": 4}},
    }
    data.update(extra)
    return validate_manifest(data)


def test_batches_keep_order_and_size():
    assert batches(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert batches([], 3) == []


def test_image_jobs_are_batched_per_input_set():
    plan = Plan(manifest())
    jobs = plan.image_jobs()
    img = [j for j in jobs if j.key == "img"]
    assert [j.batch for j in img] == ["batch-0000", "batch-0001", "batch-0002"]
    assert [t.name for j in img for t in j.targets] == [f"t{i}" for i in range(7)]
    few = [j for j in jobs if j.key == "few"]
    assert len(few) == 1 and [t.name for t in few[0].targets] == ["t1", "t2"]
    assert few[0].targets[0].size == parse_size(25)  # target_defaults.size
    assert few[0].spec is plan.manifest.inputs["few"]  # the job is handed the typed manifest section


def test_ten_thousand_targets_make_tens_of_cube_jobs():
    m = manifest(n_targets=10_000)
    jobs = Plan(m).cube_cutout_jobs()
    per_cube = {j.key for j in jobs}
    assert per_cube == {"tpf/s11", "tpf/tess-s0038-2-2"}
    assert len(jobs) == 2 * 2500  # batch_size 4 here; with the default 100 it is 2 x 100
    m.cube_cutouts["tpf"].batch_size = 100
    assert len(Plan(m).cube_cutout_jobs()) == 200


def test_paths_and_cube_sources():
    plan = Plan(manifest())
    assert plan.cube_path("s11") == "out/cubes/s11-cube.fits"
    assert plan.cube_source("s11") == "out/cubes/s11-cube.fits"
    assert plan.cube_ref("tpf", "tess-s0038-2-2") == "s3://bucket/tess-s0038-2-2-cube.fits"
    assert plan.cube_source("s3://bucket/tess-s0038-2-2-cube.fits").startswith("s3://")
    outs = plan.all_outputs()
    assert "out/image_cutouts/img/batch-0002.json" in outs
    assert "out/cubes/s11-cube.fits" in outs
    assert "out/cube_cutouts/tpf/tess-s0038-2-2/batch-0001.json" in outs


def test_resolve_paths_globs_files_and_known(tmp_path):
    (tmp_path / "b.fits").write_text("x")
    (tmp_path / "a.fits").write_text("x")
    known = {str(tmp_path / "c.fits")}
    got = resolve_paths([str(tmp_path / "*.fits"), "s3://bucket/k.fits"], known)
    assert got == [str(tmp_path / n) for n in ("a.fits", "b.fits", "c.fits")] + ["s3://bucket/k.fits"]
    with pytest.raises(ValueError, match="no file matches"):
        resolve_paths([str(tmp_path / "*.asdf")])


def test_misc_helpers():
    assert is_remote("s3://b/k") and is_remote("https://h/x") and not is_remote("/data/x.fits")
    assert memory_mb(0.3) == 600
    m = manifest()
    assert fsspec_kwargs(m.inputs["img"].fsspec) is None
    m2 = validate_manifest(
        {
            "targets": [{"name": "a", "coordinates": "1 2"}],
            "inputs": {"r": {"paths": ["s3://b/x.fits"], "fsspec": {"endpoint_url": "http://e"}}},
        }
    )
    assert fsspec_kwargs(m2.inputs["r"].fsspec) == {"endpoint_url": "http://e"}


def test_demo_outputs_are_known_to_globs():
    m = validate_manifest(
        {
            "output_dir": "out",
            "targets": [{"name": "a", "coordinates": "1 2"}],
            "demo": {"tess": {"n_ffi": 3, "shape": [32, 32]}},
            "cubes": {"s": {"files": ["out/demo/tess/*ffic.fits"], "sector": 11, "camera": 1, "ccd": 1}},
        }
    )
    plan = Plan(m)
    ffis = [f for f in plan.demo_outputs() if f.endswith("ffic.fits")]
    assert len(ffis) == 3
    assert plan.cube_files("s") == ffis
    # the path table and footprint file the demo writes for moving-target and footprint stages
    assert {p.rsplit("/", 1)[-1] for p in plan.demo_outputs()} >= {
        "moving_target_path.ecsv",
        "tess_ffi_footprint_cache.json",
    }


@pytest.mark.parametrize(
    ("output_dir", "prefix"),
    [
        ("results", "results/"),
        ("./results", "results/"),
        ("results/", "results/"),
        (".", ""),
        ("./", ""),
        ("/data/run1/", "/data/run1/"),
    ],
)
def test_output_dir_is_normalised(output_dir, prefix):
    plan = Plan(manifest(output_dir=output_dir, allow_output_outside=True))  # /data/run1/ is outside the cwd
    assert plan.cube_path("s11") == f"{prefix}cubes/s11-cube.fits"
    assert plan.output_pattern("image_cutouts") == f"{prefix}image_cutouts/{{input_set}}/{{batch}}.json"
    assert plan.log_pattern("cube") == f"{prefix}logs/cubes/{{cube}}.log"
    assert all("./" not in p and "//" not in p for p in plan.all_outputs())


def test_concrete_paths_are_the_rule_patterns_formatted():
    plan = Plan(manifest())
    for job in plan.image_jobs():
        assert plan.image_index(job.key, job.batch) == plan.output_pattern("image_cutouts").format(
            input_set=job.key, batch=job.batch
        )
    assert (
        plan.output("cube_cutouts", spec="tpf", cube="s11", batch="batch-0000")
        == plan.cube_cutout_index("tpf/s11", "batch-0000")
        == "out/cube_cutouts/tpf/s11/batch-0000.json"
    )
    # every rule has a log; every output pattern lives under output_dir
    assert all(paths.log.startswith("logs/") for paths in LAYOUT.values())
    assert normalise_dir("a/./b/") == "a/b"


def test_demo_paths_under_dot_output_dir_match_manifest_globs():
    m = validate_manifest(
        {
            "output_dir": "./",
            "targets": [{"name": "a", "coordinates": "1 2"}],
            "demo": {"tess": {"n_ffi": 2, "shape": [32, 32]}},
            "cubes": {"s": {"files": ["./demo/tess/*ffic.fits"], "sector": 11, "camera": 1, "ccd": 1}},
        }
    )
    plan = Plan(m)
    assert plan.cube_files("s") == [f for f in plan.demo_outputs() if f.endswith("ffic.fits")]
    assert all(f.startswith("demo/tess/") for f in plan.cube_files("s"))
    job = plan.demo_job()
    assert (job.directory, job.path_table, job.footprints) == (
        "demo",
        "demo/tess/moving_target_path.ecsv",
        "demo/tess/tess_ffi_footprint_cache.json",
    )
