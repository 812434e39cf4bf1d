"""Rule `simulate`: make the manifest's demo data."""
from skycut.pipeline.products import configure_logging, make_demo

configure_logging(snakemake.log[0])
make_demo(snakemake.params.spec, snakemake.params.directory)
