# Helpers shared by the workflow's rule files; the validated manifest, the plan, the wildcard constraints and
# the named input/params functions. Every path comes from the plan (skycut.pipeline.plan.LAYOUT), spelled once.
import sys

from skycut.pipeline.cli import check_config, report_lines
from skycut.pipeline.plan import BATCH_WILDCARD, NAME_WILDCARD, Plan, memory_mb
from skycut.pipeline.resolve import TargetResolutionError

if not config:
    print(
        "skycut: no manifest given; run: skycut run MANIFEST.yaml --cores N",
        file=sys.stderr,
    )
    sys.exit(2)

# the checks and messages of `skycut validate` (fields, references, globs), exit status 2 like it
MANIFEST, _PROBLEMS, _WARNINGS = check_config(config)
for _line in report_lines([], _WARNINGS):
    print(_line, file=sys.stderr)
if _PROBLEMS:
    print(f"skycut: invalid manifest ({len(_PROBLEMS)} problems):", file=sys.stderr)
    print(*report_lines(_PROBLEMS), sep="\n", file=sys.stderr)
    sys.exit(2)

try:  # the plan resolves the targets given by name only, once, before the DAG
    PLAN = Plan(MANIFEST)
except TargetResolutionError as exc:
    sys.exit(f"skycut: {exc}")
except ValueError as exc:
    print(f"skycut: invalid manifest: {exc}", file=sys.stderr)
    sys.exit(2)


wildcard_constraints:
    input_set=NAME_WILDCARD,
    name=NAME_WILDCARD,
    spec=NAME_WILDCARD,
    cube=NAME_WILDCARD,
    batch=BATCH_WILDCARD,


# image cutouts
def image_job(wildcards):
    return PLAN.image_job(wildcards.input_set, wildcards.batch)


def image_files(wildcards):
    return PLAN.input_files(wildcards.input_set)


def image_inputs(wildcards):
    return PLAN.local_inputs(PLAN.input_files(wildcards.input_set))


# combine and render
def combine_inputs(wildcards):
    return PLAN.combine_inputs(wildcards.name)


def combine_spec(wildcards):
    return MANIFEST.combine[wildcards.name]


def render_inputs(wildcards):
    return PLAN.render_inputs(wildcards.name)


def render_spec(wildcards):
    return MANIFEST.render[wildcards.name]


# cubes and cube cutouts
def cube_files(wildcards):
    return PLAN.cube_files(wildcards.cube)


def cube_spec(wildcards):
    return MANIFEST.cubes[wildcards.cube]


def cube_mem_mb(wildcards):
    return memory_mb(MANIFEST.cubes[wildcards.cube].max_memory)


def cube_cutout_job(wildcards):
    return PLAN.cube_cutout_job(wildcards.spec, wildcards.cube, wildcards.batch)


def cube_cutout_inputs(wildcards):
    return PLAN.local_inputs([cube_cutout_job(wildcards).cube])


# footprint cutouts and moving targets
def footprint_job(wildcards):
    return PLAN.footprint_job(wildcards.spec, wildcards.batch)


def footprint_inputs(wildcards):
    return PLAN.footprint_local_inputs(wildcards.spec)


def footprint_cube_job(wildcards):
    return PLAN.footprint_job(f"{wildcards.spec}/{wildcards.cube}", wildcards.batch)


def footprint_cube_inputs(wildcards):
    return PLAN.footprint_cube_inputs(wildcards.spec, wildcards.cube, wildcards.batch)


def path_inputs(wildcards):
    return PLAN.path_inputs(wildcards.name)


def path_cubes(wildcards):
    return PLAN.path_cubes(wildcards.name)


def path_spec(wildcards):
    return MANIFEST.paths[wildcards.name]


# provenance: the manifest hashes each job stamps into its products (skycut.pipeline.plan.Plan.provenance); plain
# dicts of strings, so Snakemake's params trigger reruns exactly the jobs whose targets or entry changed
def image_provenance(wildcards):
    return PLAN.job_provenance("inputs", image_job(wildcards))


def combine_provenance(wildcards):
    return PLAN.combine_provenance(wildcards.name)


def render_provenance(wildcards):
    return PLAN.render_provenance(wildcards.name)


def cube_provenance(wildcards):
    return PLAN.provenance("cubes", wildcards.cube)


def cube_cutout_provenance(wildcards):
    return PLAN.job_provenance("cube_cutouts", cube_cutout_job(wildcards))


def footprint_provenance(wildcards):
    return PLAN.job_provenance("footprint_cutouts", footprint_job(wildcards))


def footprint_cube_provenance(wildcards):
    return PLAN.job_provenance("footprint_cutouts", footprint_cube_job(wildcards))


def path_provenance(wildcards):
    return PLAN.provenance("paths", wildcards.name)


# tracked products: rule all's input. Snakemake only sees the index of a batch job, so the products each existing
# index lists are checked here (size, then the stat cached at write time, then SHA-256), and the job of every
# index with a missing or changed product is forced to run again (shown by `snakemake -n` as forced). The DAG
# exists when Snakemake asks rule all for its input (workflow.dag_settings.forcerun is read before that).
def all_outputs(wildcards):
    damaged = PLAN.damaged_indexes()
    for index, problems in damaged.items():
        listing = ", ".join(f"{path} ({why})" for path, why in sorted(problems.items()))
        print(f"skycut: rebuilding {index}: {listing}", file=sys.stderr)
    if damaged and workflow.dag is not None:
        workflow.dag.forcefiles.update(damaged)
    return PLAN.all_outputs()


# the end of a run: the summary per stage, printed and written to <output_dir>/summary.tsv
def finish_run(succeeded):
    from skycut.pipeline.summary import finish_run as summarise

    lines, status = summarise(PLAN, succeeded=succeeded)
    print(*lines, sep="\n", file=sys.stderr)
    if status:
        sys.exit(status)
