# Helpers shared by the rule files: the validated manifest, the plan, and input functions.
import sys

from skycut.exceptions import ManifestError
from skycut.pipeline.manifest import validate_manifest
from skycut.pipeline.plan import Plan, fsspec_kwargs, memory_mb

if not config:
    sys.exit("skycut: no manifest given; run: snakemake --configfile MANIFEST.yaml --cores N")

try:
    MANIFEST = validate_manifest(config)
    PLAN = Plan(MANIFEST)
except ManifestError as exc:
    sys.exit(f"skycut: {exc}")
except ValueError as exc:
    sys.exit(f"skycut: invalid manifest: {exc}")

OUT = PLAN.out

wildcard_constraints:
    input_set=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    batch=r"batch-\d{4}",
    name=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    spec=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    cube=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",


def image_job(wildcards):
    return PLAN.image_job(wildcards.input_set, wildcards.batch)


def image_inputs(wildcards):
    return PLAN.local_inputs(PLAN.input_files(wildcards.input_set))


def cube_cutout_job(wildcards):
    return PLAN.cube_cutout_job(wildcards.spec, wildcards.cube, wildcards.batch)


def cube_cutout_source(wildcards):
    return PLAN.cube_source(PLAN.cube_ref(wildcards.spec, wildcards.cube))


def cube_cutout_inputs(wildcards):
    source = cube_cutout_source(wildcards)
    return [] if "://" in source else [source]
