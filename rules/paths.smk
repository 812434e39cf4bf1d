# Moving targets: a path table followed through cubes (built here, or paths/URIs) into one TPF each.
rule moving_target:
    input:
        unpack(path_inputs),
    output:
        PLAN.output_pattern("moving_target"),
    log:
        PLAN.log_pattern("moving_target"),
    benchmark:
        PLAN.benchmark_pattern("moving_target")
    conda:
        "../workflow/envs/skycut.yaml"
    resources:
        mem_mb=2000,
    params:
        cubes=path_cubes,
        spec=path_spec,
        provenance=path_provenance,
    script:
        "../workflow/moving_target.py"


# A strip of the moving target's frames (and an animated GIF beside it), for the report.
rule path_frames:
    input:
        PLAN.output_pattern("moving_target"),
    output:
        PLAN.output_pattern("path_frames"),
    log:
        PLAN.log_pattern("path_frames"),
    conda:
        "../workflow/envs/skycut.yaml"
    params:
        spec=path_spec,
        provenance=path_provenance,
    script:
        "../workflow/path_frames.py"
