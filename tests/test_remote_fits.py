"""Remote FITS inputs over loopback servers: moto's S3 and a Range-capable HTTP server.

The big-image test makes a ~200 MB FITS file cheaply (header, then a sparse extension with ``truncate``
and a small written patch) and checks that a 50 x 50 cutout transfers less than 2 MB.
"""

from __future__ import annotations

import numpy as np
import pytest
import servers
from astropy.io import fits
from astropy.wcs import WCS

from skycut.core.byte_sources import LocalFile, RemoteFile
from skycut.core.fits_open import open_fits, open_fits_handle
from skycut.core.remote import (
    DEFAULT_BLOCK_SIZE,
    S3_MAX_POOL_CONNECTIONS,
    build_fsspec_kwargs,
    is_remote,
    storage_options,
)
from skycut.exceptions import InvalidInputError
from skycut.image.fits_cutout import FITSCutout, fits_cut

SCALE = 0.1 / 3600.0

# loopback-server fixtures from tests/servers.py
http_server = servers.http_server
s3_server = servers.s3_server


def tan_wcs(nx: int, ny: int) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    w.wcs.cdelt = [-SCALE, SCALE]
    return w


def small_image(path, shape=(60, 70), compressed=False, dtype=np.float32, bzero=None) -> WCS:
    ny, nx = shape
    w = tan_wcs(nx, ny)
    data = (np.arange(ny)[:, None] * 100 + np.arange(nx)[None, :]).astype(dtype)
    header = w.to_header()
    hdu = (fits.CompImageHDU if compressed else fits.ImageHDU)(data=data, header=header, name="SCI")
    if bzero is not None:
        hdu.scale("int16", bzero=bzero)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    return w


def sparse_big_image(path, n: int, patch: tuple[int, int, int, int]) -> WCS:
    """An n x n float32 primary image: header, sparse zeros, and a patch ``(y0, y1, x0, x1)`` with values
    ``row * 10 + col / 1000`` (exact enough in float32 for the comparisons below)."""
    w = tan_wcs(n, n)
    h = fits.Header([("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2), ("NAXIS1", n), ("NAXIS2", n)])
    h.update(w.to_header())
    head = h.tostring().encode()
    data_len = -(-n * n * 4 // 2880) * 2880
    y0, y1, x0, x1 = patch
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(len(head) + data_len)
        for y in range(y0, y1):
            f.seek(len(head) + (y * n + x0) * 4)
            f.write(patch_values(y, np.arange(x0, x1)).astype(">f4").tobytes())
    return w


def patch_values(y, x):
    return (np.asarray(y) * 10 + np.asarray(x) / 1000.0).astype(np.float32)


# ------------------------------------------------------------------------------------------------ options


def test_is_remote():
    assert is_remote("https://example.org/a.fits") and is_remote("s3://bucket/key.fits")
    assert not is_remote("/data/a.fits") and not is_remote("a.fits")


def _untimed(opts: dict) -> dict:
    """``opts`` without the default request timeouts (tested in test_retries.py)."""
    out = dict(opts)
    if "config_kwargs" in out:
        out["config_kwargs"] = {
            k: v for k, v in out["config_kwargs"].items() if k not in ("connect_timeout", "read_timeout")
        }
    client = {k: v for k, v in (out.pop("client_kwargs", None) or {}).items() if k != "timeout"}
    if client:
        out["client_kwargs"] = client
    return out


def test_storage_options_defaults():
    s3 = storage_options("s3://b/k.fits")
    assert s3["anon"] is True and s3["default_block_size"] == DEFAULT_BLOCK_SIZE
    creds = storage_options(
        "s3://b/k.fits", build_fsspec_kwargs(key="k", secret="s", endpoint_url="http://h")
    )
    assert "anon" not in creds and creds["endpoint_url"] == "http://h"
    assert _untimed(storage_options("https://h/a.fits", {"block_size": 1000})) == {"block_size": 1000}
    # S3 options given for a mixed list of inputs are not passed to the HTTP filesystem
    assert _untimed(storage_options("https://h/a.fits", {"anon": False, "key": "k"})) == {
        "block_size": DEFAULT_BLOCK_SIZE
    }
    assert build_fsspec_kwargs(anon=None, token="t") == {"token": "t"}


def test_storage_options_per_protocol():
    """Each protocol gets only the options its filesystem accepts; the rest are dropped."""
    user = {
        "anon": True,
        "endpoint_url": "http://h:9",
        "key": None,
        "requester_pays": True,
        "block_size": 4096,
        "headers": {"X-Test": "1"},
        "default_cache_type": "none",
    }
    pool = {"max_pool_connections": S3_MAX_POOL_CONNECTIONS, "retries": {"total_max_attempts": 1}}
    assert _untimed(storage_options("s3://b/k.fits", user)) == {
        "anon": True,
        "endpoint_url": "http://h:9",
        "requester_pays": True,
        "default_block_size": 4096,
        "default_cache_type": "none",
        "config_kwargs": pool,
    }
    assert _untimed(storage_options("https://h/a.fits", user)) == {
        "block_size": 4096,
        "headers": {"X-Test": "1"},
    }
    assert _untimed(storage_options("http://h/a.fits", {"token": "t", "secret": "s"})) == {
        "block_size": DEFAULT_BLOCK_SIZE
    }
    assert storage_options("/data/a.fits", user) == {}
    assert _untimed(storage_options("s3://b/k.fits", {"token": "t"})) == {
        "token": "t",
        "default_block_size": DEFAULT_BLOCK_SIZE,
        "config_kwargs": pool,
    }
    mine = {"config_kwargs": {"max_pool_connections": 3, "connect_timeout": 5}}
    assert storage_options("s3://b/k.fits", mine)["config_kwargs"] == {
        "read_timeout": 60.0,
        **mine["config_kwargs"],
        "retries": {"total_max_attempts": 1},
    }
    assert not is_remote("file:///data/a.fits") and is_remote("gs://bucket/a.fits") and not is_remote(None)


def test_remote_file_ranges_and_counters(tmp_path, http_server):
    """RemoteFile reads single ranges, open-ended ranges and batches of ranges (in order); LocalFile matches."""
    blob = bytes(range(256)) * 40
    (tmp_path / "bytes.bin").write_bytes(blob)
    ranges = [(0, 10), (5000, 5100), (100, 300), (10230, 10240)]
    with (
        RemoteFile(http_server.url("bytes.bin"), {"anon": True}) as remote,
        LocalFile(tmp_path / "bytes.bin") as local,
    ):
        for source in (remote, local):
            assert source.read(7, 19) == blob[7:19]
            assert source.read(10000, None) == blob[10000:]
            assert source.read(10200, 10300, exact=False) == blob[10200:]
            assert source.read_ranges(ranges, 2) == [blob[a:b] for a, b in ranges]
            with pytest.raises(InvalidInputError, match="bytes.bin"):
                source.read(10200, 10300)
        assert remote.size == len(blob) == local.size
        assert remote.bytes_read == local.bytes_read
    assert sum(r.nbytes for r in http_server.log.body_requests("GET")) == remote.bytes_read
    assert len(http_server.log.body_requests("GET")) == 8  # 3 reads, 4 ranges, 1 refused short read


def test_https_with_s3_options_equals_local(tmp_path, http_server):
    path = tmp_path / "img.fits"
    w = small_image(path)
    coord = w.pixel_to_world(30.0, 20.0)
    local = FITSCutout(path, coord, [9, 5]).cutouts[0].data
    remote = (
        FITSCutout(
            http_server.url("img.fits"), coord, [9, 5], fsspec_kwargs={"anon": True, "requester_pays": True}
        )
        .cutouts[0]
        .data
    )
    np.testing.assert_array_equal(remote, local)


def test_remote_errors_name_uri_and_cause(tmp_path, http_server, s3_server):
    with pytest.raises(InvalidInputError, match=r"missing\.fits.*not found"):
        FITSCutout(http_server.url("missing.fits"), "150 2", 5, fsspec_kwargs={"anon": True})
    refused = f"http://127.0.0.1:{servers.free_port()}/img.fits"
    with pytest.raises(InvalidInputError, match=r"127\.0\.0\.1:\d+/img\.fits.*connection refused"):
        FITSCutout(refused, "150 2", 5)
    path = tmp_path / "private.fits"
    small_image(path)
    uri = s3_server.upload(path)
    try:
        with pytest.raises(InvalidInputError, match=r"s3://skycut-test/private\.fits.*access denied"):
            FITSCutout(uri, "150 2", 5, fsspec_kwargs={"endpoint_url": s3_server.endpoint_url})
        with pytest.raises(InvalidInputError, match=r"s3://skycut-test/private\.fits.*Invalid endpoint"):
            FITSCutout(uri, "150 2", 5, fsspec_kwargs={"endpoint_url": "not an endpoint"})
    finally:
        s3_server.delete(path.name)


# ------------------------------------------------------------------------------------------------ HTTP


def test_http_cutout_equals_local(tmp_path, http_server):
    path = tmp_path / "img.fits"
    w = small_image(path)
    coord = w.pixel_to_world(12.2, 40.7)
    local = FITSCutout(path, coord, [9, 5], fill_value=-1.0)
    remote = FITSCutout(http_server.url("img.fits"), coord, [9, 5], fill_value=-1.0)
    np.testing.assert_array_equal(remote.cutouts[0].data, local.cutouts[0].data)
    assert remote.cutouts[0].data.dtype == local.cutouts[0].data.dtype
    assert remote.fits_cutouts[0][1].header["ORIG_FLE"] == http_server.url("img.fits")
    out = remote.write_as_fits(tmp_path / "out")
    assert out[0].endswith("cutout_" + f"{coord.ra.deg:.7f}_{coord.dec.deg:.7f}_9-x-5_astrocut.fits")
    assert http_server.log.body_requests("GET"), "data must have come over HTTP"


def test_http_cutout_fetches_each_byte_once(tmp_path, http_server):
    """A remote cutout reads the headers once and the rows once: no range fetched twice, no read past the end;
    the file's start and its size in one round trip, then one range per row of the box (its columns only)."""
    path = tmp_path / "img.fits"
    w = small_image(path, shape=(600, 700))
    http_server.log.reset()
    FITSCutout(http_server.url("img.fits"), w.pixel_to_world(300.2, 200.7), [9, 5])
    gets = http_server.log.body_requests("GET")
    ranges = [r.range for r in gets]
    assert len(ranges) == len(set(ranges)), ranges
    assert all(r.status == 206 for r in gets), [(r.range, r.status) for r in gets]
    assert gets[0].range == f"bytes=0-{DEFAULT_BLOCK_SIZE - 1}"
    assert len(http_server.log.body_requests("HEAD")) == 1
    assert http_server.log.n_requests == 2 + 5  # header block, size; the box's 5 rows
    assert sum(r.nbytes for r in gets[1:]) == 9 * 5 * 4  # its pixels and nothing else


def test_http_padded_edge_and_unsigned_ints(tmp_path, http_server):
    path = tmp_path / "u16.fits"
    w = small_image(path, dtype=np.float64, bzero=32768)
    coord = w.pixel_to_world(0.0, 59.0)
    local = FITSCutout(path, coord, 6, fill_value=0).cutouts[0].data
    remote = FITSCutout(http_server.url("u16.fits"), coord, 6, fill_value=0).cutouts[0].data
    np.testing.assert_array_equal(remote, local)
    assert (remote[:, :3] == 0).all() and (remote[3:, 3:] != 0).any()


def test_http_tile_compressed(tmp_path, http_server):
    path = tmp_path / "comp.fits"
    w = small_image(path, compressed=True, dtype=np.int32)
    coord = w.pixel_to_world(30, 20)
    local = FITSCutout(path, coord, 7).cutouts[0].data
    remote = FITSCutout(http_server.url("comp.fits"), coord, 7).cutouts[0].data
    np.testing.assert_array_equal(remote, local)
    np.testing.assert_array_equal(remote[3, 3], 20 * 100 + 30)


def test_http_missing_file_names_url(http_server):
    url = http_server.url("missing.fits")
    with pytest.raises(InvalidInputError, match="missing.fits"):
        FITSCutout(url, "150 2", 5)


def test_open_fits_reads_headers_only(tmp_path, http_server):
    n = 1200  # 5.76 MB of data
    path = tmp_path / "mid.fits"
    sparse_big_image(path, n, (0, 1, 0, 1))
    hdul = open_fits(http_server.url("mid.fits"))
    try:
        assert hdul[0].header["NAXIS1"] == n
    finally:
        hdul.close()
    assert http_server.log.bytes_sent <= 2 * DEFAULT_BLOCK_SIZE


def test_50x50_cutout_of_200MB_image_over_http_transfers_under_2MB(tmp_path, http_server):
    n = 7100  # 7100**2 * 4 bytes = 201.6 MB (sparse on disk)
    path = tmp_path / "big.fits"
    patch = (3000, 3060, 4000, 4060)
    w = sparse_big_image(path, n, patch)
    assert path.stat().st_size > 200e6
    try:
        coord = w.pixel_to_world(4030, 3030)
        cut = FITSCutout(http_server.url("big.fits"), coord, 50)
        data = cut.cutouts[0].data
        assert data.shape == (50, 50)
        yy, xx = np.mgrid[3005:3055, 4005:4055]
        np.testing.assert_array_equal(data, patch_values(yy, xx))
        sent = http_server.log.bytes_sent
        assert 0 < sent < 2_000_000, f"transferred {sent} bytes"
    finally:
        path.unlink()


# ------------------------------------------------------------------------------------------------ S3


def test_s3_cutout_equals_local_and_transfers_little(tmp_path, s3_server):
    n = 1600  # 10 MB image
    path = tmp_path / "s3img.fits"
    patch = (1000, 1040, 1200, 1240)
    w = sparse_big_image(path, n, patch)
    uri = s3_server.upload(path)
    try:
        coord = w.pixel_to_world(1220, 1020)
        s3_server.log.reset()
        cut = FITSCutout(uri, coord, [30, 20], fsspec_kwargs=s3_server.fsspec_kwargs)
        local = FITSCutout(path, coord, [30, 20])
        np.testing.assert_array_equal(cut.cutouts[0].data, local.cutouts[0].data)
        assert cut.cutouts[0].data.shape == (20, 30)
        assert 0 < s3_server.log.bytes_sent < 2_000_000
        assert s3_server.log.body_requests("GET")
        paths = fits_cut(
            uri, coord, [30, 20], output_dir=tmp_path / "o", fsspec_kwargs=s3_server.fsspec_kwargs
        )
        with fits.open(paths) as hdul:
            assert hdul[1].header["ORIG_FLE"] == uri
    finally:
        s3_server.delete(path.name)


def test_s3_missing_key_names_uri(s3_server):
    uri = f"s3://{s3_server.bucket}/nope.fits"
    with pytest.raises(InvalidInputError, match="nope.fits"):
        FITSCutout(uri, "150 2", 5, fsspec_kwargs=s3_server.fsspec_kwargs)


def test_handle_closes_cleanly(tmp_path, s3_server):
    path = tmp_path / "h.fits"
    small_image(path)
    uri = s3_server.upload(path)
    with open_fits_handle(uri, s3_server.fsspec_kwargs) as handle:
        assert handle.remote and handle.hdul[1].name == "SCI"
        sec = handle.section(1)
        np.testing.assert_array_equal(sec[..., 2:4, 5:8], fits.getdata(path, 1)[2:4, 5:8])
    s3_server.delete(path.name)


def test_gzipped_inputs_local_and_http(tmp_path, http_server):
    import gzip
    import shutil

    path = tmp_path / "img.fits"
    w = small_image(path)
    gz = tmp_path / "img.fits.gz"
    with open(path, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    coord = w.pixel_to_world(20, 30)
    expected = FITSCutout(path, coord, [5, 3]).cutouts[0].data
    np.testing.assert_array_equal(FITSCutout(gz, coord, [5, 3]).cutouts[0].data, expected)
    np.testing.assert_array_equal(
        FITSCutout(http_server.url(gz.name), coord, [5, 3]).cutouts[0].data, expected
    )
    assert expected[1, 2] == 30 * 100 + 20
