"""Remote cubes (s3:// through moto's S3 server, https:// through a Range HTTP server, both on loopback).

The servers count requests and body bytes; the cutouts must equal local ones and read no more than
1.5 x the cutout's minimal pixel bytes plus the header blocks and the FFI table.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import servers
from astropy.coordinates import SkyCoord

from skycut.core.fits_bytes import padded
from skycut.exceptions import InvalidInputError
from skycut.tess.cube_batch import cut_cube_targets
from skycut.tess.cube_cutout import TessCubeCutout
from skycut.tess.cube_reader import CubeReader

# the loopback servers' pytest fixtures (assigned, not imported, so test arguments do not shadow an import)
s3_server = servers.s3_server
http_server = servers.http_server


@pytest.fixture(scope="module")
def cube(sim_tess, tmp_path_factory) -> Path:
    from skycut.tess.cube_factory import CubeFactory

    out = tmp_path_factory.mktemp("remote_cube")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Path(
            CubeFactory().make_cube(
                [str(f) for f in sim_tess.files], str(out / "tess-s0011-1-1-cube.fits"), verbose=False
            )
        )


def overhead_bytes(cube: Path) -> int:
    """Bytes of the header blocks (primary, image, table) and the table data: what any reader must fetch."""
    with CubeReader(cube) as r:
        return (
            r.primary.nbytes
            + r.image_header.nbytes
            + r.table_header.nbytes
            + padded(r.table_header.data_nbytes())
        )


def minimal_bytes(cutout, ntime: int) -> int:
    """Pixel bytes of the on-CCD part of a cutout (both planes, all FFIs, float32)."""
    return int(cutout.aperture.sum()) * ntime * 2 * 4


def var_coord(truth) -> SkyCoord:
    return SkyCoord(truth["variable"]["ra"], truth["variable"]["dec"], unit="deg")


@pytest.mark.parametrize("threads", [1, 4, "auto"])
def test_s3_cutout_equals_local_and_reads_little(s3_server, cube, sim_tess, threads):
    uri = s3_server.upload(cube, key=f"t{threads}/{cube.name}")
    coord = var_coord(sim_tess.truth)
    local = TessCubeCutout(cube, coord, [10, 7]).cutouts[0]
    s3_server.log.reset()
    remote = TessCubeCutout(uri, coord, [10, 7], threads=threads, fsspec_kwargs=s3_server.fsspec_kwargs)
    got = remote.cutouts_by_file[uri][0]
    np.testing.assert_array_equal(got.data, local.data)
    np.testing.assert_array_equal(got.uncertainty, local.uncertainty)
    sent = s3_server.log.bytes_sent
    assert sent <= 1.5 * minimal_bytes(local, len(sim_tess.files)) + overhead_bytes(cube)
    # one ranged GET per cutout row, plus the headers and the table
    gets = s3_server.log.body_requests("GET")
    assert len(gets) <= 7 + 4
    assert remote.tpf_cutouts[0][1].data["FLUX"].shape == (len(sim_tess.files), 7, 10)


def test_full_width_rows_are_one_request(s3_server, cube, sim_tess):
    uri = s3_server.upload(cube, key=f"wide/{cube.name}")
    with CubeReader(cube) as r:
        ncols = r.ncols
    s3_server.log.reset()
    with CubeReader(uri, fsspec_kwargs=s3_server.fsspec_kwargs) as reader:
        before = reader.requests
        blocks = reader.read_blocks([[[0, ncols], [10, 30]]])
        assert reader.requests - before == 1
    with CubeReader(cube) as r:
        np.testing.assert_array_equal(blocks[0], np.asarray(r.memmap()[10:30, :]))


def test_http_cutout_equals_local_and_reads_little(http_server, cube, sim_tess, tmp_path):
    url = http_server.add(cube)
    coord = var_coord(sim_tess.truth)
    local = TessCubeCutout(cube, coord, 6).cutouts[0]
    http_server.log.reset()
    remote = TessCubeCutout(url, coord, 6, threads=3)
    np.testing.assert_array_equal(remote.cutouts[0].data, local.data)
    sent = http_server.log.bytes_sent
    assert sent <= 1.5 * minimal_bytes(local, len(sim_tess.files)) + overhead_bytes(cube)
    paths = remote.write_as_tpf(tmp_path / "out")
    assert Path(paths[0]).name.startswith("tess-s0011-1-1_")


def test_remote_batch_of_targets(s3_server, cube, sim_tess, tmp_path):
    uri = s3_server.upload(cube, key=f"batch/{cube.name}")
    stars = sim_tess.truth["stars"]
    targets = [(f"s{i}", SkyCoord(stars["ra"][i], stars["dec"][i], unit="deg")) for i in range(5)]
    s3_server.log.reset()
    result = cut_cube_targets(
        uri, targets, 5, output_dir=tmp_path, threads=4, fsspec_kwargs=s3_server.fsspec_kwargs
    )
    written = {name: path for name, (path,) in result.written.items()}
    assert sorted(written) == [f"s{i}" for i in range(5)] and not result.skipped and not result.failed
    local = {n: TessCubeCutout(cube, c, 5).cutouts[0] for n, c in targets}
    from astropy.io import fits

    for name, path in written.items():
        np.testing.assert_array_equal(fits.getdata(path, 1)["FLUX"], local[name].data)
    minimal = sum(minimal_bytes(c, len(sim_tess.files)) for c in local.values())
    assert s3_server.log.bytes_sent <= 1.5 * minimal + overhead_bytes(cube)


def test_missing_remote_cube_is_a_clear_error(s3_server, http_server):
    with pytest.raises(InvalidInputError, match="nothing-here-cube.fits"):
        TessCubeCutout(
            f"s3://{s3_server.bucket}/nothing-here-cube.fits", "0 0", 5, fsspec_kwargs=s3_server.fsspec_kwargs
        )
    with pytest.raises(InvalidInputError, match="absent-cube.fits"):
        TessCubeCutout(http_server.url("absent-cube.fits"), "0 0", 5)


def test_s3_reads_anonymously_by_default(s3_server, cube, sim_tess):
    """Without credentials skycut reads s3:// anonymously (as MAST's public bucket needs): a public object is
    readable, a private one is refused with an error naming it."""
    endpoint_only = {"endpoint_url": s3_server.fsspec_kwargs["endpoint_url"]}
    private = s3_server.upload(cube, key=f"private/{cube.name}")
    with pytest.raises(InvalidInputError, match="private/tess-s0011-1-1-cube.fits"):
        TessCubeCutout(private, var_coord(sim_tess.truth), 5, fsspec_kwargs=endpoint_only)
    public = s3_server.upload(cube, key=f"public/{cube.name}")
    s3_server._client().put_object_acl(Bucket=s3_server.bucket, Key=f"public/{cube.name}", ACL="public-read")
    cut = TessCubeCutout(public, var_coord(sim_tess.truth), 5, fsspec_kwargs=endpoint_only)
    np.testing.assert_array_equal(
        cut.cutouts[0].data, TessCubeCutout(cube, var_coord(sim_tess.truth), 5).cutouts[0].data
    )


def test_https_cube_with_anon_option_equals_local(http_server, cube, sim_tess, tmp_path):
    """A manifest's ``fsspec: {anon: true}`` (meant for s3://) next to an https:// cube: the option does not
    apply to HTTP and is ignored, instead of reaching aiohttp as an unknown keyword argument."""
    url = http_server.add(cube)
    options = {"anon": True, "requester_pays": False, "endpoint_url": "http://127.0.0.1:9"}
    coord = var_coord(sim_tess.truth)
    local = TessCubeCutout(cube, coord, [8, 6]).cutouts[0]
    remote = TessCubeCutout(url, coord, [8, 6], fsspec_kwargs=options).cutouts[0]
    np.testing.assert_array_equal(remote.data, local.data)
    np.testing.assert_array_equal(remote.uncertainty, local.uncertainty)

    stars = sim_tess.truth["stars"]
    targets = [(f"s{i}", SkyCoord(stars["ra"][i], stars["dec"][i], unit="deg")) for i in range(4)]
    result = cut_cube_targets(url, targets, 5, output_dir=tmp_path / "tpf", threads=4, fsspec_kwargs=options)
    written = {name: path for name, (path,) in result.written.items()}
    assert sorted(written) == [name for name, _ in targets]
    from astropy.io import fits

    for name, coord_i in targets:
        expected = TessCubeCutout(cube, coord_i, 5).cutouts[0]
        np.testing.assert_array_equal(fits.getdata(written[name], 1)["FLUX"], expected.data)
        np.testing.assert_array_equal(fits.getdata(written[name], 1)["FLUX_ERR"], expected.uncertainty)


def test_one_option_set_serves_s3_and_https_cubes(s3_server, http_server, cube, sim_tess):
    """The same options (explicit ``anon`` plus an S3 endpoint) read a public s3:// cube anonymously and an
    https:// cube, with the same pixels as the local cube."""
    options = {"anon": True, "endpoint_url": s3_server.endpoint_url}
    key = f"anon/{cube.name}"
    uri = s3_server.upload(cube, key=key)
    s3_server._client().put_object_acl(Bucket=s3_server.bucket, Key=key, ACL="public-read")
    url = http_server.add(cube)
    coord = var_coord(sim_tess.truth)
    local = TessCubeCutout(cube, coord, 5).cutouts[0].data
    both = TessCubeCutout([uri, url], coord, 5, fsspec_kwargs=options)
    np.testing.assert_array_equal(both.cutouts_by_file[uri][0].data, local)
    np.testing.assert_array_equal(both.cutouts_by_file[url][0].data, local)


def test_remote_cube_headers_and_table_take_two_requests(http_server, cube):
    """Opening a remote cube: one request for the first blocks (both headers), one for the FFI table (the rest
    of the file after the image data); no size lookup."""
    url = http_server.add(cube)
    http_server.log.reset()
    with CubeReader(url) as reader, CubeReader(cube) as local:
        assert reader.requests == 2
        assert reader.shape == local.shape and reader.data_offset == local.data_offset
        for name, column in local.table.items():
            np.testing.assert_array_equal(reader.table[name], column)
    assert [r.method for r in http_server.log.requests] == ["GET", "GET"]
    assert http_server.log.bytes_sent <= overhead_bytes(cube) + 2 * 2880


def test_remote_cube_errors_name_the_uri_and_cause(s3_server, http_server, cube):
    missing = http_server.url("absent-cube.fits")
    with pytest.raises(InvalidInputError, match=r"absent-cube\.fits.*not found"):
        CubeReader(missing, fsspec_kwargs={"anon": True})
    with pytest.raises(InvalidInputError, match=r"s3://skycut-test/gone-cube\.fits.*not found"):
        CubeReader(f"s3://{s3_server.bucket}/gone-cube.fits", fsspec_kwargs=s3_server.fsspec_kwargs)
    refused = f"http://127.0.0.1:{servers.free_port()}/cube.fits"
    with pytest.raises(InvalidInputError, match=r"127\.0\.0\.1:\d+/cube\.fits.*connection refused"):
        TessCubeCutout(refused, "0 0", 5)
    private = s3_server.upload(cube, key=f"private2/{cube.name}")
    with pytest.raises(InvalidInputError, match=r"private2/tess-s0011-1-1-cube\.fits.*access denied"):
        CubeReader(private, fsspec_kwargs={"anon": True, "endpoint_url": s3_server.endpoint_url})


def test_truncated_remote_cube_is_a_clear_error(http_server, cube, tmp_path):
    """A remote cube cut short after its image data: no FFI table, said so (the open-ended table read finds
    nothing instead of the file size being asked first)."""
    with CubeReader(cube) as r:
        end = r.data_offset + padded(int(np.prod(r.shape)) * r.dtype.itemsize)
    short = http_server.directory / "short-cube.fits"
    short.write_bytes(cube.read_bytes()[:end])
    with pytest.raises(InvalidInputError, match=r"short-cube\.fits.*FFI table \(HDU 2\) is missing"):
        CubeReader(http_server.url(short.name))


def test_public_s3_url_only_for_plain_anonymous_reads(monkeypatch):
    """Anonymous s3:// objects are read with plain HTTP GETs (no botocore per request): the URL rules, and every
    option that needs s3fs (credentials, requester pays, versions, extra botocore settings) keeps s3fs."""
    from skycut.core.remote import public_s3_url

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    key = "tess/public/mast/tess-s0009-1-1-cube.fits"
    uri = f"s3://stpubdata/{key}"
    assert public_s3_url(uri) == f"https://stpubdata.s3.amazonaws.com/{key}"
    assert public_s3_url(uri, {"anon": True, "timeout": 5, "block_size": 2**20}) == public_s3_url(uri)
    regional = {"client_kwargs": {"region_name": "us-east-1"}}
    assert public_s3_url(uri, regional) == f"https://stpubdata.s3.us-east-1.amazonaws.com/{key}"
    assert public_s3_url(uri, {"use_ssl": False}).startswith("http://stpubdata.s3.amazonaws.com/")
    assert (
        public_s3_url(uri, {"endpoint_url": "http://127.0.0.1:9000/"})
        == f"http://127.0.0.1:9000/stpubdata/{key}"
    )
    assert public_s3_url("s3://b-1/a key+x.fits", {"client_kwargs": {"endpoint_url": "http://h"}}) == (
        "http://h/b-1/a%20key%2Bx.fits"
    )
    monkeypatch.setenv(
        "AWS_ENDPOINT_URL", "http://localhost:1"
    )  # botocore's variable, as astrocut users set it
    assert public_s3_url(uri) == f"http://localhost:1/stpubdata/{key}"
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    for needs_s3fs in (
        {"key": "k", "secret": "s"},
        {"profile": "default"},
        {"anon": False},
        {"requester_pays": True},
        {"version_aware": True},
        {"s3_additional_kwargs": {"SSECustomerKey": "x"}},
        {"config_kwargs": {"signature_version": "s3v4"}},
        {"client_kwargs": {"verify": False}},
    ):
        assert public_s3_url(uri, needs_s3fs) is None, needs_s3fs
    assert public_s3_url(uri, {"endpoint_url": "not an endpoint"}) is None  # botocore's error names it
    assert public_s3_url("s3://my.dotted.bucket/k.fits") is None  # no TLS host name for it
    assert public_s3_url("s3://Caps/k.fits") is None
    assert public_s3_url("s3://bucket-only") is None
    assert public_s3_url("https://example.org/k.fits") is None


def test_anonymous_and_credentialed_s3_give_the_same_tpfs(s3_server, cube, sim_tess, tmp_path, monkeypatch):
    """A public object read anonymously (plain HTTP GETs) and with credentials (s3fs/botocore): the same TPF
    bytes, and the anonymous read never goes through s3fs."""
    from skycut.core.remote_file import RemoteFile

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    key = f"both/{cube.name}"
    uri = s3_server.upload(cube, key=key)
    s3_server._client().put_object_acl(Bucket=s3_server.bucket, Key=key, ACL="public-read")
    anonymous = {"anon": True, "endpoint_url": s3_server.endpoint_url}
    assert type(RemoteFile(uri, anonymous).fs).__name__ == "HTTPFileSystem"
    assert type(RemoteFile(uri, s3_server.fsspec_kwargs).fs).__name__ == "S3FileSystem"
    stars = sim_tess.truth["stars"]
    targets = [(f"s{i}", f"{stars['ra'][i]} {stars['dec'][i]}") for i in range(5)]
    out = {}
    for label, options in (("anon", anonymous), ("creds", s3_server.fsspec_kwargs)):
        result = cut_cube_targets(
            uri, targets, 6, output_dir=tmp_path / label, threads="auto", fsspec_kwargs=options
        )
        assert not result.failed and len(result.written) == len(targets)
        out[label] = {name: Path(path).read_bytes() for name, (path,) in result.written.items()}
    assert out["anon"] == out["creds"]
