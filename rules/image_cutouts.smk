# FITS and Roman ASDF image cutouts: one job per (input set, target batch).
rule image_cutouts:
    input:
        image_inputs,
    output:
        PLAN.output_pattern("image_cutouts"),
    log:
        PLAN.log_pattern("image_cutouts"),
    benchmark:
        PLAN.benchmark_pattern("image_cutouts")
    conda:
        "../workflow/envs/skycut.yaml"
    resources:
        mem_mb=1000,
    params:
        files=image_files,
        job=image_job,
        provenance=image_provenance,
    script:
        "../workflow/image_cutouts.py"
