"""The astropy-free fast path of ``fits_cut`` (skycut.image.fits_fast) against the astropy path.

Each case runs ``fits_cut`` twice, once with the fast path (asserting it ran) and once with it switched off,
and compares the files: names, data (dtype, NaN positions), header keywords and values (WCS keywords excepted:
the two WCSs must give the same sky positions), valid checksums. Unsupported inputs must take the fallback.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

import skycut
from skycut.image import fits_fast
from skycut.image.fits_helpers import _WCS_KEY

IGNORED = {"CHECKSUM"}


def _run(fast: bool, out: Path, monkeypatch, *args, **kwargs) -> list[Path]:
    monkeypatch.setattr(fits_fast, "ENABLED", fast)
    out.mkdir(parents=True, exist_ok=True)
    before = dict(fits_fast.STATS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = skycut.fits_cut(*args, output_dir=str(out), **kwargs)
    if fast:
        assert fits_fast.STATS["fast"] == before["fast"] + 1, "the fast path did not run"
    paths = result if isinstance(result, list) else [result]
    return [Path(p) for p in paths]


def _sky(header: fits.Header, nx: int, ny: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = WCS(header, relax=True)
    xs = np.array([0, nx - 1, 0, nx - 1, (nx - 1) / 2])
    ys = np.array([0, 0, ny - 1, ny - 1, (ny - 1) / 2])
    return np.array(w.all_pix2world(xs, ys, 0))


def _open(path: Path) -> fits.HDUList:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an invalid CHECKSUM/DATASUM warns
        hdul = fits.open(path, checksum=True)
        for hdu in hdul:
            hdu.data  # noqa: B018 - DATASUM is verified when the data are read
    return hdul


def compare(fast: list[Path], slow: list[Path]) -> None:
    assert [p.name for p in fast] == [p.name for p in slow]
    for pf, ps in zip(fast, slow, strict=True):
        with _open(pf) as hf, _open(ps) as hs:
            assert len(hf) == len(hs)
            for a, b in zip(hf, hs, strict=True):
                ka = {k for k in a.header if k and not _WCS_KEY.match(k)} - IGNORED
                kb = {k for k in b.header if k and not _WCS_KEY.match(k)} - IGNORED
                assert ka == kb, ka ^ kb
                for key in ka - {"COMMENT", "HISTORY"}:
                    assert a.header[key] == b.header[key], key
                assert list(a.header.get("HISTORY", [])) == list(b.header.get("HISTORY", []))
                if b.data is None:
                    assert a.data is None
                    continue
                assert a.data.dtype == b.data.dtype
                np.testing.assert_array_equal(a.data, b.data)  # NaN positions must match too
                ny, nx = b.data.shape
                sa, sb = _sky(a.header, nx, ny), _sky(b.header, nx, ny)
                dra = (sa[0] - sb[0] + 180.0) % 360.0 - 180.0
                assert np.max(np.abs(dra)) < 1e-9 and np.max(np.abs(sa[1] - sb[1])) < 1e-9


def both(tmp_path: Path, monkeypatch, *args, **kwargs) -> list[Path]:
    fast = _run(True, tmp_path / "fast", monkeypatch, *args, **kwargs)
    slow = _run(False, tmp_path / "slow", monkeypatch, *args, **kwargs)
    compare(fast, slow)
    return fast


def _pixel_to_radec(path: Path, ext: int, x: float, y: float) -> tuple[float, float]:
    with fits.open(path) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ra, dec = WCS(hdul[ext].header).all_pix2world(x, y, 0)
    return float(ra), float(dec)


# ------------------------------------------------------------------------------------------ equivalence


@pytest.mark.parametrize("size", [5, 6, [7, 4], [200, 300], 1, 12.0, (3, 8)])
def test_hst_sizes(sim_hst, tmp_path, monkeypatch, size):
    path = sim_hst.files[0]
    ra, dec = _pixel_to_radec(path, 1, 123.3, 87.8)
    both(tmp_path, monkeypatch, str(path), f"{ra} {dec}", size)


@pytest.mark.parametrize("extension", [None, "all", 1, 2, "SCI", "wht", [2, 1], -1])
def test_hst_extensions_and_coordinates(sim_hst, tmp_path, monkeypatch, extension):
    path = sim_hst.files[1]
    coords = [list(_pixel_to_radec(path, 1, x, y)) for x, y in ((10.2, 20.7), (150.0, 150.0), (290.5, 3.1))]
    both(tmp_path, monkeypatch, str(path), coords, [9, 6], extension=extension)


def test_pixel_centred_targets_odd_and_even(sim_hst, tmp_path, monkeypatch):
    path = sim_hst.files[0]
    for size in (5, 6):
        ra, dec = _pixel_to_radec(path, 1, 100.0, 200.0)
        both(tmp_path / str(size), monkeypatch, str(path), [ra, dec], size)


def test_several_files_single_and_separate_outfiles(sim_hst, tmp_path, monkeypatch):
    files = [str(f) for f in sim_hst.files[:4]]
    ra, dec = sim_hst.truth["center"]
    coord = SkyCoord(ra, dec, unit="deg")
    for single in (True, False):
        out = both(
            tmp_path / str(single), monkeypatch, files, coord, 11, single_outfile=single, cutout_prefix="pre"
        )
        assert len(out) == (1 if single else len(files))


def test_partly_off_the_image_nan_padding(sim_hst, tmp_path, monkeypatch):
    path = sim_hst.files[0]
    for x, y in ((-3.2, 5.0), (297.0, 298.6), (150.0, -10.4)):
        ra, dec = _pixel_to_radec(path, 1, x, y)
        out = both(tmp_path / f"{x}_{y}", monkeypatch, str(path), f"{ra}, {dec}", [25, 30], extension=1)
        with fits.open(out[0]) as hdul:
            assert np.isnan(hdul[1].data).any()


@pytest.mark.parametrize("method", ["round", "ceil", "floor"])
def test_rounding_methods_and_fill_value(sim_hst, tmp_path, monkeypatch, method):
    path = sim_hst.files[0]
    ra, dec = _pixel_to_radec(path, 1, 2.5, 40.5)
    both(
        tmp_path, monkeypatch, str(path), f"{ra} {dec}", [8, 7], limit_rounding_method=method, fill_value=-1.5
    )


def test_tess_ffi_tan_sip(sim_tess, tmp_path, monkeypatch):
    path = sim_tess.files[0]
    # positions clear of the box's rounding boundaries (x - nx/2 or y - ny/2 a half-integer): astropy's SIP
    # iteration stops up to 1e-4 px from the exact inverse, so nearer than that the fast path must fall back
    coords = [list(_pixel_to_radec(path, 1, x, y)) for x, y in ((70.3, 60.2), (3.3, 117.9), (138.6, 1.2))]
    both(tmp_path / "one", monkeypatch, str(path), coords, [10, 15], extension=1)
    both(
        tmp_path / "all",
        monkeypatch,
        [str(f) for f in sim_tess.files[:3]],
        coords[0],
        21,
        single_outfile=False,
    )


def test_tess_target_on_a_rounding_boundary_falls_back(sim_tess, tmp_path, monkeypatch):
    path = sim_tess.files[0]
    coord = list(
        _pixel_to_radec(path, 1, 70.0, 60.0)
    )  # y - 15/2 = 52.5: the box depends on astropy's last digits
    before = dict(fits_fast.STATS)
    slow = _run(False, tmp_path / "slow", monkeypatch, str(path), coord, [10, 15], extension=1)
    monkeypatch.setattr(fits_fast, "ENABLED", True)
    out = tmp_path / "auto"
    out.mkdir()
    result = skycut.fits_cut(str(path), coord, [10, 15], extension=1, output_dir=str(out))
    assert fits_fast.STATS["fallback"] == before["fallback"] + 1 and fits_fast.STATS["fast"] == before["fast"]
    compare([Path(result)], slow)


def _int_copy(src: Path, dst: Path, dtype: str, primary: bool = False) -> Path:
    with fits.open(src) as hdul:
        header = hdul[1].header.copy()
        ny, nx = hdul[1].data.shape
        data = (np.arange(ny * nx).reshape(ny, nx) % 30000 + 1).astype(dtype)  # no NaN, no zeros
    for key in ("CHECKSUM", "DATASUM"):
        header.remove(key, ignore_missing=True)
    if primary:
        header.remove("EXTNAME", ignore_missing=True)
        header.remove("EXTVER", ignore_missing=True)
        hdul = fits.HDUList([fits.PrimaryHDU(data=data, header=header)])
    else:
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data=data, header=header)])
    hdul.writeto(dst)
    return dst


@pytest.mark.parametrize("dtype", ["int16", "int32", "float64"])
def test_integer_and_double_images(sim_hst, tmp_path, monkeypatch, dtype):
    path = _int_copy(sim_hst.files[0], tmp_path / f"img_{dtype}.fits", dtype)
    inside = _pixel_to_radec(path, 1, 100.0, 100.0)
    edge = _pixel_to_radec(path, 1, 1.0, 100.0)
    both(tmp_path / "in", monkeypatch, str(path), list(inside), 9)  # integer dtype kept
    out = both(tmp_path / "edge", monkeypatch, str(path), list(edge), 9)  # NaN padding -> float
    with fits.open(out[0]) as hdul:
        assert hdul[1].data.dtype.kind == "f"
    both(tmp_path / "zero", monkeypatch, str(path), list(edge), 9, fill_value=0)


def test_fk5_j2000_image_takes_the_fast_path(sim_hst, tmp_path, monkeypatch):
    """FK5 (equinox J2000) differs from ICRS by the ~25 mas frame bias: TanSip applies it as astropy does."""
    path = _edited(sim_hst.files[0], tmp_path / "fk5.fits", RADESYS="FK5", EQUINOX=2000.0)
    coords = [list(_pixel_to_radec(path, 1, x, y)) for x, y in ((150.2, 149.7), (20.4, 280.1))]
    both(tmp_path, monkeypatch, str(path), coords, [12, 7])


def test_primary_image_without_extname_and_extra_keywords(sim_hst, tmp_path, monkeypatch):
    path = _int_copy(sim_hst.files[0], tmp_path / "prim.fits", "float32", primary=True)
    with fits.open(path, mode="update") as hdul:
        h = hdul[0].header
        h["LTV1"] = 10.0
        h["CTYPE1A"], h["CTYPE2A"] = "RA---TAN", "DEC--TAN"
        h["CRPIX1A"], h["CRPIX2A"] = 11.5, 12
        h["CRVAL1A"], h["CRVAL2A"] = 211.0, 53.0
        h["CRVAL1P"] = 5.0
        h["DATE-END"] = "2021-03-04T07:08:09.5"
        h["DATE-BEG"] = "2021-03-04"
        h["HISTORY"] = "made for a test"
        h["COMMENT"] = "a comment"
        h["FILENAME"] = "original_name.fits"
    ra, dec = _pixel_to_radec(path, 0, 40.0, 50.0)
    both(tmp_path, monkeypatch, str(path), f"{ra} {dec}", 10)


# ------------------------------------------------------------------------------------------ fallbacks


def _fell_back(caplog, reason: str, *args, dispatched: bool = True, **kwargs) -> None:
    """Run fits_cut with the fast path enabled and assert it fell back (for ``reason``, if dispatched)."""
    fits_fast.ENABLED = True
    before = dict(fits_fast.STATS)
    caplog.clear()
    with warnings.catch_warnings(), caplog.at_level(logging.DEBUG, logger="skycut.image.fits_fast"):
        warnings.simplefilter("ignore")
        try:
            skycut.fits_cut(*args, **kwargs)
        except ValueError:  # InvalidInputError/InvalidQueryError from the astropy path
            pass
    assert fits_fast.STATS["fast"] == before["fast"]
    if dispatched:
        assert fits_fast.STATS["fallback"] == before["fallback"] + 1
        messages = " ".join(r.getMessage() for r in caplog.records if r.name == "skycut.image.fits_fast")
        assert "astropy path" in messages and reason.lower() in messages.lower(), messages


def _edited(src: Path, dst: Path, ext: int = 1, **cards) -> Path:
    shutil.copy(src, dst)
    with fits.open(dst, mode="update") as hdul:
        for key, value in cards.items():
            if value is None:
                del hdul[ext].header[key]
            else:
                hdul[ext].header[key] = value
    return dst


def test_unsupported_inputs_fall_back(sim_hst, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(fits_fast, "ENABLED", True)
    src = Path(sim_hst.files[0])
    ra, dec = _pixel_to_radec(src, 1, 150.0, 150.0)
    coord = f"{ra} {dec}"
    out = {"output_dir": str(tmp_path / "out")}
    gz = tmp_path / "img.fits.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    _fell_back(caplog, "compressed", str(gz), coord, 5, **out)
    with fits.open(src) as hdul:
        comp = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(hdul[1].data, hdul[1].header)])
        comp.writeto(tmp_path / "comp.fits")
    _fell_back(caplog, "tile-compressed", str(tmp_path / "comp.fits"), coord, 5, **out)
    scaled = _int_copy(src, tmp_path / "scaled.fits", "int16")
    with fits.open(scaled, mode="update") as hdul:
        hdul[1].header["BSCALE"] = 2.0
    _fell_back(caplog, "scaled data", str(scaled), coord, 5, **out)
    cases = {
        "sin": ({"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN"}, "projection"),
        "tpv": ({"CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV", "PV1_1": 1.0}, "PV1_1"),
        "pv": ({"PV2_1": 0.001}, "PV2_1"),
        "fk5": ({"RADESYS": "FK5", "EQUINOX": 1975.0}, "FK5"),
        "equinox": ({"RADESYS": None, "EQUINOX": 1950.0}, "not supported by TanSip"),
        "dp": ({"DP1": "EXTVER: 1"}, "DP1"),
        "asinh": ({"BSOFTEN": 1.0, "BOFFSET": 0.0}, "asinh"),
        "mjd": ({"MJD-END": 59000.0}, "MJD-END"),
        "crota": ({"CROTA2": 0.0}, "CROTA"),
    }
    for name, (cards, reason) in cases.items():
        path = _edited(src, tmp_path / f"{name}.fits", **cards)
        _fell_back(caplog, reason, str(path), coord, 5, **out)
    _fell_back(caplog, "angular cutout size", str(src), coord, 5 * u.arcsec, **out)  # angular size
    _fell_back(caplog, "angular cutout size", str(src), coord, "5 arcsec", **out)
    far = _pixel_to_radec(src, 1, 1000.0, 1000.0)
    _fell_back(caplog, "misses", str(src), list(far), 5, **out)  # the astropy path reports the miss
    _fell_back(caplog, "", str(src), coord, 5, verbose=True, dispatched=False, **out)
    assert (
        fits_fast.try_fits_cut(
            "https://example.invalid/x.fits",
            coord,
            5,
            extension=None,
            single_outfile=True,
            cutout_prefix="c",
            output_dir=str(tmp_path),
            fill_value=np.nan,
            limit_rounding_method="round",
            allow_empty=False,
        )
        is None
    )


def test_memory_only_uses_astropy(sim_hst, monkeypatch):
    ra, dec = _pixel_to_radec(sim_hst.files[0], 1, 150.0, 150.0)
    before = dict(fits_fast.STATS)
    hduls = skycut.fits_cut(str(sim_hst.files[0]), f"{ra} {dec}", 5, memory_only=True)
    assert isinstance(hduls[0], fits.HDUList) and fits_fast.STATS == before


# ------------------------------------------------------------------------------------------ pixel positions


@pytest.mark.parametrize("which", ["tess", "hst"])
def test_world_to_pixel_matches_astropy_within_the_margin(sim_tess, sim_hst, which):
    """The fast path's pixel positions agree with astropy's all_world2pix far inside the safety margin that
    decides whether a cutout box is the same for both."""
    from skycut.image.fits_fast import _Fallback, _image, scan_headers, world_to_pixel

    path, ext, span = (
        (str(sim_tess.files[0]), 1, (-20, 160)) if which == "tess" else (str(sim_hst.files[0]), 1, (-20, 320))
    )
    img = _image(path, ext, scan_headers(path)[ext])
    margin = fits_fast.margin_px(min(img.wcs.pixel_scales()), img.wcs.a is not None)
    with fits.open(path) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = WCS(hdul[ext].header)
    rng = np.random.default_rng(1)
    xy = rng.uniform(*span, size=(300, 2))
    ra, dec = w.all_pix2world(xy[:, 0], xy[:, 1], 0)
    worst, done = 0.0, 0
    for r, d in zip(ra.tolist(), dec.tolist(), strict=True):  # one by one, as astropy's stop rule is per call
        try:
            mine = world_to_pixel(img.wcs, [(r, d)])
        except _Fallback:
            continue
        ref = np.column_stack(w.all_world2pix([r], [d], 0))
        worst, done = max(worst, float(np.max(np.abs(mine - ref)))), done + 1
    assert done > 290
    assert worst < margin / 10, (worst, margin)


# ------------------------------------------------------------------------------------------ structure


def test_fresh_process_does_not_import_astropy_wcs(sim_hst, tmp_path):
    path = sim_hst.files[0]
    ra, dec = _pixel_to_radec(path, 1, 150.0, 150.0)
    code = (
        "import sys, skycut\n"
        f"p = skycut.fits_cut({str(path)!r}, '{ra} {dec}', [20, 30], output_dir={str(tmp_path)!r})\n"
        "from skycut.image import fits_fast\n"
        "assert fits_fast.STATS['fast'] == 1, fits_fast.STATS\n"
        "print(sorted(m for m in sys.modules if m.startswith('astropy')))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "astropy.wcs" not in res.stdout and "astropy.io" not in res.stdout, res.stdout
    assert list(tmp_path.glob("*_astrocut.fits"))


def test_empty_cutout_kept_with_allow_empty(sim_hst, tmp_path, monkeypatch):
    path = tmp_path / "holed.fits"
    shutil.copy(sim_hst.files[0], path)
    with fits.open(path, mode="update") as hdul:
        hdul[1].data[90:110, 0:10] = np.nan
    ra, dec = _pixel_to_radec(path, 1, 1.0, 100.0)
    out = both(tmp_path, monkeypatch, str(path), f"{ra} {dec}", 3, extension=1, allow_empty=True)
    with fits.open(out[0]) as hdul:
        assert hdul[1].header["EMPTY"] is True


# ------------------------------------------------------------------------------------------ batch


def test_cut_fits_targets_writes_the_astropy_paths_bytes(sim_hst, tmp_path, monkeypatch):
    """One file per target, byte for byte what FITSCutout + write_hdulist write (the workflow's image job);
    targets off the image are skipped with the reason, a broken input fails every target without stopping."""
    from skycut.core.atomic import write_hdulist
    from skycut.image import fits_batch
    from skycut.image.fits_cutout import FITSCutout

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    path = str(sim_hst.files[0])
    inside = [_pixel_to_radec(path, 1, x, y) for x, y in ((150.2, 149.7), (30.3, 270.4), (2.2, 150.1))]
    targets = [
        ("a", f"{inside[0][0]} {inside[0][1]}", [20, 30]),
        ("b", list(inside[1]), 11),
        ("edge", f"{inside[2][0]} {inside[2][1]}", 9),
        ("angular", f"{inside[0][0]} {inside[0][1]}", "3 arcsec"),
        ("far", "10 10", 5),
    ]
    before = dict(fits_batch.STATS)
    out = tmp_path / "batch"
    out.mkdir()
    result = fits_batch.cut_fits_targets(
        [path], targets, [out / f"{t[0]}.fits" for t in targets], extension="SCI"
    )
    assert sorted(result.written) == ["a", "angular", "b", "edge"] and list(result.skipped) == ["far"]
    assert "outside" in result.skipped["far"] and not result.failed
    assert fits_batch.STATS["fast"] == before["fast"] + 4
    for name, coord, size in targets[:4]:
        ref = tmp_path / f"{name}.ref.fits"
        write_hdulist(
            FITSCutout([path], coord, size, extension="SCI", single_outfile=True).fits_cutouts[0], ref
        )
        assert (out / f"{name}.fits").read_bytes() == ref.read_bytes(), name
        _open(out / f"{name}.fits").close()  # checksums valid

    broken = tmp_path / "broken.fits"
    broken.write_bytes(Path(path).read_bytes()[:5000])
    result = fits_batch.cut_fits_targets([broken], targets[:2], [out / "x.fits", out / "y.fits"])
    assert sorted(result.failed) == ["a", "b"] and not result.written


def test_cut_fits_targets_object_names_identical_on_both_routes(sim_hst, tmp_path, monkeypatch):
    """The display name goes into OBJECT; the fast route and the astropy route write the same bytes."""
    from astropy.io import fits

    from skycut.image import fits_batch

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    path = str(sim_hst.files[0])
    ra, dec = _pixel_to_radec(path, 1, 150.2, 149.7)
    targets = [("NGC 1300", f"{ra} {dec}", 15)]
    names = {"NGC 1300": "NGC 1300"}
    fast, slow = tmp_path / "fast.fits", tmp_path / "slow.fits"
    before = dict(fits_batch.STATS)
    fits_batch.cut_fits_targets([path], targets, [fast], extension="SCI", object_names=names)
    assert fits_batch.STATS["fast"] == before["fast"] + 1
    monkeypatch.setattr(fits_batch, "_fast_target", lambda *a, **k: None)  # force the astropy route
    fits_batch.cut_fits_targets([path], targets, [slow], extension="SCI", object_names=names)
    assert fits_batch.STATS["astropy"] == before["astropy"] + 1
    assert fast.read_bytes() == slow.read_bytes()
    with fits.open(fast, checksum=True) as hdul:
        assert hdul[0].header["OBJECT"] == "NGC 1300"
