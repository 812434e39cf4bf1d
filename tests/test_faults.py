"""Archives and files that misbehave (issue 11): truncated files, refused and silent servers, one bad file or
target in a batch, writers killed mid-write. Each error names the file or URI and the cause."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from astropy.io import fits
from servers import http_server, s3_server  # noqa: F401  (pytest fixtures)
from workflow_runs import snakemake

from skycut.core.remote import DEFAULT_TIMEOUT, storage_options
from skycut.exceptions import InvalidInputError

ROOT = Path(__file__).resolve().parents[1]
KNOT = (211.2625, 53.66)  # inside both simulated skycells (see config.example.yaml)


@pytest.fixture(scope="module")
def skycells(tmp_path_factory) -> list[Path]:
    """Two overlapping HST-like f606w skycells (p05 and p06), 300 x 300 pixels."""
    from skycut.simulate import make_hst_images

    out = tmp_path_factory.mktemp("hst")
    files = make_hst_images(out, bands=("f606w",), shape=(300, 300), seed=1).files
    return sorted(Path(f) for f in files)


def _truncate(src: Path, dest: Path, drop: int = 100_000) -> Path:
    dest.write_bytes(src.read_bytes()[:-drop])
    return dest


def _overlap(skycells: list[Path]) -> tuple[float, float]:
    """A position inside both skycells (midway between their centres)."""
    (ra0, dec0), (ra1, dec1) = (_centre(p) for p in skycells)
    return (ra0 + ra1) / 2, (dec0 + dec1) / 2


def _centre(path: Path) -> tuple[float, float]:
    from astropy.wcs import WCS

    header = fits.getheader(path, 1)
    ra, dec = WCS(header).pixel_to_world_values(header["NAXIS1"] / 2, header["NAXIS2"] / 2)
    return float(ra), float(dec)


# ------------------------------------------------------------------------------------------------ truncated files
def test_truncated_image_named_local(skycells, tmp_path):
    from skycut.image.fits_cutout import FITSCutout

    bad = _truncate(skycells[0], tmp_path / "short.fits")
    with pytest.raises(
        InvalidInputError,
        match=r"short\.fits' is truncated: its headers need \d+ bytes, the file "
        rf"has {bad.stat().st_size}",
    ):
        FITSCutout([str(bad)], _centre(skycells[0]), 11)


def test_truncated_image_named_remote(skycells, tmp_path, http_server):  # noqa: F811
    from skycut.image.fits_cutout import FITSCutout

    url = http_server.add(_truncate(skycells[0], tmp_path / "short.fits"))
    with pytest.raises(InvalidInputError, match=r"short\.fits' is truncated"):
        FITSCutout([url], _centre(skycells[0]), 11)


def test_batch_keeps_good_file_and_records_bad_file_and_bad_target(skycells, tmp_path):
    from skycut.image.fits_batch import cut_fits_targets

    bad = _truncate(skycells[1], tmp_path / "short.fits")
    both = _overlap(skycells)
    result = cut_fits_targets(
        [str(skycells[0]), str(bad)],
        [("good", both, 11), ("impossible", (10.0, 95.0), 11)],
        [tmp_path / "good.fits", tmp_path / "impossible.fits"],
    )
    assert list(result.written) == ["good"]
    with fits.open(tmp_path / "good.fits") as hdul:  # cut from the good file only
        assert {h.header.get("ORIG_FLE") for h in hdul[1:]} == {skycells[0].name}
    assert "is truncated" in result.failed[str(bad)]
    assert "95" in result.failed["impossible"]
    assert not (tmp_path / "impossible.fits").exists()


def test_truncated_ffi_named_in_cube_build(tmp_path):
    from skycut.simulate import make_tess_ffis
    from skycut.tess.cube_factory import CubeFactory

    files = [Path(p) for p in make_tess_ffis(tmp_path / "ffi", n_ffi=3, shape=(20, 18), seed=3).files]
    files[1].write_bytes(files[1].read_bytes()[:-3000])
    with pytest.raises(
        InvalidInputError, match=rf"FFI file '{files[1]}' is truncated: its headers need \d+ bytes"
    ):
        CubeFactory().make_cube([str(f) for f in files], str(tmp_path / "cube.fits"), verbose=False)
    assert not (tmp_path / "cube.fits").exists()


@pytest.fixture(scope="module")
def small_cube(tmp_path_factory) -> Path:
    from skycut.simulate import make_tess_ffis
    from skycut.tess.cube_factory import CubeFactory

    out = tmp_path_factory.mktemp("cube")
    files = make_tess_ffis(out / "ffi", n_ffi=3, shape=(20, 18), seed=3).files
    return Path(CubeFactory().make_cube([str(f) for f in files], str(out / "small-cube.fits"), verbose=False))


@pytest.mark.parametrize("cut", [3000, 30000])  # in the table / in the image data
def test_truncated_cube_named(small_cube, tmp_path, http_server, cut):  # noqa: F811
    from skycut.tess.cube_reader import CubeReader

    short = _truncate(small_cube, tmp_path / "short-cube.fits", cut)
    for path in (str(short), http_server.url(short.name)):
        with pytest.raises(
            InvalidInputError, match=r"cube '.*short-cube\.fits' is truncated: its headers need"
        ):
            CubeReader(path)


# ------------------------------------------------------------------------------------------------ remote faults
@pytest.fixture
def silent_port():
    """A loopback port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def refused_port():
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _remote(kind: str, port: int, **extra) -> tuple[str, dict]:
    if kind == "http":
        return f"http://127.0.0.1:{port}/image.fits", dict(extra)
    return "s3://bucket/image.fits", {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "key": "k",
        "secret": "s",
        **extra,
    }


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_connection_refused_named(kind, refused_port):
    from skycut.image.fits_cutout import FITSCutout

    uri, options = _remote(kind, refused_port)
    with pytest.raises(InvalidInputError, match=rf"{uri.split('/')[-1]}'?: connection refused") as info:
        FITSCutout([uri], KNOT, 11, fsspec_kwargs=options)
    assert uri in str(info.value) and "not found" not in str(info.value)


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_silent_server_times_out_with_the_configured_timeout(kind, silent_port):
    from skycut.image.fits_cutout import FITSCutout
    from skycut.tess.cube_reader import CubeReader

    uri, options = _remote(kind, silent_port, timeout=1)
    with pytest.raises(InvalidInputError, match="timed out") as info:
        FITSCutout([uri], KNOT, 11, fsspec_kwargs=options)
    assert uri in str(info.value)
    with pytest.raises(InvalidInputError, match="timed out"):
        CubeReader(uri.replace("image", "cube"), fsspec_kwargs=options)


def test_timeout_reaches_botocore_and_aiohttp():
    s3 = storage_options("s3://b/k", {"timeout": 2})
    assert (s3["config_kwargs"]["connect_timeout"], s3["config_kwargs"]["read_timeout"]) == (2, 2)
    assert "timeout" not in s3
    http = storage_options("https://h/x.fits", {"timeout": 2.5})
    client_timeout = http["client_kwargs"]["timeout"]
    assert (client_timeout.sock_connect, client_timeout.sock_read) == (2.5, 2.5)
    assert "timeout" not in http  # not handed to every request as well
    default = storage_options("s3://b/k")["config_kwargs"]
    assert default["read_timeout"] == default["connect_timeout"] == DEFAULT_TIMEOUT == 60
    assert (
        storage_options("s3://b/k", {"config_kwargs": {"read_timeout": 7}})["config_kwargs"]["read_timeout"]
        == 7
    )
    assert storage_options("/local/file.fits", {"timeout": 3}) == {}


def test_manifest_timeout_field():
    from skycut.pipeline.options import fsspec_kwargs
    from skycut.pipeline.sections import FsspecOptions

    assert fsspec_kwargs(FsspecOptions(timeout=5)) == {"timeout": 5}
    with pytest.raises(ValueError):
        FsspecOptions(timeout=0)


# ------------------------------------------------------------------------------------------------ stale temporaries
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporary_of_a_dead_writer_removed_by_the_next_write(tmp_path):
    from skycut.core.atomic import write_bytes, writer_tag

    host = writer_tag().rpartition("-")[0]
    stale = tmp_path / f".other.fits.{host}-{_dead_pid()}.abc123.part"
    live = tmp_path / f".other.fits.{host}-{os.getpid()}.def456.part"  # this process: being written
    foreign = tmp_path / f".other.fits.elsewhere-{_dead_pid()}.ghi789.part"  # another host's writer
    for p in (stale, live, foreign):
        p.write_bytes(b"")
    write_bytes(b"abc", tmp_path / "out.bin")
    assert not stale.exists()
    assert live.exists() and foreign.exists()
    assert (tmp_path / "out.bin").read_bytes() == b"abc"


def test_killed_simulate_leaves_nothing_after_rerun(tmp_path):
    """kill -9 of ``skycut simulate`` mid-write leaves a temporary; the rerun removes it."""
    script = (
        "import sys, time, skycut.core.atomic as a\n"
        "real = a.atomic_output.__wrapped__\n"
        "def slow(final, **kw):\n"
        "    gen = real(final, **kw)\n"
        "    tmp = next(gen)\n"
        "    print('WRITING', tmp, flush=True)\n"
        "    time.sleep(60)\n"
        "import contextlib\n"
        "a.atomic_output = contextlib.contextmanager(slow)\n"
        "from skycut.simulate import make_tess_ffis\n"
        "make_tess_ffis(sys.argv[1], n_ffi=2, shape=(20, 18), seed=3)\n"
    )
    out = tmp_path / "sim"
    proc = subprocess.Popen([sys.executable, "-c", script, str(out)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    proc.kill()
    proc.wait()
    assert line.startswith("WRITING")
    left = sorted(p.name for p in out.rglob(".*.part"))
    assert left  # what the killed writer left
    from skycut.simulate import make_tess_ffis

    make_tess_ffis(out, n_ffi=2, shape=(20, 18), seed=3)
    assert not list(out.rglob(".*.part"))


# ------------------------------------------------------------------------------------------------ through Snakemake
@pytest.mark.slow
def test_workflow_bad_file_recorded_good_products_kept(skycells, tmp_path):
    work = tmp_path / "run"
    data = work / "data"
    data.mkdir(parents=True)
    good = Path(shutil.copy(skycells[0], data / skycells[0].name))
    bad = _truncate(skycells[1], data / "truncated.fits", 500_000)  # into the SCI data
    manifest = {
        "output_dir": "results",
        "targets": [{"name": "centre", "coordinates": "{} {}".format(*_overlap(skycells)), "size": 11}],
        "inputs": {"mixed": {"paths": [str(good), str(bad)], "extensions": "SCI", "targets": ["centre"]}},
    }
    (work / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    run = snakemake(work, "manifest.yaml", "--cores", "1", epoch=None, timeout=600)
    assert run.returncode != 0
    out = work / "results" / "image_cutouts" / "mixed"
    assert (out / "centre.fits").is_file()  # the good file's cutout is kept
    record = json.loads((out / "batch-0000.failures.json").read_text())
    assert "is truncated" in record["failed"][str(bad)]
    assert record["products"]["centre"] == [str(Path("results/image_cutouts/mixed/centre.fits"))]
    assert not (out / "batch-0000.json").exists()
    logs = list((work / "results").rglob("*.log"))
    text = "".join(p.read_text() for p in logs)
    assert "truncated.fits' is truncated" in text and "BatchFailedError" in text
