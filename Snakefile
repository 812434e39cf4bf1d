# skycut workflow: snakemake --configfile config.example.yaml --cores 2
# The manifest (config) is validated by skycut's pydantic models before any job runs.
from snakemake.utils import min_version

min_version("8.0")


include: "rules/common.smk"


onsuccess:
    finish_run(succeeded=True)


onerror:
    finish_run(succeeded=False)


rule all:
    default_target: True
    input:
        all_outputs,


include: "rules/simulate.smk"
include: "rules/image_cutouts.smk"
include: "rules/combine.smk"
include: "rules/render.smk"
include: "rules/cubes.smk"
include: "rules/cube_cutouts.smk"
include: "rules/footprint_cutouts.smk"
include: "rules/paths.smk"
include: "rules/report.smk"
