"""TPFs written chunk by chunk: the same bytes as built in memory, and the helpers that make it fast.

Data: the session's simulated FFIs (``sim_tess``) made into a cube by skycut's CubeFactory, and random blocks.
The in-memory serialisation (:meth:`PendingTpf.parts`) and numpy are the references for the streamed file and for
the compiled copy; astropy verifies every checksum.
"""

from __future__ import annotations

import os
import stat
import warnings

import numpy as np
import pytest
from astropy.io import fits

import skycut.core.atomic as atomic
import skycut.core.block_rows as block_rows
from skycut.core.fits_bytes import encode_checksum, fold_sum, ones_complement_sum, value_field
from skycut.tess import tpf_table
from skycut.tess.cube_cutout import _CubeSession, _fit_chunks
from skycut.tess.cube_factory import CubeFactory
from skycut.tess.tpf_table import table_layout, write_table


@pytest.fixture(scope="module")
def cube(sim_tess, tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "tess-s0011-1-1-cube.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        CubeFactory().make_cube([str(f) for f in sim_tess.files], str(path), verbose=False)
    return path


def cutouts(cube, pixels, size=(9, 7)):
    """Cutouts of ``cube`` centred on 0-based ``(x, y)`` pixels: (session, [CubeCutoutInstance])."""
    session = _CubeSession(cube, fill_value=float("nan"), rounding="round", threads=1, fsspec_kwargs=None)
    x, y = np.array(pixels, dtype=float).T
    ra, dec = session.wcs.all_pix2world(x, y, 0)
    lims = session.locate(ra, dec, size)
    cuts = [c for _, c in session.iter_cut(ra, dec, lims, [None] * len(lims), copy=False)]
    return session, cuts


def reference_rows(block, t0, t1):
    """numpy's answer for copy_rows: the rows and the plain sum of their big-endian words (Python ints)."""
    rows = np.ascontiguousarray(block[:, :, t0:t1, :2].transpose(2, 3, 0, 1))
    words = rows.view(">u4").astype(np.uint64)
    return rows, int(words.sum())


# ------------------------------------------------------------------------------------------ copy_rows


@pytest.mark.parametrize("compiled", [True, False])
def test_copy_rows_matches_numpy_for_any_strides(monkeypatch, compiled):
    if compiled and not block_rows.COMPILED:
        pytest.skip("the compiled accelerator is not built here")
    if not compiled:
        monkeypatch.setattr(block_rows, "_rows_sum", None)
    rng = np.random.default_rng(5)
    base = rng.integers(0, 2**32, size=(9, 11, 40, 3), dtype=np.uint64).astype(">u4").view(">f4")
    blocks = {
        "contiguous": np.ascontiguousarray(base[:, :, :, :2]),
        "view of a bigger cube": base[2:7, 3:8],  # three planes, rows and columns skipped
        "every other cadence": base[:, :4, ::2],
        "one pixel": base[4:5, 6:7],
    }
    for name, block in blocks.items():
        ny, nx, nt, _ = block.shape
        out = np.full((16, 2, ny, nx), 7, dtype=">f4")
        for t0, t1 in [(0, nt), (3, min(nt, 19)), (nt, nt)]:
            want_rows, want_sum = reference_rows(block, t0, t1)
            got = block_rows.copy_rows(block, t0, t1, out) if t1 - t0 <= 16 else None
            if got is None:  # more rows than the buffer: use a big enough one
                big = np.empty((t1 - t0, 2, ny, nx), dtype=">f4")
                got, rows = block_rows.copy_rows(block, t0, t1, big), big
            else:
                rows = out[: t1 - t0]
            assert got == want_sum, (name, t0, t1)
            assert rows.tobytes() == want_rows.tobytes(), (name, t0, t1)


@pytest.fixture(params=[True, False], ids=["simd", "portable"])
def simd(request):
    """The compiled copy with its AVX2 path on (where the CPU has it) and off; restored afterwards."""
    if not block_rows.COMPILED:
        pytest.skip("the compiled accelerator is not built here")
    before = block_rows._simd()
    on = block_rows._simd(request.param)
    if request.param and not on:
        pytest.skip("this CPU has no AVX2")
    yield on
    block_rows._simd(before)


@pytest.mark.parametrize("ny, nx", [(1, 8), (3, 3), (2, 5), (15, 15), (4, 7)])
def test_compiled_copy_rows_packed_blocks(simd, ny, nx):
    # packed (flux, error) pairs, as in a cube's memory map: the layout the AVX2 path takes (8 pixels or more: a
    # last group of 8 overlapping the one before; cadences in tiles of 8, then the rest one by one)
    rng = np.random.default_rng(ny * 100 + nx)
    base = rng.integers(0, 2**32, size=(ny + 3, nx + 2, 53, 2), dtype=np.uint64).astype(">u4").view(">f4")
    block = base[1 : ny + 1, 2 : nx + 2]  # rows and columns of a bigger cube skipped
    for t0, t1 in [(0, 53), (5, 21), (8, 16), (50, 53), (7, 7)]:
        out = np.full((t1 - t0, 2, ny, nx), 7, dtype=">f4")
        want_rows, want_sum = reference_rows(block, t0, t1)
        assert block_rows.copy_rows(block, t0, t1, out) == want_sum, (t0, t1)
        assert out.tobytes() == want_rows.tobytes(), (t0, t1)


def test_compiled_copy_rows_rejects_what_it_cannot_copy():
    if not block_rows.COMPILED:
        pytest.skip("the compiled accelerator is not built here")
    block = np.zeros((3, 4, 10, 2), dtype=">f4")
    with pytest.raises(ValueError, match="too small"):
        block_rows._rows_sum(block, 0, 10, np.empty((9, 2, 3, 4), dtype=">f4"))
    with pytest.raises(ValueError, match="outside"):
        block_rows._rows_sum(block, 5, 11, np.empty((10, 2, 3, 4), dtype=">f4"))
    with pytest.raises(ValueError, match="4-D"):
        block_rows._rows_sum(block[..., :1], 0, 1, np.empty((1, 2, 3, 4), dtype=">f4"))


def test_fold_sum_is_the_ones_complement_sum():
    rng = np.random.default_rng(2)
    words = rng.integers(0, 2**32, size=5000, dtype=np.uint64)
    data = words.astype(">u4").tobytes()
    assert fold_sum(int(words.sum())) == ones_complement_sum(data)
    assert fold_sum(0) == 0 and fold_sum(2**32 - 1) == 2**32 - 1 and fold_sum(2**32) == 1


# ------------------------------------------------------------------------------------------ streamed TPFs


@pytest.mark.parametrize("one_call", [True, False], ids=["one call", "table then header"])
def test_streamed_tpf_is_the_in_memory_tpf(cube, tmp_path, monkeypatch, one_call):
    if one_call and not block_rows.FILES:
        pytest.skip("the compiled accelerator is not built here")
    if not one_call:
        monkeypatch.setattr(tpf_table, "FILES", False)
    # interior, at a corner (padded with NaN), and one pixel from the edge
    session, cuts = cutouts(cube, [(70, 60), (1, 1), (138, 58)])
    try:
        for k, cut in enumerate(cuts):
            pending = cut.tpf_parts(scratch=1, deferred=True)
            path = pending.write(tmp_path / f"streamed{k}.fits")
            assert path.read_bytes() == b"".join(cut.tpf_parts(scratch=2))
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                with fits.open(path, checksum=True) as hdul:
                    hdul.verify("exception")
                    flux = hdul["PIXELS"].data["FLUX"]
                    assert flux.shape == (cut.shape[0], 7, 9)
                    if k == 0:  # interior: the cube's own pixels, read with astropy
                        (x0, x1), (y0, y1) = cut.cutout_lims
                        with fits.open(cube) as c:
                            want = c[1].data[y0:y1, x0:x1, :, 0].transpose(2, 0, 1)
                        np.testing.assert_array_equal(flux, want)
                    else:  # at the edge: padding is NaN
                        assert np.isnan(flux).any() and np.isfinite(flux).any()
        assert write_table_was_streamed(session, cuts[0], tmp_path)
    finally:
        session.close()


def write_table_was_streamed(session, cut, tmp_path) -> bool:
    fd = os.open(tmp_path / "table", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        return write_table(fd, 0, session.meta, cut.tpf_input(), None) is not None
    finally:
        os.close(fd)


def test_rows_not_whole_words_fall_back_to_the_in_memory_table(cube, tmp_path):
    session, cuts = cutouts(cube, [(70, 60)])
    try:
        meta = session.meta
        # FFI names one character longer: the table rows are no longer a whole number of 4-byte words
        meta.ffi_files = np.array([name + "x" for name in meta.ffi_files])
        meta.cache.clear()
        cut = cuts[0]
        assert table_layout(meta, 9, 7)[0].dtype.itemsize % 4 != 0
        assert not write_table_was_streamed(session, cut, tmp_path)
        path = cut.tpf_parts(scratch=1, deferred=True).write(tmp_path / "fallback.fits")
        assert path.read_bytes() == b"".join(cut.tpf_parts())
        with fits.open(path, checksum=True) as hdul:
            assert hdul["PIXELS"].data["FFI_FILE"][0].endswith("x")
    finally:
        session.close()


def test_compiled_checksum_field_is_encode_checksum():
    if not block_rows.COMPILED:
        pytest.skip("the compiled accelerator is not built here")
    from skycut.core._block_rows import checksum_field

    rng = np.random.default_rng(4)
    for value in [0, 1, 2**32 - 1, *rng.integers(0, 2**32, 20000, dtype=np.uint64).tolist()]:
        assert checksum_field(value) == value_field(encode_checksum(value)), value


def test_compiled_stamp_checksums_is_the_python_one(monkeypatch):
    if not block_rows.COMPILED:
        pytest.skip("the compiled accelerator is not built here")
    import skycut.core.fits_bytes as fb

    rng = np.random.default_rng(8)
    for k in range(40):
        cards = [
            fb.format_card(f"K{i}", float(x), "c") for i, x in enumerate(rng.normal(size=rng.integers(1, 90)))
        ]
        template = fb.HeaderTemplate(cards, "2026-01-01T00:00:00" if k % 2 else None)
        datasum = int(rng.integers(0, 2**32))
        compiled, python = template.patched(), template.patched()
        fb.stamp_checksums(compiled, *template.checksum_fields, datasum)
        fb.stamp_checksums(compiled, *template.checksum_fields, datasum)  # stamping again gives the same
        with monkeypatch.context() as m:
            m.setattr(fb, "_stamp", None)
            fb.stamp_checksums(python, *template.checksum_fields, datasum)
        assert compiled == python
        assert fb.ones_complement_sum(compiled, datasum) == 0xFFFFFFFF  # the FITS checksum condition


def test_one_call_write_follows_umask_and_leaves_nothing_on_failure(cube, tmp_path, monkeypatch):
    if not block_rows.FILES:
        pytest.skip("the compiled accelerator is not built here")
    session, (cut,) = cutouts(cube, [(70, 60)])
    try:
        mask = os.umask(0)
        os.umask(mask)
        out = tmp_path / "new" / "ok.fits"  # a directory made on the way
        path = cut.tpf_parts(scratch=1, deferred=True).write(out)
        assert path == out and stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
        assert [p.name for p in out.parent.iterdir()] == ["ok.fits"]
        # the final name is a non-empty directory: the rename fails, the error names it, no temporary is left
        blocked = tmp_path / "blocked.fits"
        (blocked / "inside").mkdir(parents=True)
        with pytest.raises(OSError) as err:
            cut.tpf_parts(scratch=1, deferred=True).write(blocked)
        assert "blocked.fits" in str(err.value)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked.fits", "new"]
        # a temporary name already taken is not touched: another name is used
        taken = []
        real = tpf_table.write_rows_file

        def first_name_taken(tmp, final, *args):
            if not taken:
                taken.append(tmp)
                tmp.write_bytes(b"someone else's")
            return real(tmp, final, *args)

        monkeypatch.setattr(tpf_table, "write_rows_file", first_name_taken)
        again = cut.tpf_parts(scratch=1, deferred=True).write(tmp_path / "again.fits")
        assert again.read_bytes() == out.read_bytes() and taken[0].read_bytes() == b"someone else's"
    finally:
        session.close()


def test_pwrite_all_resumes_short_writes(monkeypatch, tmp_path):
    real = os.pwritev

    def short(fd, buffers, offset):  # the kernel may write less than asked: at most 5 bytes here
        return real(fd, [memoryview(b"".join(bytes(b) for b in buffers))[:5]], offset)

    monkeypatch.setattr(atomic.os, "pwritev", short)
    parts = [b"abc", np.arange(6, dtype=">i2"), memoryview(b"defghij"), b""]
    want = b"".join(bytes(memoryview(p).cast("B")) for p in parts)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        assert atomic.pwrite_all(fd, parts, 3) == len(want)
        assert atomic.pwrite_all(fd, parts, 3 + len(want), nbytes=len(want)) == len(want)
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"\0" * 3 + want + want


def test_fits_are_chunked_first_alone_then_doubling():
    assert _fit_chunks(0) == []
    assert _fit_chunks(1) == [(0, 1)]
    chunks = _fit_chunks(70)
    assert chunks[:6] == [(0, 1), (1, 3), (3, 7), (7, 15), (15, 31), (31, 47)]
    assert chunks[-1][1] == 70 and all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))


@pytest.mark.parametrize("compiled", [True, False])
def test_write_rows_puts_the_block_into_the_template_rows(monkeypatch, tmp_path, compiled):
    if compiled and not block_rows.COMPILED:
        pytest.skip("the compiled accelerator is not built here")
    if not compiled:
        monkeypatch.setattr(block_rows, "_write_table", None)
        monkeypatch.setattr(block_rows, "_rows_sum", None)
    rng = np.random.default_rng(9)
    ny, nx, nt = 3, 4, 23
    base = rng.integers(0, 2**32, size=(ny + 2, nx + 1, nt, 2), dtype=np.uint64).astype(">u4").view(">f4")
    block = base[1 : ny + 1, :nx]  # a strided view, as of a memory map
    template = np.zeros(
        nt, dtype=[("T", ">f8"), ("FLUX", ">f4", (ny, nx)), ("FLUX_ERR", ">f4", (ny, nx)), ("Q", ">i4")]
    )
    template["T"] = np.arange(nt) + 0.5
    template["Q"] = rng.integers(0, 100, nt)
    want = template.copy()
    want["FLUX"] = block[..., 0].transpose(2, 0, 1)
    want["FLUX_ERR"] = block[..., 1].transpose(2, 0, 1)
    _, want_sum = reference_rows(block, 0, nt)
    for chunk_rows in (1, 5, 23, 600):  # 600: more than one pwritev may take, clipped
        buffer = np.empty((min(chunk_rows, block_rows.MAX_CHUNK_ROWS), 2, ny, nx), dtype=">f4")
        path = tmp_path / f"t{chunk_rows}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            got = block_rows.write_rows(
                fd, 7, block, template, template.dtype.fields["FLUX"][1], buffer, chunk_rows
            )
        finally:
            os.close(fd)
        assert got == (want.nbytes, want_sum)
        assert path.read_bytes() == b"\0" * 7 + want.tobytes()


def test_compiled_write_rows_reports_the_os_error(tmp_path):
    if not block_rows.COMPILED:
        pytest.skip("the compiled accelerator is not built here")
    block = np.zeros((2, 2, 5, 2), dtype=">f4")
    template = np.zeros(5, dtype=[("FLUX", ">f4", (2, 2)), ("FLUX_ERR", ">f4", (2, 2))])
    fd = os.open(tmp_path / "ro", os.O_RDONLY | os.O_CREAT, 0o644)  # not open for writing: EBADF
    try:
        with pytest.raises(OSError):
            block_rows.write_rows(fd, 0, block, template, 0, np.empty((5, 2, 2, 2), ">f4"), 5)
    finally:
        os.close(fd)
