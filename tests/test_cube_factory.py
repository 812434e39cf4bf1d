"""Tests of skycut.tess.cube_factory: cube layout, table, refusals, update_cube, blocked builds, astrocut interchange,
crash safety and the memory bound. Small simulated FFIs (skycut.simulate) keep every test to seconds."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from servers import http_server, s3_server  # noqa: F401  (pytest fixtures)

from skycut.exceptions import InvalidInputError
from skycut.tess.cube_factory import MAX_BLOCK_BYTES, CubeFactory, plan_block_rows

SHAPE = (40, 36)  # (rows, columns) of the test FFIs
N_FFI = 6


@pytest.fixture(scope="module")
def ffis(tmp_path_factory) -> list[Path]:
    """Six small SPOC-like FFIs (sector 11, camera 1, CCD 1), in time order."""
    from skycut.simulate import make_tess_ffis

    out = tmp_path_factory.mktemp("ffis")
    return [Path(p) for p in make_tess_ffis(out, n_ffi=N_FFI, shape=SHAPE, seed=3).files]


@pytest.fixture(autouse=True)
def _fixed_date(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def _copy(ffis: list[Path], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, dest / p.name)) for p in ffis]


def _edit(path: Path, ext: int | tuple[int, ...], **cards) -> None:
    """Set (value) or delete (None) header cards of an FFI in place."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path, mode="update") as hdul:
            for e in ext if isinstance(ext, tuple) else (ext,):
                for key, value in cards.items():
                    if value is None:
                        hdul[e].header.remove(key, ignore_missing=True)
                    else:
                        hdul[e].header[key] = value


def _build(files, cube: Path, **kwargs) -> Path:
    strategy = kwargs.pop("strategy", "auto")
    factory_memory = kwargs.pop("factory_memory", 50)
    factory = CubeFactory(factory_memory, strategy=strategy)
    out = factory.make_cube([str(f) for f in files], str(cube), verbose=False, **kwargs)
    assert out == str(cube)
    return cube


@pytest.fixture(scope="module")
def cube(ffis, tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", "1700000000")
        return _build(ffis, tmp_path_factory.mktemp("cube") / "tess-s0011-1-1-cube.fits")


# ------------------------------------------------------------------------------------------------ layout
def test_layout_shape_dtype_and_offset(cube, ffis):
    with fits.open(cube) as hdul:
        assert len(hdul) == 3
        h1 = hdul[1].header
        assert (h1["BITPIX"], h1["NAXIS"], h1["NAXIS1"], h1["NAXIS2"], h1["NAXIS3"], h1["NAXIS4"]) == (
            -32,
            4,
            2,
            N_FFI,
            SHAPE[1],
            SHAPE[0],
        )
        offset = hdul.fileinfo(1)["datLoc"]
        n_primary_blocks = len(hdul[0].header.tostring()) // 2880
        assert offset == (n_primary_blocks + 1) * 2880
        if n_primary_blocks == 1:
            assert offset == 5760
        data = hdul[1].data
        assert data.shape == (*SHAPE, N_FFI, 2) and data.dtype == np.dtype(">f4")
    raw = np.fromfile(cube, dtype=">f4", count=SHAPE[0] * SHAPE[1] * N_FFI * 2, offset=offset)
    raw = raw.reshape(*SHAPE, N_FFI, 2)
    with fits.open(ffis[2]) as f:
        assert np.array_equal(raw[:, :, 2, 0], f[1].data)
        assert np.array_equal(raw[:, :, 2, 1], f[2].data)
    assert cube.stat().st_size % 2880 == 0


def test_primary_header(cube, ffis):
    first0, first1 = fits.getheader(ffis[0], 0), fits.getheader(ffis[0], 1)
    last1 = fits.getheader(ffis[-1], 1)
    h = fits.getheader(cube, 0)
    assert "CHECKSUM" not in h and "DATASUM" not in h
    assert h["ORIGIN"] == "STScI/MAST" and h["EXTNAME"] == "PRIMARY"
    assert h["DATE"] == "2023-11-14"  # from SOURCE_DATE_EPOCH=1700000000
    assert (h["CAMERA"], h["CCD"], h["SECTOR"]) == (first1["CAMERA"], first1["CCD"], 11)
    assert (h["TSTOP"], h["DATE-END"]) == (last1["TSTOP"], last1["DATE-END"])
    assert h["TSTART"] == first0["TSTART"] and h["DATE-OBS"] == first0["DATE-OBS"]
    assert h["FFIINDEX"] == first0["FFIINDEX"]


def test_time_order_from_shuffled_input(ffis, tmp_path):
    shuffled = list(ffis)
    random.Random(7).shuffle(shuffled)
    assert shuffled != list(ffis)
    cube = _build(shuffled, tmp_path / "c.fits")
    with fits.open(cube) as hdul:
        table = hdul[2].data
        assert list(table["FFI_FILE"]) == [p.name for p in ffis]
        assert np.all(np.diff(table["TSTART"]) > 0)
        for i, p in enumerate(ffis):
            with fits.open(p) as f:
                assert np.array_equal(hdul[1].data[:, :, i, 0], f[1].data)
                assert np.array_equal(hdul[1].data[:, :, i, 1], f[2].data)


def test_table_holds_every_ext1_keyword(cube, ffis):
    with fits.open(cube) as hdul:
        table = hdul[2].data
        assert hdul[2].header["EXTNAME"] == "FFI_HEADERS"
        for i, p in enumerate(ffis):
            h = fits.getheader(p, 1)
            for card in h.cards:
                if card.keyword in ("COMMENT", "HISTORY", ""):
                    continue
                cell = table[card.keyword][i]
                if isinstance(card.value, str):
                    assert cell == card.value.rstrip(), card.keyword
                elif isinstance(card.value, float):
                    assert cell == pytest.approx(card.value, rel=0, abs=0), card.keyword
                else:
                    assert cell == card.value, card.keyword
            assert table["FFI_FILE"][i] == p.name
        assert list(table["WCS_OK"]) == [True] * N_FFI


def test_long_strings_never_truncated(ffis, tmp_path):
    files = _copy(ffis, tmp_path / "in")
    long_name = files[-1].with_name("a_much_longer_file_name_than_the_others_" + files[-1].name)
    files[-1].rename(long_name)
    files[-1] = long_name
    long_value = "x" * 60
    _edit(files[-1], 1, EXTNAME=long_value)
    cube = _build(files, tmp_path / "c.fits")
    table = fits.getdata(cube, 2)
    assert table["FFI_FILE"][-1] == long_name.name
    assert table["EXTNAME"][-1] == long_value
    assert table["EXTNAME"][0] == fits.getheader(ffis[0], 1)["EXTNAME"]


def test_comment_and_history_cards(ffis, tmp_path):
    files = _copy(ffis, tmp_path / "in")
    with fits.open(files[0], mode="update") as hdul:
        hdul[1].header.add_comment("a comment card")
        hdul[1].header.add_history("a history card")
        hdul[1].header.add_history("another")
    cube = _build(files, tmp_path / "c.fits")
    names = fits.getdata(cube, 2).columns.names
    assert "COMMENT" not in names and "HISTORY" not in names
    assert fits.getdata(cube, 1).shape[2] == N_FFI


# ------------------------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize("key", ["SECTOR", "CAMERA", "CCD"])
def test_mixed_sector_camera_ccd_refused(ffis, tmp_path, key):
    files = _copy(ffis, tmp_path / "in")
    _edit(files[1], (0, 1), **{key: 3})
    with pytest.raises(InvalidInputError) as err:
        _build(files, tmp_path / "c.fits")
    message = str(err.value)
    assert files[1].name in message and f"{key.lower()} 3" in message.lower()
    assert not (tmp_path / "c.fits").exists()


def test_sector_argument_must_agree(ffis, tmp_path):
    with pytest.raises(InvalidInputError, match="sector=12"):
        _build(ffis, tmp_path / "c.fits", sector=12)
    cube = _build(ffis, tmp_path / "d.fits", sector=11)
    assert fits.getheader(cube)["SECTOR"] == 11


def test_duplicates_refused(ffis, tmp_path):
    with pytest.raises(InvalidInputError, match="duplicate") as err:
        _build([*ffis, ffis[2]], tmp_path / "c.fits")
    assert ffis[2].name in str(err.value)
    renamed = Path(shutil.copy(ffis[3], tmp_path / ("copy-" + ffis[3].name)))
    with pytest.raises(InvalidInputError, match="TSTART"):
        _build([*ffis, renamed], tmp_path / "c.fits")


def test_bad_input_names_the_file(ffis, tmp_path):
    with pytest.raises(InvalidInputError, match="nope.fits"):
        _build([*ffis, tmp_path / "nope.fits"], tmp_path / "c.fits")
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"not fits")
    with pytest.raises(InvalidInputError, match="junk.fits"):
        _build([*ffis, junk], tmp_path / "c.fits")
    with pytest.raises(InvalidInputError, match="file_list"):
        _build([], tmp_path / "c.fits")
    with pytest.raises(InvalidInputError, match="max_memory"):
        _build(ffis, tmp_path / "c.fits", max_memory=1e-9)


def test_bad_wcs_kept_but_never_selected(ffis, tmp_path):
    from astrocut import TessCubeCutout

    files = _copy(ffis, tmp_path / "in")
    middle = N_FFI // 2  # the row astrocut looks at first
    _edit(files[middle], 1, CRVAL1=None, CRVAL2=None, CD1_1=None, CD1_2=None, CD2_1=None, CD2_2=None)
    _edit(files[middle - 1], 1, CD1_1=0.0, CD1_2=0.0, CD2_1=0.0, CD2_2=0.0)  # singular matrix
    cube = _build(files, tmp_path / "c.fits")
    with fits.open(cube) as hdul:
        table = hdul[2].data
        assert list(table["WCS_OK"]) == [i not in (middle, middle - 1) for i in range(N_FFI)]
        assert table["CTYPE2"][middle] == "" and table["CTYPE2"][middle - 1] == ""
        with fits.open(files[middle]) as f:
            assert np.array_equal(hdul[1].data[:, :, middle, 0], f[1].data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs, header = TessCubeCutout.parse_table_wcs(table, return_header=True)
    assert header["WCS_OK"] and header["FFI_FILE"] not in (files[middle].name, files[middle - 1].name)


def test_no_usable_wcs_at_all_refused(ffis, tmp_path):
    files = _copy(ffis[:2], tmp_path / "in")
    for f in files:
        _edit(f, 1, CTYPE1=None, CTYPE2=None)
    with pytest.raises(InvalidInputError, match="usable WCS"):
        _build(files, tmp_path / "c.fits")


# ------------------------------------------------------------------------------------------------ blocks
def _same_cube(a: Path, b: Path) -> None:
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("strategy", ["direct", "scratch", "auto"])
def test_blocked_builds_identical_to_one_block(cube, ffis, tmp_path, strategy):
    factory = CubeFactory(strategy=strategy)
    out = tmp_path / "blocked.fits"
    factory.make_cube([str(f) for f in reversed(ffis)], str(out), max_memory=5e-5, verbose=False)
    assert factory._num_blocks >= 4
    assert factory._strategy_used == ("scratch" if strategy == "scratch" else factory._strategy_used)
    _same_cube(out, cube)
    assert not list(tmp_path.glob(".*"))  # no temporary or scratch file left behind


@pytest.mark.parametrize("strategy", ["direct", "scratch"])
@pytest.mark.parametrize("max_memory", [50, 5e-4])
def test_cache_slabs_within_blocks(cube, ffis, tmp_path, monkeypatch, strategy, max_memory):
    import skycut.tess.cube_factory as cf

    monkeypatch.setattr(cf, "slab_rows", lambda cols, n, block_rows, target=0: min(block_rows, 3))
    factory = CubeFactory(strategy=strategy)
    factory.make_cube([str(p) for p in ffis], str(tmp_path / "c.fits"), max_memory=max_memory, verbose=False)
    assert factory._block_size > 3  # several slabs per block, the last one partial
    _same_cube(tmp_path / "c.fits", cube)


@pytest.mark.parametrize("direct_io", [True, False])
def test_direct_and_buffered_writes_identical(cube, ffis, tmp_path, direct_io):
    factory = CubeFactory(direct_io=direct_io)
    factory.make_cube([str(p) for p in ffis], str(tmp_path / "c.fits"), max_memory=5e-5, verbose=False)
    assert factory._num_blocks > 1
    if not direct_io:
        assert factory._writer.direct_bytes == 0
    elif factory._writer.direct_bytes == 0:
        pytest.skip(f"the file system of {tmp_path} refuses O_DIRECT")
    _same_cube(tmp_path / "c.fits", cube)


def test_auto_strategy_reads_local_plain_ffis_directly(ffis, tmp_path):
    f = CubeFactory()
    f.make_cube([str(p) for p in ffis], str(tmp_path / "a.fits"), max_memory=5e-5, verbose=False)
    assert f._num_blocks >= 4 and f._strategy_used == "direct"
    f.make_cube([str(p) for p in ffis], str(tmp_path / "b.fits"), verbose=False)
    assert (f._num_blocks, f._strategy_used) == (1, "direct")


def test_constructor_max_memory_is_honoured(ffis, tmp_path, cube):
    factory = CubeFactory(max_memory=5e-5)
    factory.make_cube([str(p) for p in ffis], str(tmp_path / "c.fits"), verbose=False)
    assert factory._num_blocks >= 4
    factory.make_cube([str(p) for p in ffis], str(tmp_path / "d.fits"), max_memory=1, verbose=False)
    assert factory._num_blocks == 1
    _same_cube(tmp_path / "c.fits", cube)


def test_plan_block_rows_respects_memory():
    rows = plan_block_rows((2078, 2136), 40, 0.3)
    assert 2 * rows * 2136 * 40 * 8 <= 0.3e9
    assert plan_block_rows((2078, 2136), 40, 50) * 2136 * 40 * 8 <= MAX_BLOCK_BYTES
    assert plan_block_rows((10, 10), 2, 50) == 10


def test_deterministic_and_progress_logged(cube, ffis, tmp_path, caplog):
    caplog.set_level("INFO", logger="skycut")
    CubeFactory().make_cube([str(p) for p in ffis], str(tmp_path / "again.fits"), max_memory=5e-5)
    _same_cube(tmp_path / "again.fits", cube)
    lines = [r.getMessage() for r in caplog.records]
    assert any("MB/s" in line and "left" in line for line in lines)


# ------------------------------------------------------------------------------------------------ update
def test_update_cube_adds_newer_ffis(ffis, tmp_path, cube):
    part = _build(ffis[:3], tmp_path / "part.fits")
    factory = CubeFactory()
    factory.update_cube([str(p) for p in ffis[3:]], str(part), max_memory=5e-5, verbose=False)
    assert factory._num_blocks > 1
    with fits.open(part) as up, fits.open(cube) as full:
        assert up[1].data.dtype == np.dtype(">f4")
        assert np.array_equal(up[1].data, full[1].data)
        assert list(up[2].data["FFI_FILE"]) == [p.name for p in ffis]
        for name in full[2].columns.names:
            assert np.array_equal(up[2].data[name], full[2].data[name]), name
        history = [str(c) for c in up[0].header["HISTORY"]]
        assert any(h.startswith("Updated on") for h in history)
        assert f"First image is {ffis[3].name}." in history
        assert up[0].header["TSTOP"] == full[0].header["TSTOP"]


def test_update_cube_interleaved_times_keep_order(ffis, tmp_path, cube):
    part = _build(ffis[0::2], tmp_path / "part.fits")
    CubeFactory().update_cube([str(p) for p in ffis[1::2]], str(part), verbose=False)
    with fits.open(part) as up, fits.open(cube) as full:
        assert np.array_equal(up[1].data, full[1].data)
        assert list(up[2].data["FFI_FILE"]) == [p.name for p in ffis]


def test_update_cube_refusals(ffis, tmp_path):
    part = _build(ffis[:3], tmp_path / "part.fits")
    before = part.read_bytes()
    with pytest.raises(InvalidInputError, match="already in cube_file") as err:
        CubeFactory().update_cube([str(ffis[2]), str(ffis[4])], str(part), verbose=False)
    assert ffis[2].name in str(err.value)
    other = _copy([ffis[4]], tmp_path / "other")
    _edit(other[0], (0, 1), CAMERA=2)
    with pytest.raises(InvalidInputError, match="CAMERA"):
        CubeFactory().update_cube([str(other[0])], str(part), verbose=False)
    with pytest.raises(InvalidInputError, match="does not exist"):
        CubeFactory().update_cube([str(ffis[4])], str(tmp_path / "missing.fits"), verbose=False)
    assert part.read_bytes() == before


# ------------------------------------------------------------------------------------------------ astrocut
def _cutout_coord(ffi: Path, x: float, y: float) -> str:
    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = WCS(fits.getheader(ffi, 1)).pixel_to_world(x, y)
    return f"{c.ra.deg} {c.dec.deg}"


@pytest.fixture(scope="module")
def astrocut_cube(ffis, tmp_path_factory) -> Path:
    from astrocut import CubeFactory as AstrocutFactory

    out = tmp_path_factory.mktemp("ac") / "tess-s0011-1-1-cube.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        AstrocutFactory().make_cube([str(p) for p in ffis], str(out), verbose=False)
    return out


def test_cube_data_identical_to_astrocut(cube, astrocut_cube):
    with fits.open(cube) as ours, fits.open(astrocut_cube) as theirs:
        assert ours[1].data.shape == theirs[1].data.shape
        assert np.array_equal(ours[1].data, theirs[1].data)
        assert list(ours[1].header.items()) == list(theirs[1].header.items())
        for name in theirs[2].columns.names:
            a, b = ours[2].data[name], theirs[2].data[name]
            if a.dtype.kind == "b":
                b = b.astype(bool)
            assert np.array_equal(a, b), name


def test_astrocut_cuts_skycut_cube_identically(cube, astrocut_cube, ffis):
    from astrocut import TessCubeCutout

    coord = _cutout_coord(ffis[0], SHAPE[1] * 0.4, SHAPE[0] * 0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = TessCubeCutout(str(cube), coord, cutout_size=7).cutouts[0]
        theirs = TessCubeCutout(str(astrocut_cube), coord, cutout_size=7).cutouts[0]
    assert ours.data.shape == (N_FFI, 7, 7)
    assert np.isfinite(ours.data).any()
    assert np.array_equal(ours.data, theirs.data, equal_nan=True)
    assert np.array_equal(ours.uncertainty, theirs.uncertainty, equal_nan=True)
    assert np.array_equal(ours.cutout_lims, theirs.cutout_lims)


def test_skycut_cuts_astrocut_cube_identically(cube, astrocut_cube, ffis):
    cube_cutout = pytest.importorskip("skycut.tess.cube_cutout")
    coord = _cutout_coord(ffis[0], SHAPE[1] * 0.4, SHAPE[0] * 0.6)
    ours = cube_cutout.TessCubeCutout(str(cube), coord, cutout_size=7).cutouts[0]
    theirs = cube_cutout.TessCubeCutout(str(astrocut_cube), coord, cutout_size=7).cutouts[0]
    assert np.array_equal(np.asarray(ours.data), np.asarray(theirs.data), equal_nan=True)


def test_update_of_an_astrocut_cube_stays_float32(ffis, tmp_path, cube):
    from astrocut import CubeFactory as AstrocutFactory

    part = tmp_path / "part.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        AstrocutFactory().make_cube([str(p) for p in ffis[:4]], str(part), verbose=False)
    CubeFactory().update_cube([str(p) for p in ffis[4:]], str(part), verbose=False)
    with fits.open(part) as up, fits.open(cube) as full:
        assert up[1].header["BITPIX"] == -32
        assert np.array_equal(up[1].data, full[1].data)
        assert list(up[2].data["FFI_FILE"]) == [p.name for p in ffis]
        assert list(up[2].data["WCS_OK"]) == [True] * N_FFI


def test_update_of_an_astrocut_float64_cube_returns_to_float32(ffis, tmp_path, cube):
    from astrocut import CubeFactory as AstrocutFactory

    part = tmp_path / "part.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        AstrocutFactory().make_cube([str(p) for p in ffis[:3]], str(part), verbose=False)
        AstrocutFactory().update_cube([str(ffis[3])], str(part), verbose=False)
    assert fits.getheader(part, 1)["BITPIX"] == -64  # astrocut's update widens the cube
    CubeFactory().update_cube([str(p) for p in ffis[4:]], str(part), max_memory=5e-5, verbose=False)
    with fits.open(part) as up, fits.open(cube) as full:
        assert up[1].header["BITPIX"] == -32
        assert np.array_equal(up[1].data, full[1].data)
        assert list(up[2].data["FFI_FILE"]) == [p.name for p in ffis]


# ------------------------------------------------------------------------------------------------ crash safety
_SLOW_BUILD = textwrap.dedent("""
    import sys, time
    import skycut.tess.cube_factory as cf
    import skycut.tess.cube_io as cio
    real = cio.pwrite_all
    def slow(fd, data, offset):
        real(fd, data, offset)
        print("WROTE", flush=True)
        time.sleep(0.05)
    cf.pwrite_all = cio.pwrite_all = slow
    files, out, strategy = sys.argv[1:-2], sys.argv[-2], sys.argv[-1]
    cf.CubeFactory(strategy=strategy).make_cube(files, out, max_memory=5e-5, verbose=False)
""")


@pytest.mark.parametrize("strategy", ["direct", "scratch"])
def test_kill_9_mid_build_leaves_nothing_and_rerun_matches(ffis, tmp_path, cube, strategy):
    out = tmp_path / "killed.fits"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_BUILD, *map(str, ffis), str(out), strategy],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
    )
    seen = 0
    for line in proc.stdout:
        seen += line.startswith("WROTE")
        if seen >= 5:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    left = {p.name.rsplit(".", 1)[-1] for p in tmp_path.glob(".killed.fits.*")}
    assert left == ({"part", "h5"} if strategy == "scratch" else {"part"})  # what the killed build left
    _build(ffis, out, max_memory=5e-5)
    _same_cube(out, cube)
    assert not list(tmp_path.glob(".killed.fits.*"))  # stale partial removed by the rerun


# ------------------------------------------------------------------------------------------------ memory
_RSS_BUILD = textwrap.dedent("""
    import sys
    from skycut.tess.cube_factory import CubeFactory
    files, out, mem = sys.argv[1:-2], sys.argv[-2], float(sys.argv[-1])
    f = CubeFactory(strategy="direct" if "direct" in out else "scratch")
    if "update" in out:
        f.update_cube(files, out, max_memory=mem, verbose=False)
    else:
        f.make_cube(files, out, max_memory=mem, verbose=False)
    # VmHWM: this address space's peak. ru_maxrss would include the pytest process's RSS at fork time,
    # which Linux keeps across exec.
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(hwm * 1024, f._num_blocks)
""")


@pytest.fixture(scope="module")
def big_ffis(tmp_path_factory) -> list[Path]:
    """12 plain FFIs of 1024x2048 pixels: a 200 MB cube, bigger than the memory bound under test."""
    out = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(1)
    base = rng.standard_normal((1024, 2048), dtype=np.float32)
    files = []
    for i in range(12):
        primary = fits.PrimaryHDU(header=fits.Header([("SECTOR", 5), ("CAMERA", 2), ("CCD", 3)]))
        header = fits.Header(
            [
                ("TSTART", 1000.0 + i),
                ("TSTOP", 1000.02 + i),
                ("CTYPE1", "RA---TAN-SIP"),
                ("CTYPE2", "DEC--TAN-SIP"),
                ("CRVAL1", 10.0),
                ("CRVAL2", 20.0),
                ("CRPIX1", 1.0),
                ("CRPIX2", 1.0),
                ("CD1_1", 0.006),
                ("CD2_2", 0.006),
            ]
        )
        hdul = fits.HDUList([primary, fits.ImageHDU(base + i, header), fits.ImageHDU(base * 0 + i, header)])
        files.append(out / f"ffi-{i:02d}.fits")
        hdul.writeto(files[-1])
    return files


@pytest.mark.parametrize("strategy", ["direct", "scratch", "update-direct"])
def test_peak_rss_bounded_by_max_memory(big_ffis, tmp_path, strategy):
    max_memory = 0.06  # GB; the cube is 201 MB
    out = tmp_path / f"{strategy}.fits"
    inputs = big_ffis
    if strategy.startswith("update"):  # a 6-FFI cube updated with 6 more, in a fresh process
        _build(big_ffis[:6], out)
        inputs = big_ffis[6:]
    run = subprocess.run(
        [sys.executable, "-c", _RSS_BUILD, *map(str, inputs), str(out), str(max_memory)],
        capture_output=True,
        text=True,
        check=True,
    )
    peak, n_blocks = (int(v) for v in run.stdout.split())
    assert int(n_blocks) > 1
    cube_bytes = 1024 * 2048 * 12 * 8
    assert peak < max_memory * 1e9 + 300e6
    assert peak < cube_bytes + 150e6  # astrocut would hold the whole cube (twice)
    with fits.open(out) as hdul, fits.open(big_ffis[7]) as f:
        assert np.array_equal(hdul[1].section[500:520, :, 7, 0], f[1].data[500:520])
        assert np.array_equal(hdul[1].section[1000:1024, :, 7, 1], f[2].data[1000:1024])


# ------------------------------------------------------------------------------------------------ other inputs
def _compressed_copies(ffis: list[Path], dest: Path) -> list[Path]:
    """Lossless tile-compressed (GZIP_2, no quantization) copies of the FFIs, same names."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for p in ffis:
        with fits.open(p) as f:
            hdus = [fits.PrimaryHDU(header=f[0].header)]
            for ext in (1, 2):
                hdus.append(
                    fits.CompImageHDU(
                        f[ext].data,
                        f[ext].header,
                        compression_type="GZIP_2",
                        quantize_level=0.0,
                        tile_shape=(8, SHAPE[1]),
                    )
                )
            fits.HDUList(hdus).writeto(dest / p.name)
        out.append(dest / p.name)
    return out


@pytest.mark.parametrize("max_memory", [50, 5e-5])
def test_tile_compressed_inputs(ffis, cube, tmp_path, max_memory):
    files = _compressed_copies(ffis, tmp_path / "fz")
    factory = CubeFactory()
    out = tmp_path / "c.fits"
    factory.make_cube([str(f) for f in files], str(out), max_memory=max_memory, verbose=False)
    assert factory._strategy_used == ("whole" if max_memory == 50 else "scratch")
    with fits.open(out) as ours, fits.open(cube) as ref:
        assert np.array_equal(ours[1].data, ref[1].data)
        assert list(ours[2].data["FFI_FILE"]) == list(ref[2].data["FFI_FILE"])
    with pytest.raises(InvalidInputError, match="direct"):
        CubeFactory(strategy="direct").make_cube(
            [str(f) for f in files], str(tmp_path / "d.fits"), verbose=False
        )


def test_gzip_inputs(ffis, cube, tmp_path):
    """Whole-file gzip FFIs (.fits.gz) build the same cube: their offsets are the decompressed stream's, so
    neither the byte-level header scan nor the truncation check may read them raw."""
    import gzip

    files = []
    for f in ffis:
        gz = tmp_path / (f.name + ".gz")
        with open(f, "rb") as src, gzip.open(gz, "wb") as dst:
            shutil.copyfileobj(src, dst)
        files.append(gz)
    out = tmp_path / "c.fits"
    CubeFactory().make_cube([str(f) for f in files], str(out), verbose=False)
    with fits.open(out) as ours, fits.open(cube) as ref:
        assert np.array_equal(ours[1].data, ref[1].data)


def test_remote_inputs_over_http_and_s3(ffis, cube, tmp_path, http_server, s3_server):  # noqa: F811
    urls = [http_server.add(p) for p in ffis]
    factory = CubeFactory()
    factory.make_cube(urls, str(tmp_path / "http.fits"), max_memory=5e-5, verbose=False)
    assert factory._strategy_used == "scratch" and factory._num_blocks >= 4
    assert np.array_equal(fits.getdata(tmp_path / "http.fits", 1), fits.getdata(cube, 1))
    uris = [s3_server.upload(p) for p in ffis]
    s3 = CubeFactory(fsspec_kwargs=s3_server.fsspec_kwargs)
    s3.make_cube(uris, str(tmp_path / "s3.fits"), verbose=False)
    _same_cube(tmp_path / "s3.fits", cube)


# ------------------------------------------------------------------------------------------------ header scan
def _astropy_scan(path: Path):
    from skycut.tess import cube_io

    def refuse(*args):
        raise cube_io._Unusual("forced")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cube_io, "_scan_fast", refuse)
        return cube_io.scan_ffi(path)


@pytest.mark.parametrize("continue_card", [False, True])
def test_fast_header_scan_matches_astropy(ffis, tmp_path, continue_card):
    from skycut.tess import cube_io

    files = _copy(ffis[:1], tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(files[0], mode="update") as hdul:
            h = hdul[1].header
            h["QUOTED"] = ("it's 'quoted'  ", "a comment / with slash")
            h["NOCOMM"] = 7
            h["UNDEF"] = (None, "undefined value")
            h["NEGFLT"] = -1.25e-12
            h.append(fits.Card.fromstring("DEXP    =               1.5D+03 / D exponent"))
            h["SLASHY"] = "a/b"
            h.add_comment("commentary")
            if continue_card:
                h["LONGSTR"] = "y" * 100
    fast_failed = False
    try:
        cube_io._scan_fast(str(files[0]), files[0].name)
    except cube_io._Unusual:
        fast_failed = True
    assert fast_failed == continue_card  # CONTINUE cards are left to astropy
    ref = _astropy_scan(files[0])
    info = cube_io.scan_ffi(files[0])
    assert info.values == ref.values and info.comments == ref.comments
    assert {k: type(v) for k, v in info.values.items()} == {k: type(v) for k, v in ref.values.items()}
    assert (info.offsets, info.shape, info.tstart, info.dtype) == (
        ref.offsets,
        ref.shape,
        ref.tstart,
        ref.dtype,
    )
    assert info.values["QUOTED"] == "it's 'quoted'" and info.values["DEXP"] == 1500.0
    assert "UNDEF" not in info.values and info.comments["UNDEF"] == "undefined value"
    if continue_card:
        assert info.values["LONGSTR"] == "y" * 100
