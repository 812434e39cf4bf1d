"""Rule `image_cutouts`: cut one batch of targets from one input set."""
from skycut.pipeline.products import configure_logging, cut_images

configure_logging(snakemake.log[0])
spec = snakemake.params.spec
cut_images(
    snakemake.params.files,
    snakemake.params.targets,
    snakemake.params.out_dir,
    snakemake.output[0],
    file_format=spec["format"],
    extensions=spec["extensions"],
    fill_value=spec["fill_value"],
    lite=spec["lite"],
    output_format=spec["output_format"],
    fsspec_kwargs=snakemake.params.fsspec,
)
