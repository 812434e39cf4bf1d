"""Rule `cube`: build one TESS FFI cube."""
from skycut.pipeline.products import build_cube, configure_logging

configure_logging(snakemake.log[0])
build_cube(
    list(snakemake.input),
    snakemake.output[0],
    sector=snakemake.params.sector,
    max_memory=snakemake.params.max_memory,
)
