"""Rule `cube`: build one TESS FFI cube."""

from skycut.pipeline.jobs.cubes import build_cube
from skycut.pipeline.jobs.index import provenance
from skycut.pipeline.jobs.joblog import job_log

with job_log(snakemake.log[0]), provenance(snakemake.params.provenance, stamp=snakemake.output):
    build_cube(list(snakemake.input), snakemake.params.spec, snakemake.output[0])
