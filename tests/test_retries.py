"""Remote reads that fail transiently are retried, bounded and logged; lasting failures name the URI and cause.

The loopback Range server (tests/servers.py) fails its next GETs on demand (5xx, S3 SlowDown, 403/404, a dropped
connection, a truncated body); the retries are counted at the server. It also answers anonymous path-style S3
GETs, so the same faults reach s3fs/botocore.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from servers import free_port, http_server  # noqa: F401  (pytest fixture)

from skycut.core.remote import DEFAULT_RETRY, RetryPolicy, retryable
from skycut.core.remote_file import RemoteFile
from skycut.exceptions import DataWarning, InvalidInputError

BLOB = bytes(range(256)) * 64  # 16 KB
FAST = RetryPolicy(attempts=4, backoff=0.0)  # no waiting in tests; the delays themselves are tested below


@pytest.fixture
def served(http_server, tmp_path):  # noqa: F811
    """``(server, {"http": url, "s3": uri}, s3 options)`` of one 16 KB file (``bucket/blob.bin``)."""
    (tmp_path / "bucket").mkdir()
    (tmp_path / "bucket" / "blob.bin").write_bytes(BLOB)
    options = {"anon": True, "endpoint_url": http_server.endpoint_url}
    return http_server, {"http": http_server.url("bucket/blob.bin"), "s3": "s3://bucket/blob.bin"}, options


def _gets(server) -> list[int]:
    return [r.status for r in server.log.body_requests("GET")]


def test_policy_delays_are_exponential_capped_and_deterministic():
    policy = RetryPolicy(attempts=5, backoff=0.2, max_backoff=1.0)
    assert [policy.delay(k) for k in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert DEFAULT_RETRY.attempts >= 3
    with pytest.raises(InvalidInputError):
        RetryPolicy(attempts=0)


def test_transient_and_lasting_failures_are_told_apart():
    assert retryable(TimeoutError()) and retryable(ConnectionResetError())
    assert not retryable(ConnectionRefusedError()) and not retryable(FileNotFoundError("x"))
    assert not retryable(PermissionError("x")) and not retryable(ValueError("x"))


@pytest.mark.parametrize("protocol", ["http", "s3"])
@pytest.mark.parametrize(
    "faults",
    [("500", "503"), ("slowdown", "slowdown", "502"), ("drop",), ("truncate",), ("drop", "truncate", "500")],
)
def test_transient_failures_are_retried_and_logged(served, protocol, faults, caplog):
    server, uris, options = served
    source = RemoteFile(uris[protocol], options, retry=FAST)
    server.log.reset()
    server.fail_next(*faults)
    with caplog.at_level(logging.WARNING, logger="skycut.core.remote_file"):
        assert source.read(100, 9000) == BLOB[100:9000]
    gets = server.log.body_requests("GET")
    assert len(gets) == len(faults) + 1  # one request per attempt, seen by the server
    assert gets[-1].status == 206 and all(g.range == "bytes=100-8999" for g in gets)
    # aiohttp itself re-sends a request once when a pooled keep-alive connection turns out closed ("drop" on
    # http); every other attempt is skycut's, counted and logged
    assert len(faults) - faults.count("drop") <= source.retries <= len(faults)
    assert source.requests == source.retries + 1
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == source.retries and all(uris[protocol] in r.getMessage() for r in retries)


@pytest.mark.parametrize("protocol", ["http", "s3"])
def test_retries_are_bounded_then_the_error_names_uri_and_cause(served, protocol, caplog):
    server, uris, options = served
    source = RemoteFile(uris[protocol], options, retry=RetryPolicy(attempts=3, backoff=0.0))
    server.log.reset()
    server.fail_next(*["503"] * 5)
    with (
        caplog.at_level(logging.WARNING, logger="skycut.core.remote_file"),
        pytest.raises(InvalidInputError, match="service unavailable") as err,
    ):
        source.read(0, 100)
    assert uris[protocol] in str(err.value)
    assert _gets(server) == [503, 503, 503]  # three attempts, no more
    assert any("giving up after 3 attempts" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("protocol", ["http", "s3"])
@pytest.mark.parametrize(("fault", "cause"), [("403", "access denied"), ("404", "not found")])
def test_lasting_failures_are_not_retried(served, protocol, fault, cause):
    server, uris, options = served
    source = RemoteFile(uris[protocol], options, retry=FAST)
    server.log.reset()
    server.fail_next(fault)
    with pytest.raises(InvalidInputError, match=cause) as err:
        source.read(0, 100)
    assert uris[protocol] in str(err.value)
    assert len(server.log.body_requests("GET")) == 1


@pytest.mark.parametrize("uri", ["http://127.0.0.1:{port}/a.fits", "s3://bucket/a.fits"])
def test_connection_refused_is_not_retried(uri):
    port = free_port()
    source = RemoteFile(
        uri.format(port=port),
        {"anon": True, "endpoint_url": f"http://127.0.0.1:{port}"},
        retry=RetryPolicy(attempts=3, backoff=0.0),
    )
    with pytest.raises(InvalidInputError, match="connection refused|cannot connect") as err:
        source.read(0, 100)
    assert uri.format(port=port) in str(err.value)
    assert source.requests == 1 and source.retries == 0


def test_ranges_of_a_batch_are_retried_one_by_one(served):
    """Each range of a concurrent batch is retried on its own; every range arrives."""
    server, uris, options = served
    source = RemoteFile(uris["s3"], options, retry=FAST)
    ranges = [(i * 1000, i * 1000 + 700) for i in range(12)]
    server.log.reset()
    server.fail_next("500", "slowdown", "drop", "truncate")
    assert source.read_ranges(ranges) == [BLOB[a:b] for a, b in ranges]
    statuses = _gets(server)
    assert (
        len(statuses) == len(ranges) + 4 and statuses.count(206) == len(ranges) + 1
    )  # + the truncated answer
    assert 3 <= source.retries <= 4  # aiohttp may re-send the dropped one itself (a stale pooled connection)


def test_one_failing_group_does_not_stop_the_others(served):
    """A group whose range fails for good yields its error; the other groups arrive (requests in group order)."""
    server, uris, options = served
    source = RemoteFile(uris["http"], options, retry=RetryPolicy(attempts=2, backoff=0.0), max_in_flight=1)
    groups = [[(0, 10), (20, 30)], [(100, 110)], [(200, 210), (300, 310)]]
    server.log.reset()
    server.fail_next("ok", "ok", "404")
    got = dict(source.iter_range_groups(groups))
    assert got[0] == [BLOB[0:10], BLOB[20:30]] and got[2] == [BLOB[200:210], BLOB[300:310]]
    assert (
        isinstance(got[1], InvalidInputError) and uris["http"] in str(got[1]) and "not found" in str(got[1])
    )
    assert len(server.log.body_requests("GET")) == 5


def test_buffered_file_reads_through_the_retries(served):
    """``RemoteFile.open()`` (what astropy and asdf parse) fills its buffer through the same retried reads."""
    server, uris, options = served
    source = RemoteFile(uris["s3"], {**options, "block_size": 4096}, retry=FAST)
    server.log.reset()
    server.fail_next("slowdown", "500")
    with source.open() as f:
        assert f.read(5000) == BLOB[:5000]
        f.seek(-100, 2)
        assert f.read() == BLOB[-100:]
    assert source.retries == 2


# ------------------------------------------------------------------------------------------ cubes


@pytest.fixture(scope="module")
def small_cube(sim_tess, tmp_path_factory) -> Path:
    import skycut

    path = tmp_path_factory.mktemp("retry-cube") / "tess-s0011-1-1-cube.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        skycut.CubeFactory().make_cube([str(f) for f in sim_tess.files], str(path), verbose=False)
    return path


def _targets(cube: Path, n: int) -> list[tuple[str, str]]:
    from skycut.tess.cube_reader import CubeReader
    from skycut.tess.cube_wcs import cube_wcs_from_row, cube_wcs_row

    with CubeReader(cube) as r:
        wcs = cube_wcs_from_row(r.table, cube_wcs_row(r.table), r.shape)
        ny, nx = r.nrows, r.ncols
    x = np.linspace(10, nx - 10, n)
    y = np.linspace(10, ny - 10, n)
    ra, dec = wcs.all_pix2world(x, y, 0)
    return [(f"t{i}", f"{ra[i]} {dec[i]}") for i in range(n)]


def test_remote_cube_batch_survives_transient_faults_and_records_a_lasting_one(
    http_server,  # noqa: F811
    small_cube,
    tmp_path,
    monkeypatch,
):
    """Transient faults while a remote cube's rows arrive are retried (TPFs identical to local ones); a target
    whose rows fail for good is recorded as failed and the other targets are written."""
    from skycut.core import remote
    from skycut.tess.cube_batch import cut_cube_targets

    monkeypatch.setattr(remote, "DEFAULT_RETRY", RetryPolicy(attempts=3, backoff=0.0))
    (http_server.directory / "bucket").mkdir()
    shutil.copy(small_cube, http_server.directory / "bucket" / small_cube.name)
    uri = f"s3://bucket/{small_cube.name}"
    options = {"anon": True, "endpoint_url": http_server.endpoint_url}
    targets = _targets(small_cube, 3)
    local = cut_cube_targets(small_cube, targets, 5, output_dir=tmp_path / "local")

    http_server.log.reset()
    http_server.fail_next("503", "ok", "slowdown", "drop", "truncate")  # header (retried), table, then rows
    remote_ok = cut_cube_targets(
        uri, targets, 5, output_dir=tmp_path / "remote", fsspec_kwargs=options, threads="auto"
    )
    assert not remote_ok.failed and sorted(remote_ok.written) == sorted(local.written)
    for name, (path,) in local.written.items():
        assert remote_ok.written[name][0].read_bytes() == path.read_bytes()
    # header, table and 3 x 5 rows, plus one request per fault (the truncated answer began as a 206)
    statuses = [r.status for r in http_server.log.body_requests("GET")]
    assert len(statuses) == 2 + 3 * 5 + 4 and statuses.count(206) == 2 + 3 * 5 + 1

    # one request at a time, in target order: the first target's first row fails for good (404, not retried)
    http_server.fail_next("ok", "ok", "404")
    partial = cut_cube_targets(
        uri, targets, 5, output_dir=tmp_path / "partial", fsspec_kwargs=options, threads=1
    )
    assert list(partial.failed) == ["t0"] and "not found" in str(partial.failed["t0"])
    assert uri in str(partial.failed["t0"])
    assert sorted(partial.written) == ["t1", "t2"]


def test_one_missing_cube_does_not_stop_the_others(http_server, small_cube, tmp_path):  # noqa: F811
    """TessCubeCutout over several cubes: a missing one is skipped with a warning naming it; the rest are cut."""
    from skycut.tess.cube_cutout import TessCubeCutout

    good = http_server.add(small_cube)
    missing = http_server.url("tess-s0099-1-1-cube.fits")
    ((_, coord),) = _targets(small_cube, 1)
    with pytest.warns(DataWarning, match="tess-s0099-1-1-cube.fits.*not found"):
        cut = TessCubeCutout([missing, good], coord, 5)
    assert list(cut.cutouts_by_file) == [good] and len(cut.cutouts) == 1
    with pytest.raises(InvalidInputError, match="tess-s0099-1-1-cube.fits"):
        TessCubeCutout([missing, missing.replace("s0099", "s0098")], coord, 5)
