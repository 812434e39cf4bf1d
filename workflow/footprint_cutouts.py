"""Rules `footprint_cube_cutouts` and `footprint_cutouts`: TPFs for one batch of targets, from one cube found by
the offline plan (the job has a cube), or from every cube a footprint file matches."""

from skycut.core.coords import pixel_limit
from skycut.pipeline.jobs.footprints import footprint_cube_cutouts, footprint_cutouts
from skycut.pipeline.jobs.index import provenance
from skycut.pipeline.jobs.joblog import job_log

job = snakemake.params.job
with job_log(snakemake.log[0]), provenance(snakemake.params.provenance), pixel_limit(job.max_pixels):
    if job.cube is not None:
        footprint_cube_cutouts(job.cube, job.targets, job.spec, snakemake.output[0])
    else:
        footprint_cutouts(job.targets, job.spec, snakemake.output[0])
