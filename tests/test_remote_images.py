"""Remote FITS and ASDF images: round trips and bytes counted at loopback servers, products identical to local ones.

A remote plain FITS image is opened from one ranged read of its start plus its size (one round trip; a header
running past that read costs one more read), its HDUs built from the headers skycut's card parser found, and a
cutout's rows fetched as one byte range each, all in flight together (``skycut.core.fits_open``). A remote ASDF
file's tree, block index and block headers are fetched in three round trips before asdf parses them from memory,
and a cutout's rows of each uncompressed block likewise (``skycut.image.asdf_io.prefetch_asdf``). Budgets checked
here: at most two requests for the bytes before the first pixel (FITS headers, ASDF tree), pixel bytes at most
1.1 x the cutout's, outputs byte-identical to the local file's (``SOURCE_DATE_EPOCH`` pinned; a ``FILENAME`` card
makes ``ORIG_FLE`` the same for both) and to astropy's own reading of the remote file.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import asdf
import numpy as np
import pytest
import servers
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from test_asdf_cutout import _write_lz4, distorted_gwcs, sky, write_roman_like
from test_real_headers import HEADER_ONLY, _make_input

from skycut import ASDFCutout
from skycut.core import fits_open
from skycut.core.atomic import write_hdulist
from skycut.core.remote import DEFAULT_BLOCK_SIZE
from skycut.exceptions import InvalidInputError
from skycut.image import asdf_io
from skycut.image.fits_batch import cut_fits_targets
from skycut.image.fits_cutout import FITSCutout

http_server = servers.http_server
s3_server = servers.s3_server

SCALE = 0.1 / 3600.0
EPOCH = "1700000000"


@pytest.fixture(autouse=True)
def _pinned_dates(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


def tan_header(nx: int, ny: int) -> fits.Header:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    w.wcs.cdelt = [-SCALE, SCALE]
    return w.to_header()


def write_image(path: Path, shape=(1000, 1200), *, history: int = 0, extensions=("SCI",)) -> WCS:
    """A float32 image per extension (values encode the position), with ``history`` HISTORY cards before the WCS
    of the first one, and a ``FILENAME`` card in each (so a local and a remote cut write the same ``ORIG_FLE``)."""
    ny, nx = shape
    hdus = [fits.PrimaryHDU()]
    for k, name in enumerate(extensions):
        header = fits.Header()
        if k == 0:
            for i in range(history):
                header.add_history(f"processing step {i:05d}: " + "calibrated and checked " * 2)
        header.update(tan_header(nx, ny))
        header["FILENAME"] = path.name
        data = (np.arange(ny, dtype=np.float32)[:, None] * 10_000 + np.arange(nx) + k / 4).astype(np.float32)
        hdus.append(fits.ImageHDU(data, header, name=name))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return WCS(fits.getheader(path, 1))


def data_offset(path: Path, index: int) -> int:
    with fits.open(path) as hdul:
        return int(hdul.fileinfo(index)["datLoc"])


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_cutout(files, coord, size, out: Path, **kwargs) -> str:
    """The workflow's way of writing a FITSCutout (checksums stamped with ``SOURCE_DATE_EPOCH``); its sha256."""
    write_hdulist(FITSCutout(files, coord, size, **kwargs).fits_cutouts[0], out)
    return digest(out)


def split(log: servers.TransferLog, first_pixel: int) -> tuple[list, list, list]:
    """The server's requests as (size lookups, reads starting before ``first_pixel``, the other reads)."""
    gets = log.body_requests("GET")
    starts = [int(r.range.split("=")[1].split("-")[0]) for r in gets]
    heads = [r for r in log.requests if r.method == "HEAD"]
    return (
        heads,
        [r for r, a in zip(gets, starts, strict=True) if a < first_pixel],
        [r for r, a in zip(gets, starts, strict=True) if a >= first_pixel],
    )


# ------------------------------------------------------------------------------------------------ FITS


@pytest.mark.parametrize("where", ["http", "s3"])
def test_fits_50x50_header_in_one_round_trip_pixels_at_1x(tmp_path, request, where):
    """A 50 x 50 cutout of a 4.8 MB image: the header block and the size (one round trip, two requests), then its 50
    rows (one concurrent round, only the cutout's columns); the product is the local file's, byte for byte."""
    path = tmp_path / "img.fits"
    w = write_image(path)
    coord = w.pixel_to_world(600.3, 500.6)
    if where == "http":
        server = request.getfixturevalue("http_server")
        uri, options = server.url(path.name), {}
    else:
        server = request.getfixturevalue("s3_server")
        uri, options = server.upload(path), server.fsspec_kwargs
    try:
        server.log.reset()
        remote = write_cutout(uri, coord, 50, tmp_path / "remote.fits", fsspec_kwargs=options)
        heads, header_reads, pixel_reads = split(server.log, data_offset(path, 1))
        assert len(heads) == 1 and [r.range for r in header_reads] == [f"bytes=0-{DEFAULT_BLOCK_SIZE - 1}"]
        assert len(pixel_reads) <= 50
        assert sum(r.nbytes for r in pixel_reads) <= 1.1 * 50 * 50 * 4
        assert all(r.status == 206 for r in header_reads + pixel_reads)
        assert remote == write_cutout(str(path), coord, 50, tmp_path / "local.fits")
    finally:
        if where == "s3":
            server.delete(path.name)


def test_fits_long_header_takes_a_second_read(tmp_path, http_server):
    """A header running past the first 64 KiB (1,500 HISTORY cards, 120 KB) is completed by one more read; the
    products (FITSCutout and the workflow's batch) are those of the local file and of astropy's own reading."""
    path = tmp_path / "long.fits"
    w = write_image(path, shape=(300, 400), history=1500)
    offset = data_offset(path, 1)
    assert offset > 1.5 * DEFAULT_BLOCK_SIZE
    coord = w.pixel_to_world(200.2, 150.1)
    url = http_server.url(path.name)
    http_server.log.reset()
    remote = write_cutout(url, coord, [30, 20], tmp_path / "remote.fits")
    heads, header_reads, pixel_reads = split(http_server.log, offset)
    assert len(heads) == 1 and len(header_reads) == 2
    assert header_reads[0].range == f"bytes=0-{DEFAULT_BLOCK_SIZE - 1}"
    assert sum(r.nbytes for r in pixel_reads) <= 1.1 * 30 * 20 * 4
    assert remote == write_cutout(str(path), coord, [30, 20], tmp_path / "local.fits")
    fits_open.RAW_REMOTE = False
    try:
        assert remote == write_cutout(url, coord, [30, 20], tmp_path / "astropy.fits")
    finally:
        fits_open.RAW_REMOTE = True
    targets = [("a", coord, [30, 20]), ("b", w.pixel_to_world(3.0, 290.0), 11)]
    local = cut_fits_targets([str(path)], targets, [tmp_path / "la.fits", tmp_path / "lb.fits"])
    http_server.log.reset()
    batch = cut_fits_targets([url], targets, [tmp_path / "ra.fits", tmp_path / "rb.fits"], fsspec_kwargs={})
    assert sorted(local.written) == sorted(batch.written) == ["a", "b"]
    for name in ("a", "b"):
        assert digest(tmp_path / f"r{name}.fits") == digest(tmp_path / f"l{name}.fits")
    _, header_reads, _ = split(http_server.log, offset)
    assert len(header_reads) == 2  # the batch opens the file once for both targets


def test_fits_every_extension_one_read_per_further_header(tmp_path, http_server):
    """SCI and WHT both cut (extension=None): WHT's header lies after SCI's data, one read of its own; each image's
    rows in one round; the product is the local one."""
    path = tmp_path / "two.fits"
    w = write_image(path, shape=(400, 500), extensions=("SCI", "WHT"))
    coord = w.pixel_to_world(250.4, 200.2)
    http_server.log.reset()
    remote = write_cutout(http_server.url(path.name), coord, 25, tmp_path / "remote.fits")
    sci, wht = data_offset(path, 1), data_offset(path, 2)
    wht_header = sci + -(-400 * 500 * 4 // 2880) * 2880
    gets = http_server.log.body_requests("GET")
    starts = [int(r.range.split("=")[1].split("-")[0]) for r in gets]
    header_reads = [r for r, a in zip(gets, starts, strict=True) if a < sci or wht_header <= a < wht]
    assert len(header_reads) == 2  # the first 64 KiB, WHT's header
    assert sum(r.nbytes for r in gets) - sum(r.nbytes for r in header_reads) <= 1.1 * 2 * 25 * 25 * 4
    assert remote == write_cutout(str(path), coord, 25, tmp_path / "local.fits")


def test_fits_tile_compressed_falls_back_without_fetching_the_start_again(tmp_path, http_server):
    """A tile-compressed image is read by astropy (the documented fallback) over the same source: the bytes read
    to parse the headers are not requested again, and the product is the local one."""
    path = tmp_path / "comp.fits"
    w = WCS(tan_header(300, 200))
    data = (np.arange(200)[:, None] * 1000 + np.arange(300)[None, :]).astype(np.int32)
    header = w.to_header()
    header["FILENAME"] = path.name
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header)]).writeto(path)
    coord = w.pixel_to_world(150, 100)
    http_server.log.reset()
    remote = write_cutout(http_server.url(path.name), coord, 9, tmp_path / "remote.fits")
    ranges = [r.range for r in http_server.log.body_requests("GET")]
    assert len(ranges) == len(set(ranges)) and ranges[0] == f"bytes=0-{DEFAULT_BLOCK_SIZE - 1}"
    assert remote == write_cutout(str(path), coord, 9, tmp_path / "local.fits")


@pytest.mark.parametrize("name", HEADER_ONLY)
def test_real_headers_raw_path_equals_astropy_path(tmp_path, http_server, name):
    """Archive headers (SIP, TPV, alternate WCSs, ten projections): the HDUs built from skycut's header scan give
    the very bytes astropy's own reading of the remote file gives."""
    path = _make_input(name, tmp_path)
    with fits.open(path) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = hdul[0].header
        coord = WCS(header).celestial.pixel_to_world(header["NAXIS1"] * 0.4, header["NAXIS2"] * 0.6)
    coord = SkyCoord(coord.ra, coord.dec, frame="icrs")
    url = http_server.url(path.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits_open.open_fits_handle(url) as handle:
            assert handle.data_offsets is not None  # the header scan served
        raw = write_cutout(url, coord, 15, tmp_path / "raw.fits")
        fits_open.RAW_REMOTE = False
        try:
            assert raw == write_cutout(url, coord, 15, tmp_path / "astropy.fits")
        finally:
            fits_open.RAW_REMOTE = True


@pytest.mark.parametrize("kind", ["fits", "asdf"])
def test_missing_remote_file_names_the_uri(http_server, s3_server, kind):
    """A 404 over HTTP or S3 is an error naming the URI and saying 'not found'."""
    for uri, options in (
        (http_server.url(f"absent.{kind}"), {}),
        (f"s3://{s3_server.bucket}/absent.{kind}", s3_server.fsspec_kwargs),
    ):
        with pytest.raises(InvalidInputError, match=rf"{uri.replace('.', '[.]')}.*not found"):
            if kind == "fits":
                FITSCutout(uri, "150 2", 5, fsspec_kwargs=options)
            else:
                ASDFCutout(uri, "30 45", cutout_size=5, fsspec_kwargs=options)


# ------------------------------------------------------------------------------------------------ ASDF


@pytest.fixture(scope="module")
def roman(tmp_path_factory):
    """A 512 x 512 uncompressed Roman-like file, its gwcs, and its blocks' offsets."""
    gw = distorted_gwcs((512, 512), dist=1e-7)
    path = write_roman_like(tmp_path_factory.mktemp("roman") / "r_cal.asdf", shape=(512, 512), gwcs_obj=gw)
    return path, gw


def block_offsets(path: Path) -> list[int]:
    raw = path.read_bytes()
    return asdf_io._block_index(raw[raw.rfind(b"#ASDF BLOCK INDEX") :])


def asdf_bytes(cut: ASDFCutout, out: Path) -> bytes:
    (written,) = cut.write_as_asdf(out)
    return Path(written).read_bytes()


@pytest.mark.parametrize("lite", [True, False])
def test_asdf_tree_in_one_round_trip_pixels_at_1x(tmp_path, http_server, roman, lite, monkeypatch):
    """The tree (and the small gwcs blocks after it) in the first read, the block index in the second, the block
    headers in the third; then each array's rows of the cutout, at most 1.1 x its bytes. The arrays are the local
    file's; the written file is the one asdf's own reading of the remote file gives."""
    path, gw = roman
    url = http_server.add(path)
    coord = SkyCoord(*sky(gw, 300.0, 400.0), unit="deg")
    http_server.log.reset()
    cut = ASDFCutout(url, coord, cutout_size=50, lite=lite)
    offsets = block_offsets(path)
    heads, before, after = split(http_server.log, offsets[0])
    assert len(heads) == 1 and [r.range for r in before] == [f"bytes=0-{DEFAULT_BLOCK_SIZE - 1}"]
    ranges = [(int(a), int(b) + 1) for a, b in (r.range.split("=")[1].split("-") for r in after)]
    block_headers = [(a, b) for a, b in ranges if any(o <= a and b <= o + 54 for o in offsets)]
    index = [(a, b) for a, b in ranges if b == path.stat().st_size]
    pixels = [(a, b) for a, b in ranges if (a, b) not in block_headers + index]
    assert len(index) == 1 and len(block_headers) <= len(offsets)
    roman_cut = cut.asdf_cutouts[0]["roman"]
    cut_arrays = [v for k, v in roman_cut.items() if k != "meta" and getattr(v, "shape", ())[-2:] == (50, 50)]
    assert sum(b - a for a, b in pixels) <= 1.1 * sum(v.nbytes for v in cut_arrays)
    ends = [*offsets[1:], path.stat().st_size]
    assert all(
        any(o + 54 <= a and b <= end for o, end in zip(offsets, ends, strict=True)) for a, b in pixels
    )  # in blocks
    local = ASDFCutout(path, coord, cutout_size=50, lite=lite).asdf_cutouts[0]["roman"]
    assert set(local) == set(roman_cut)
    for name in set(local) - {"meta"}:
        np.testing.assert_array_equal(roman_cut[name], local[name])
        assert np.asarray(roman_cut[name]).dtype == np.asarray(local[name]).dtype
    prefetched = asdf_bytes(cut, tmp_path / "a")
    monkeypatch.setattr(asdf_io, "prefetch_asdf", lambda source: None)
    assert asdf_bytes(ASDFCutout(url, coord, cutout_size=50, lite=lite), tmp_path / "b") == prefetched


def test_asdf_long_tree_takes_a_second_read(tmp_path, http_server):
    """A YAML tree longer than the first read (1,500 extra metadata entries, ~130 KB) is completed by the second
    round trip; the cutout is the local one."""
    gw = distorted_gwcs((300, 320), dist=1e-7)
    extra = {"notes": {f"note_{i:04d}": "observed, calibrated and checked " * 2 for i in range(1500)}}
    path = write_roman_like(tmp_path / "long_cal.asdf", shape=(300, 320), gwcs_obj=gw, extra=extra)
    first_block = block_offsets(path)[0]
    assert first_block > 1.5 * DEFAULT_BLOCK_SIZE
    coord = SkyCoord(*sky(gw, 100.0, 200.0), unit="deg")
    http_server.log.reset()
    cut = ASDFCutout(http_server.url(path.name), coord, cutout_size=21, lite=True)
    _, before, after = split(http_server.log, first_block)
    assert len(before) == 2  # the first 64 KiB, then the rest of the tree
    local = ASDFCutout(path, coord, cutout_size=21, lite=True)
    np.testing.assert_array_equal(cut.cutouts[0].data, local.cutouts[0].data)
    assert cut.asdf_cutouts[0]["roman"]["meta"]["wcs"].forward_transform(10, 10) == pytest.approx(
        local.asdf_cutouts[0]["roman"]["meta"]["wcs"].forward_transform(10, 10)
    )


def test_asdf_lz4_blocks_keep_the_chunked_path(tmp_path, http_server, roman):
    """lz4-compressed blocks are read chunk by chunk as before (the documented fallback); the tree and block
    headers still come prefetched; the cutout is the local one."""
    path, gw = roman
    packed = _write_lz4(path, tmp_path / "p_cal.asdf", chunk_bytes=1 << 16)
    coord = SkyCoord(*sky(gw, 200.0, 300.0), unit="deg")
    http_server.log.reset()
    cut = ASDFCutout(http_server.url(packed.name), coord, cutout_size=15)
    assert http_server.log.bytes_sent < packed.stat().st_size / 5
    with asdf.open(packed) as af:
        yy, xx = np.mgrid[293:308, 193:208]
        np.testing.assert_array_equal(cut.cutouts[0].data, np.asarray(af["roman"]["data"])[yy, xx])
