"""Rule `cube_cutouts`: cut one batch of targets from one cube into target pixel files."""

from skycut.core.coords import pixel_limit
from skycut.pipeline.jobs.cube_cutouts import cut_cube
from skycut.pipeline.jobs.index import provenance
from skycut.pipeline.jobs.joblog import job_log

job = snakemake.params.job
with job_log(snakemake.log[0]), provenance(snakemake.params.provenance), pixel_limit(job.max_pixels):
    cut_cube(job.cube, job.targets, job.spec, snakemake.output[0])
