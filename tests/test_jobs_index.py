"""A job's index (products, skipped, failed) and its logging (records, warnings, a failure's traceback)."""

from __future__ import annotations

import hashlib
import logging
import warnings

import pytest

import skycut
from skycut.core.batch import BatchResult
from skycut.exceptions import DataWarning
from skycut.pipeline.jobs.index import BatchFailedError, finish, merge_products, read_index, write_index
from skycut.pipeline.jobs.joblog import job_log


def test_index_from_batch_result(tmp_path):
    (tmp_path / "a.fits").write_bytes(b"abc")
    result = BatchResult()
    result.add("a", [tmp_path / "a.fits"])
    result.skip("b", "entirely off the CCD")
    index = write_index(tmp_path / "i.json", result, cube="c.fits")
    assert index == {
        "products": {"a": [str(tmp_path / "a.fits")]},
        "skipped": {"b": "entirely off the CCD"},
        "cube": "c.fits",
        "provenance": {"skycut_version": skycut.__version__},
        "files": {str(tmp_path / "a.fits"): {"size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}},
    }
    assert read_index(tmp_path / "i.json") == index
    assert merge_products([tmp_path / "i.json"]) == {"a": [str(tmp_path / "a.fits")]}


def test_failed_items_fail_the_job_without_an_index(tmp_path):
    result = BatchResult()
    result.add("a", ["a.fits"])
    result.fail("b", OSError("truncated file x.fits"))
    with pytest.raises(BatchFailedError, match=r"b: OSError: truncated file x\.fits") as info:
        finish(tmp_path / "i.json", result)
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "i.json").exists()  # a job's output means "done"
    with pytest.raises(ValueError, match="failed items"):
        write_index(tmp_path / "i.json", result)


def test_job_log_receives_records_warnings_and_the_traceback(tmp_path):
    log_file = tmp_path / "logs" / "job.log"
    root_handlers = list(logging.getLogger().handlers)
    with pytest.raises(ValueError, match="boom"), job_log(log_file):
        logging.getLogger("skycut.pipeline.jobs.test").info("cutting 3 targets")
        logging.getLogger("skycut.pipeline.jobs.test").debug("hidden detail")
        warnings.warn("target t skipped", DataWarning, stacklevel=1)
        raise ValueError("boom in bad.fits")
    text = log_file.read_text()
    assert "cutting 3 targets" in text
    assert "hidden detail" not in text
    assert "target t skipped" in text
    assert "job failed" in text and "Traceback" in text and "ValueError: boom in bad.fits" in text
    assert logging.getLogger().handlers == root_handlers  # removed again


def test_job_log_verbose_is_debug_for_skycut_only(tmp_path):
    log_file = tmp_path / "job.log"
    before = logging.getLogger("skycut").level
    with job_log(log_file, verbose=True):
        assert logging.getLogger("skycut").level == logging.DEBUG
        logging.getLogger("skycut.core.test").debug("detail shown")
        logging.getLogger("otherlib").info("other library chatter")
    assert logging.getLogger("skycut").level == before
    text = log_file.read_text()
    assert "detail shown" in text
    assert "other library chatter" not in text
