"""Rule `image_cutouts`: cut one batch of targets from one input set."""

from skycut.core.coords import pixel_limit
from skycut.pipeline.jobs.images import cut_images
from skycut.pipeline.jobs.index import provenance
from skycut.pipeline.jobs.joblog import job_log

job = snakemake.params.job
with job_log(snakemake.log[0]), provenance(snakemake.params.provenance), pixel_limit(job.max_pixels):
    cut_images(snakemake.params.files, job.targets, job.spec, snakemake.output[0])
