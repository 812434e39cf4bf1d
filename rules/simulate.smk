# Offline demo data from skycut's simulator (only when the manifest has a `demo` section).
if MANIFEST.demo is not None:

    rule simulate:
        output:
            PLAN.demo_outputs(),
        params:
            spec=PLAN.demo_spec(),
            directory=PLAN.demo_dir,
        log:
            PLAN.log("simulate.log"),
        benchmark:
            PLAN.bench("simulate.tsv")
        resources:
            mem_mb=4000,
        script:
            "../workflow/simulate.py"
