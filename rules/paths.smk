# Moving targets: a path table followed through cubes (built here, or paths/URIs) into one TPF each.
rule moving_target:
    input:
        unpack(lambda wc: PLAN.path_inputs(wc.name)),
    output:
        OUT + "/paths/{name}.fits",
    params:
        cubes=lambda wc: PLAN.path_cubes(wc.name),
        spec=lambda wc: MANIFEST.paths[wc.name].model_dump(exclude={"cubes", "fsspec"}),
        fsspec=lambda wc: fsspec_kwargs(MANIFEST.paths[wc.name].fsspec),
    log:
        OUT + "/logs/paths/{name}.log",
    benchmark:
        OUT + "/benchmarks/paths/{name}.tsv"
    resources:
        mem_mb=2000,
    script:
        "../workflow/moving_target.py"
