# Offline demo data from skycut's simulator (only when the manifest has a `demo` section).
if MANIFEST.demo is not None:

    rule simulate:
        output:
            PLAN.demo_outputs(),
        log:
            PLAN.log_pattern("simulate"),
        benchmark:
            PLAN.benchmark_pattern("simulate")
        conda:
            "../workflow/envs/skycut.yaml"
        resources:
            mem_mb=4000,
        params:
            job=PLAN.demo_job(),
        script:
            "../workflow/simulate.py"
