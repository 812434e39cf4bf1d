# TESS FFI cubes: one job per cube, memory derived from the manifest's max_memory.
rule cube:
    input:
        lambda wc: PLAN.cube_files(wc.cube),
    output:
        OUT + "/cubes/{cube}-cube.fits",
    params:
        sector=lambda wc: MANIFEST.cubes[wc.cube].sector,
        max_memory=lambda wc: MANIFEST.cubes[wc.cube].max_memory,
    log:
        OUT + "/logs/cubes/{cube}.log",
    benchmark:
        OUT + "/benchmarks/cubes/{cube}.tsv"
    resources:
        mem_mb=lambda wc: memory_mb(MANIFEST.cubes[wc.cube].max_memory),
    script:
        "../workflow/cube.py"
