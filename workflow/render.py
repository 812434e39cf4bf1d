"""Rule `render`: PNG/JPG images of cutouts."""
from skycut.pipeline.products import configure_logging, render_images

configure_logging(snakemake.log[0])
spec = snakemake.params.spec
render_images(
    snakemake.params.inputs,
    snakemake.params.out_dir,
    snakemake.output[0],
    targets=spec["targets"],
    stretch=spec["stretch"],
    minmax_percent=spec["minmax_percent"],
    minmax_value=spec["minmax_value"],
    invert=spec["invert"],
    colorize=spec["colorize"],
    image_format=spec["format"],
)
