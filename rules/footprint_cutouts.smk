# TESS cutouts from the cubes whose FFI footprints overlap each target (cloud or local cubes).
rule footprint_cutouts:
    input:
        footprint_inputs,
    output:
        PLAN.output_pattern("footprint_cutouts"),
    log:
        PLAN.log_pattern("footprint_cutouts"),
    benchmark:
        PLAN.benchmark_pattern("footprint_cutouts")
    conda:
        "../workflow/envs/skycut.yaml"
    resources:
        mem_mb=1000,
    params:
        job=footprint_job,
    script:
        "../workflow/footprint_cutouts.py"
