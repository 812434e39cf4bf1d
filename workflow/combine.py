"""Rule `combine`: combine each target's cutouts from several input sets."""
from skycut.pipeline.products import combine_cutouts, configure_logging

configure_logging(snakemake.log[0])
spec = snakemake.params.spec
combine_cutouts(
    snakemake.params.inputs,
    snakemake.params.out_dir,
    snakemake.output[0],
    targets=spec["targets"],
    combiner=spec["combiner"],
    null_value=spec["null_value"],
)
