"""The benchmarks' loopback object store (``benchmarks/objstore.py``): s3fs and plain HTTP Range reads through it,
its latency and its byte counters. Checks are on the server's records, never on wall-clock time."""

from __future__ import annotations

import http.client
import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # pytest run as a script puts only tests/ on the path
    sys.path.insert(0, str(ROOT))
ObjectStore = importlib.import_module("benchmarks.objstore").ObjectStore

SIZE = 300_000


@pytest.fixture
def blob_dir(tmp_path) -> Path:
    data = bytes(range(256)) * (SIZE // 256) + b"x" * (SIZE % 256)
    (tmp_path / "cube.fits").write_bytes(data)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"abc")
    return tmp_path


def test_s3fs_range_latency_and_bytes(blob_dir):
    s3fs = pytest.importorskip("s3fs")
    data = (blob_dir / "cube.fits").read_bytes()
    with ObjectStore(blob_dir, latency=0.005, bandwidth=50e6) as store:
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **store.fsspec_kwargs)
        uri = store.uri("cube.fits")
        assert fs.info(uri)["size"] == SIZE
        assert fs.exists(uri) and not fs.exists(store.uri("missing.fits"))
        assert fs.isdir(f"s3://{store.bucket}/sub")
        store.reset()
        got = fs.cat_file(uri, start=12_345, end=112_345)
        assert got == data[12_345:112_345]
        served = store.served()
        assert [(r.method, r.status, r.range) for r in served] == [("GET", 206, "bytes=12345-112344")]
        assert store.stats()["bytes_sent"] == 100_000 == served[0].nbytes
        assert served[0].latency == pytest.approx(0.005)
        # several ranges at once: each answered with its own latency, only the asked bytes sent
        store.reset()
        starts = [0, 50_000, 200_000, 299_990]
        ends = [10, 60_000, 250_000, SIZE]
        parts = fs.cat_ranges([uri] * 4, starts, ends)
        assert parts == [data[a:b] for a, b in zip(starts, ends, strict=True)]
        stats = store.stats()
        assert stats["requests"] == 4 and stats["gets"] == 4
        assert stats["bytes_sent"] == sum(b - a for a, b in zip(starts, ends, strict=True))
        assert all(r.latency == pytest.approx(0.005) for r in store.served())
        assert 1 <= stats["max_in_flight"] <= 4
    with pytest.raises(RuntimeError):
        store.endpoint_url  # noqa: B018 - stopped


def test_plain_http_ranges_and_keepalive(blob_dir):
    data = (blob_dir / "cube.fits").read_bytes()
    with ObjectStore(blob_dir, bucket="b") as store:
        conn = http.client.HTTPConnection("127.0.0.1", store.port, timeout=10)
        cases = [
            ("bytes=0-99", 206, data[:100]),
            ("bytes=-7", 206, data[-7:]),
            (f"bytes={SIZE - 5}-{SIZE + 100}", 206, data[-5:]),
            (None, 200, data),
        ]
        for rng, status, body in cases:
            conn.request("GET", "/b/cube.fits", headers={"Range": rng} if rng else {})
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (status, body)
        conn.request("GET", "/b/cube.fits", headers={"Range": f"bytes={SIZE}-"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 416 and resp.getheader("Content-Range") == f"bytes */{SIZE}"
        conn.request("HEAD", "/b/cube.fits")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200 and int(resp.getheader("Content-Length")) == SIZE
        assert resp.getheader("ETag").startswith('"') and resp.getheader("Last-Modified")
        conn.request("GET", "/b/../cube.fits")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404
        conn.close()
        stats = store.stats()
        assert stats["connections"] == 1  # one keep-alive connection carried every request
        assert stats["requests"] == 7
        assert stats["bytes_sent"] >= 100 + 7 + 5 + SIZE
