# FITS and Roman ASDF image cutouts: one job per (input set, target batch).
rule image_cutouts:
    input:
        image_inputs,
    output:
        OUT + "/image_cutouts/{input_set}/{batch}.json",
    params:
        files=lambda wc: PLAN.input_files(wc.input_set),
        targets=lambda wc: image_job(wc).targets,
        spec=lambda wc: MANIFEST.inputs[wc.input_set].model_dump(exclude={"paths", "targets", "batch_size", "fsspec"}),
        fsspec=lambda wc: fsspec_kwargs(MANIFEST.inputs[wc.input_set].fsspec),
        out_dir=lambda wc: PLAN.path("image_cutouts", wc.input_set),
    log:
        OUT + "/logs/image_cutouts/{input_set}/{batch}.log",
    benchmark:
        OUT + "/benchmarks/image_cutouts/{input_set}/{batch}.tsv"
    resources:
        mem_mb=1000,
    script:
        "../workflow/image_cutouts.py"
