"""Rule `moving_target`: follow one path through its cubes into a moving-target TPF."""
from skycut.pipeline.products import configure_logging, moving_target

configure_logging(snakemake.log[0])
spec = snakemake.params.spec
moving_target(
    spec["table"],
    spec["size"],
    snakemake.params.cubes,
    snakemake.output[0],
    time_format=spec["time_format"],
    target=spec["target"],
    fsspec_kwargs=snakemake.params.fsspec,
)
