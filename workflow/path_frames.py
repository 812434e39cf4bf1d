"""Rule `path_frames`: a strip and an animated GIF of a moving-target TPF's frames."""

from pathlib import Path

from skycut.pipeline.jobs.index import provenance
from skycut.pipeline.jobs.joblog import job_log
from skycut.pipeline.jobs.paths import moving_target_frames

name, target = snakemake.wildcards.name, snakemake.params.spec.target
strip = Path(snakemake.output[0])
with (
    job_log(snakemake.log[0]),
    provenance(snakemake.params.provenance, stamp=[strip, strip.with_suffix(".gif")]),
):
    moving_target_frames(snakemake.input[0], str(strip), title=f"{name}: {target}" if target else name)
