"""Rule `cube_cutouts`: cut one batch of targets from one cube into target pixel files."""
from skycut.pipeline.products import configure_logging, cut_cube

configure_logging(snakemake.log[0])
spec = snakemake.params.spec
cut_cube(
    snakemake.params.cube,
    snakemake.params.targets,
    snakemake.params.out_dir,
    snakemake.output[0],
    fill_value=spec["fill_value"],
    threads=spec["threads"],
    fsspec_kwargs=snakemake.params.fsspec,
)
