"""Rule `moving_target`: follow one path through its cubes into a moving-target TPF."""

from skycut.pipeline.jobs.index import provenance
from skycut.pipeline.jobs.joblog import job_log
from skycut.pipeline.jobs.paths import moving_target

with job_log(snakemake.log[0]), provenance(snakemake.params.provenance, stamp=snakemake.output):
    moving_target(snakemake.params.spec, snakemake.params.cubes, snakemake.output[0])
