"""Rule `combine`: combine each target's cutouts from several input sets."""

from skycut.pipeline.jobs.combine import combine_cutouts
from skycut.pipeline.jobs.index import provenance
from skycut.pipeline.jobs.joblog import job_log

with job_log(snakemake.log[0]), provenance(snakemake.params.provenance):
    combine_cutouts(snakemake.params.inputs, snakemake.params.spec, snakemake.output[0])
