"""Rule `gallery`: the workflow's images copied into the report's gallery directories."""

from skycut.pipeline.jobs.gallery import build_gallery
from skycut.pipeline.jobs.joblog import job_log

with job_log(snakemake.log[0]):
    build_gallery(snakemake.params.spec, dict(snakemake.output.items()))
