"""Rule `simulate`: make the manifest's demo data."""

from skycut.pipeline.jobs.demo import make_demo
from skycut.pipeline.jobs.joblog import job_log

job = snakemake.params.job
with job_log(snakemake.log[0]):
    make_demo(job.spec, job.directory, path_table=job.path_table, footprints=job.footprints)
