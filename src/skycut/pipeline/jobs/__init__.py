"""The workflow's jobs, one module per stage.

Each job takes typed specs and plain paths, writes its products through :mod:`skycut.core.atomic` beside its
output, and (batch stages) a JSON index of what it made.

The Snakemake scripts in ``workflow/`` only unpack ``snakemake.input/params/output/log`` and call one function
here inside :func:`~skycut.pipeline.jobs.joblog.job_log`, so every job can be run and tested without Snakemake.

==================  ===========================================================================================
``index``           the JSON index of a batch job (from :class:`skycut.core.batch.BatchResult`)
``joblog``          a job's logging: records, warnings and a failure's traceback into the Snakemake log file
``demo``            the offline demo data (simulator + footprint file + moving-target path table)
``images``          FITS and Roman ASDF image cutouts of one (input set, target batch)
``combine``         combined cutouts of several input sets
``render``          PNG/JPG images of cutouts
``cubes``           TESS FFI cubes
``cube_cutouts``    target pixel files of one (cube, target batch), and their light-curve/mean-image plots
``footprints``      TPFs from the cubes whose footprints overlap each target
``paths``           moving-target TPFs
==================  ===========================================================================================
"""
