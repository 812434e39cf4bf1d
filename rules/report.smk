# The report: `snakemake --report report.html` (or .zip) shows every image the workflow made, per product kind,
# each with its labels and a caption (report/*.rst) naming the target, input set or cube and sector.
from skycut.pipeline.jobs.gallery import gallery_spec

GALLERY = gallery_spec(PLAN)


report: "../report/workflow.rst"


# Copies of every image into one directory per product kind, flagged for the report.
rule gallery:
    input:
        GALLERY.files(),
    output:
        images=report(
            directory(PLAN.output("gallery", kind="images")),
            patterns=["{render}/{input_set}/{target}/{image}.png"],
            caption="../report/images.rst",
            category="Images",
            subcategory="{input_set}",
            labels=GALLERY.image_labels,
        ),
        combined=report(
            directory(PLAN.output("gallery", kind="combined")),
            patterns=["{render}/{group}/{target}/{image}.png"],
            caption="../report/combined.rst",
            category="Combined cutouts",
            subcategory="{group}",
            labels=GALLERY.combined_labels,
        ),
        colour=report(
            directory(PLAN.output("gallery", kind="colour")),
            patterns=["{render}/{target}.png"],
            caption="../report/colour.rst",
            category="Colour composites",
            subcategory="{render}",
            labels=GALLERY.colour_labels,
        ),
        lightcurves=report(
            directory(PLAN.output("gallery", kind="lightcurves")),
            patterns=["{spec}/{cube}/{target}.png"],
            caption="../report/lightcurves.rst",
            category="TESS light curves",
            subcategory="{cube}",
            labels=GALLERY.tpf_labels,
        ),
        mean_images=report(
            directory(PLAN.output("gallery", kind="mean_images")),
            patterns=["{spec}/{cube}/{target}.png"],
            caption="../report/mean_images.rst",
            category="TESS mean images",
            subcategory="{cube}",
            labels=GALLERY.tpf_labels,
        ),
        moving_targets=report(
            directory(PLAN.output("gallery", kind="moving_targets")),
            patterns=["{path}/{file}"],
            caption="../report/moving_targets.rst",
            category="Moving targets",
            subcategory="{path}",
            labels=GALLERY.path_labels,
        ),
    log:
        PLAN.log_pattern("gallery"),
    conda:
        "../workflow/envs/skycut.yaml"
    params:
        spec=GALLERY,
    script:
        "../workflow/gallery.py"
