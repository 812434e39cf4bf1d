# Target pixel files from cubes: one job per (cube-cutout set, cube, target batch); a job opens its cube once.
rule cube_cutouts:
    input:
        cube_cutout_inputs,
    output:
        PLAN.output_pattern("cube_cutouts"),
    log:
        PLAN.log_pattern("cube_cutouts"),
    benchmark:
        PLAN.benchmark_pattern("cube_cutouts")
    conda:
        "../workflow/envs/skycut.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        job=cube_cutout_job,
        provenance=cube_cutout_provenance,
    script:
        "../workflow/cube_cutouts.py"


# A light-curve plot and a mean image for every TPF of a batch.
rule tpf_plots:
    input:
        PLAN.output_pattern("cube_cutouts"),
    output:
        PLAN.output_pattern("tpf_plots"),
    log:
        PLAN.log_pattern("tpf_plots"),
    conda:
        "../workflow/envs/skycut.yaml"
    params:
        provenance=cube_cutout_provenance,
    script:
        "../workflow/tpf_plots.py"
