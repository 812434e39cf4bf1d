# TESS cutouts from every cube that holds each target. Without footprint_uri the plan finds the cubes offline
# (tess-point) and each job cuts one cube's batch of targets; with a footprint file each job matches one batch
# of targets when it runs.
rule footprint_cube_cutouts:
    input:
        footprint_cube_inputs,
    output:
        PLAN.output_pattern("footprint_cube_cutouts"),
    log:
        PLAN.log_pattern("footprint_cube_cutouts"),
    benchmark:
        PLAN.benchmark_pattern("footprint_cube_cutouts")
    conda:
        "../workflow/envs/skycut.yaml"
    resources:
        mem_mb=1000,
    params:
        job=footprint_cube_job,
        provenance=footprint_cube_provenance,
    script:
        "../workflow/footprint_cutouts.py"


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
        provenance=footprint_provenance,
    script:
        "../workflow/footprint_cutouts.py"
