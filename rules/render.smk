# PNG/JPG images of cutouts (greyscale per input, or colour from three inputs).
rule render:
    input:
        unpack(render_inputs),
    output:
        PLAN.output_pattern("render"),
    log:
        PLAN.log_pattern("render"),
    conda:
        "../workflow/envs/skycut.yaml"
    params:
        inputs=render_inputs,
        spec=render_spec,
        provenance=render_provenance,
    script:
        "../workflow/render.py"
