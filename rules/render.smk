# PNG/JPG images of cutouts (greyscale per input, or colour from three inputs).
rule render:
    input:
        unpack(lambda wc: PLAN.render_inputs(wc.name)),
    output:
        OUT + "/render/{name}/index.json",
    params:
        inputs=lambda wc: PLAN.render_inputs(wc.name),
        spec=lambda wc: MANIFEST.render[wc.name].model_dump(exclude={"inputs"}),
        out_dir=lambda wc: PLAN.path("render", wc.name),
    log:
        OUT + "/logs/render/{name}.log",
    script:
        "../workflow/render.py"
