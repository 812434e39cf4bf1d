# Target pixel files from cubes: one job per (cube-cutout set, cube, target batch); a job opens its cube once.
rule cube_cutouts:
    input:
        cube_cutout_inputs,
    output:
        OUT + "/cube_cutouts/{spec}/{cube}/{batch}.json",
    params:
        cube=cube_cutout_source,
        targets=lambda wc: cube_cutout_job(wc).targets,
        spec=lambda wc: MANIFEST.cube_cutouts[wc.spec].model_dump(exclude={"cubes", "targets", "batch_size", "fsspec", "plots"}),
        fsspec=lambda wc: fsspec_kwargs(MANIFEST.cube_cutouts[wc.spec].fsspec),
        out_dir=lambda wc: PLAN.path("cube_cutouts", wc.spec, wc.cube),
    log:
        OUT + "/logs/cube_cutouts/{spec}/{cube}/{batch}.log",
    benchmark:
        OUT + "/benchmarks/cube_cutouts/{spec}/{cube}/{batch}.tsv"
    resources:
        mem_mb=1000,
    threads: 1
    script:
        "../workflow/cube_cutouts.py"


# A light-curve plot and a mean image for every TPF of a batch.
rule tpf_plots:
    input:
        OUT + "/cube_cutouts/{spec}/{cube}/{batch}.json",
    output:
        OUT + "/cube_cutouts/{spec}/{cube}/plots/{batch}.json",
    params:
        out_dir=lambda wc: PLAN.path("cube_cutouts", wc.spec, wc.cube, "plots"),
    log:
        OUT + "/logs/tpf_plots/{spec}/{cube}/{batch}.log",
    script:
        "../workflow/tpf_plots.py"
