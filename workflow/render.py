"""Rule `render`: PNG/JPG images of cutouts."""

from skycut.pipeline.jobs.index import provenance
from skycut.pipeline.jobs.joblog import job_log
from skycut.pipeline.jobs.render import render_images

with job_log(snakemake.log[0]), provenance(snakemake.params.provenance):
    render_images(snakemake.params.inputs, snakemake.params.spec, snakemake.output[0])
