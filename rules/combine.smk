# Combine the cutouts of the same targets from several input sets (CutoutsCombiner).
rule combine:
    input:
        unpack(combine_inputs),
    output:
        PLAN.output_pattern("combine"),
    log:
        PLAN.log_pattern("combine"),
    conda:
        "../workflow/envs/skycut.yaml"
    params:
        inputs=combine_inputs,
        spec=combine_spec,
        provenance=combine_provenance,
    script:
        "../workflow/combine.py"
