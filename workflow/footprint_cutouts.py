"""Rule `footprint_cutouts`: TPFs for one batch of targets from every cube whose footprint overlaps them."""
from skycut.pipeline.products import configure_logging, footprint_cutouts

configure_logging(snakemake.log[0])
spec = snakemake.params.spec
footprint_cutouts(
    snakemake.params.targets,
    snakemake.params.out_dir,
    snakemake.output[0],
    sectors=spec["sectors"],
    footprint_uri=spec["footprint_uri"],
    cube_base_uri=spec["cube_base_uri"],
    fill_value=spec["fill_value"],
    threads=spec["threads"],
    fsspec_kwargs=snakemake.params.fsspec,
)
