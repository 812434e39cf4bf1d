# Combine the cutouts of the same targets from several input sets (CutoutsCombiner).
rule combine:
    input:
        unpack(lambda wc: {ref: PLAN.image_indexes(ref) for ref in MANIFEST.combine[wc.name].inputs}),
    output:
        OUT + "/combine/{name}/index.json",
    params:
        inputs=lambda wc: {ref: PLAN.image_indexes(ref) for ref in MANIFEST.combine[wc.name].inputs},
        spec=lambda wc: MANIFEST.combine[wc.name].model_dump(exclude={"inputs"}),
        out_dir=lambda wc: PLAN.path("combine", wc.name),
    log:
        OUT + "/logs/combine/{name}.log",
    script:
        "../workflow/combine.py"
