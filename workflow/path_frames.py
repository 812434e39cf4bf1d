"""Rule `path_frames`: a strip and an animated GIF of a moving-target TPF's frames."""

from skycut.pipeline.jobs.joblog import job_log
from skycut.pipeline.jobs.paths import moving_target_frames

name, target = snakemake.wildcards.name, snakemake.params.spec.target
with job_log(snakemake.log[0]):
    moving_target_frames(
        snakemake.input[0], snakemake.output[0], title=f"{name}: {target}" if target else name
    )
