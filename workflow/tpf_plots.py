"""Rule `tpf_plots`: light-curve plots and mean images of one batch of TPFs."""

from skycut.pipeline.jobs.cube_cutouts import plot_tpfs
from skycut.pipeline.jobs.index import provenance
from skycut.pipeline.jobs.joblog import job_log

with job_log(snakemake.log[0]), provenance(snakemake.params.provenance):
    plot_tpfs(snakemake.input[0], snakemake.output[0])
