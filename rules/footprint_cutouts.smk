# TESS cutouts from the cubes whose FFI footprints overlap each target (cloud or local cubes).
rule footprint_cutouts:
    input:
        lambda wc: PLAN.footprint_local_inputs(wc.spec),
    output:
        OUT + "/footprint_cutouts/{spec}/{batch}.json",
    params:
        targets=lambda wc: PLAN.footprint_job(wc.spec, wc.batch).targets,
        spec=lambda wc: MANIFEST.footprint_cutouts[wc.spec].model_dump(exclude={"targets", "batch_size", "fsspec"}),
        fsspec=lambda wc: fsspec_kwargs(MANIFEST.footprint_cutouts[wc.spec].fsspec),
        out_dir=lambda wc: PLAN.path("footprint_cutouts", wc.spec),
    log:
        OUT + "/logs/footprint_cutouts/{spec}/{batch}.log",
    benchmark:
        OUT + "/benchmarks/footprint_cutouts/{spec}/{batch}.tsv"
    resources:
        mem_mb=1000,
    script:
        "../workflow/footprint_cutouts.py"
