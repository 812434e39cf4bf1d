"""A job's logging: the pipeline (not the library) installs the handler.

Inside :func:`job_log`, every record of level INFO and above from skycut (DEBUG with ``verbose``), every warning
(through :func:`logging.captureWarnings`) and every other library's WARNING goes to the job's log file; if the
job raises, the traceback is logged there before the exception propagates (Snakemake then marks the job failed
and keeps the log).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...core.logs import LOGGER, set_verbose

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
log = logging.getLogger(__name__)


@contextmanager
def job_log(log_file: str | Path | None = None, *, verbose: bool = False) -> Iterator[logging.Handler]:
    """Send a job's log records, warnings and (if it fails) traceback to ``log_file`` (stderr when None).

    Parameters
    ----------
    log_file : str or path-like, optional
        The job's log file (Snakemake's ``log[0]``); its directory is created if needed.
    verbose : bool
        DEBUG for the ``skycut`` logger (:func:`skycut.core.logs.set_verbose`); INFO otherwise.

    Yields
    ------
    logging.Handler
        The installed handler (removed and closed on exit, and the previous logger levels restored).
    """
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file)
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    root, skycut = logging.getLogger(), logging.getLogger(LOGGER)
    old_level = skycut.level
    root.addHandler(handler)
    skycut.setLevel(logging.INFO)
    set_verbose(verbose)
    logging.captureWarnings(True)
    try:
        yield handler
    except BaseException:
        log.exception("job failed")
        raise
    finally:
        logging.captureWarnings(False)
        skycut.setLevel(old_level)
        root.removeHandler(handler)
        handler.close()
