# TESS FFI cubes: one job per cube, memory derived from the manifest's max_memory.
rule cube:
    input:
        cube_files,
    output:
        PLAN.output_pattern("cube"),
    log:
        PLAN.log_pattern("cube"),
    benchmark:
        PLAN.benchmark_pattern("cube")
    conda:
        "../workflow/envs/skycut.yaml"
    resources:
        mem_mb=cube_mem_mb,
    params:
        spec=cube_spec,
        provenance=cube_provenance,
    script:
        "../workflow/cube.py"
