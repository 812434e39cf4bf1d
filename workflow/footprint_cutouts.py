"""Rule `footprint_cutouts`: TPFs for one batch of targets from every cube whose footprint overlaps them."""
from skycut.pipeline.jobs.footprints import footprint_cutouts
from skycut.pipeline.jobs.joblog import job_log

job = snakemake.params.job
with job_log(snakemake.log[0]):
    footprint_cutouts(job.targets, job.spec, snakemake.output[0])
