"""Rule `tpf_plots`: light-curve plots and mean images of one batch of TPFs."""
from skycut.pipeline.products import configure_logging, plot_tpfs

configure_logging(snakemake.log[0])
plot_tpfs(snakemake.input[0], snakemake.params.out_dir, snakemake.output[0])
