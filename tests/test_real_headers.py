"""Image cutouts on the real archive headers astropy ships as test data (``astropy/wcs/tests/data``).

For SIP (HST-like, IRAF/PTF, Spitzer IRAC), TPV (PTF), lookup-table distortions (HST ACS D2IM + CPDIS), a DSS
plate solution, and non-TAN projections (ZEA, SIN, AIT, CAR, ZPN, COE, HPX, ...), a cutout written by skycut
must, at every cutout pixel, give through astropy's WCS (read back from the written file, distortions included)
the sky position the original's WCS gives at the matching original pixel (tolerance ``TOL_DEG``), hold the
original's pixels there (``fill_value`` off the image), verify as FITS (checksums, ``verify('exception')``) and
carry only standard WCS keywords that DS9 reads (DS9 itself is not run here).
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import astropy.wcs
import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, FITSFixedWarning

from skycut import FITSCutout, fits_cut

DATA = Path(astropy.wcs.__file__).parent / "tests" / "data"
TOL_DEG = 1e-9  # 3.6 micro-arcsec: the cutout WCS is the original's with an integer shift of the pixel origin
MAX_SIDE = (120, 100)  # numpy (ny, nx) cap on the synthetic images made for header-only files

HEADER_ONLY = [
    "sip.fits",  # TAN-SIP with A/B and AP/BP, PC + CDELT
    "sip2.fits",  # TAN-SIP with A/B only
    "irac_sip.hdr",  # Spitzer IRAC TAN-SIP
    "siponly.hdr",  # PTF TAN-SIP
    "tpvonly.hdr",  # PTF TPV (PV1_*, PV2_* polynomial)
    "2wcses.hdr",  # a primary and an alternate WCS
    "maps/1904-66_TAN.hdr",
    "maps/1904-66_ZEA.hdr",
    "maps/1904-66_SIN.hdr",
    "maps/1904-66_AIT.hdr",
    "maps/1904-66_CAR.hdr",
    "maps/1904-66_ZPN.hdr",
    "maps/1904-66_COE.hdr",
    "maps/1904-66_HPX.hdr",
    "maps/1904-66_AZP.hdr",
    "maps/1904-66_MOL.hdr",
    "maps/1904-66_TSC.hdr",
]
WHOLE_FILES = [
    "dist_lookup.fits.gz",  # HST ACS: TAN-SIP + D2IM (D2IMARR) + CPDIS lookup tables (WCSDVARR)
    "dss.14.29.56-62.41.05.fits.gz",  # DSS plate solution (AMDX/AMDY, PLTRA*, CNPIX)
]
CASES = HEADER_ONLY + WHOLE_FILES
_KEYWORD = re.compile(r"^[A-Z0-9_-]{1,8}$")
_STRUCTURAL = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "PCOUNT", "GCOUNT", "XTENSION"}


def _read_header(name: str) -> fits.Header:
    path = DATA / name
    if path.suffix == ".hdr":
        return fits.Header.fromstring(path.read_bytes().decode("ascii", "replace"))
    return fits.getheader(path)


def _make_input(name: str, tmp_path: Path) -> Path:
    """A FITS file with the real header ``name`` (copied as is when it is a whole file with data); synthetic
    data of unique values, of the header's NAXIS sizes capped at ``MAX_SIDE``."""
    if name in WHOLE_FILES:
        out = tmp_path / name.replace("/", "_")
        shutil.copy(DATA / name, out)
        return out
    header = _read_header(name)
    ny = min(int(header.get("NAXIS2", 0) or MAX_SIDE[0]), MAX_SIDE[0])
    nx = min(int(header.get("NAXIS1", 0) or MAX_SIDE[1]), MAX_SIDE[1])
    hdu = fits.PrimaryHDU(data=np.arange(1, nx * ny + 1, dtype=np.float64).reshape(ny, nx))
    for card in header.cards:
        if card.keyword not in _STRUCTURAL and card.keyword != "END":
            hdu.header.append(card)
    out = tmp_path / (Path(name).stem + ".fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        hdu.writeto(out, output_verify="silentfix")
    return out


def _image_index(hdul: fits.HDUList) -> int:
    return next(i for i, h in enumerate(hdul) if h.is_image and h.header.get("NAXIS", 0) == 2)


def _wcs(hdul: fits.HDUList, index: int) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(hdul[index].header, hdul)


def _cut(api: str, path: Path, sky, size: int, out_dir: Path) -> Path:
    out_dir.mkdir()
    if api == "fits_cut":
        written = fits_cut(str(path), sky, size, output_dir=out_dir)
    else:
        written = FITSCutout(str(path), sky, size).write_as_fits(out_dir)
    assert isinstance(written, str) or len(written) == 1
    return Path(written if isinstance(written, str) else written[0])


def _check_ds9_readable(cut: fits.HDUList, header: fits.Header, original: fits.Header) -> None:
    """Keywords DS9 (AST / WCSTools) understands: standard syntax, standard distortion conventions, no
    wcslib-only sequent distortions, referenced distortion arrays present in the same file."""
    for card in header.cards:  # (the keyword as written: DP1 of the record-valued card DP1 = 'EXTVER: 1')
        assert card.rawkeyword in ("", "COMMENT", "HISTORY") or _KEYWORD.match(card.rawkeyword), (
            card.rawkeyword
        )
    ctype1, ctype2 = header["CTYPE1"], header["CTYPE2"]
    assert re.match(r"^[A-Z]{2,4}-*-[A-Z0-9]{3}(-SIP)?$", ctype1) and len(ctype1) >= 8, ctype1
    assert ctype1[4:8] == ctype2[4:8]
    assert not any(k.startswith(("CQDIS", "DQ")) for k in header), "wcslib-only sequent distortion written"
    if "A_ORDER" in header:
        assert ctype1.endswith("-SIP") and ctype2.endswith("-SIP") and "B_ORDER" in header
        assert not any(k.startswith("PV1_") for k in header)
    if "-TPV" in original.get("CTYPE1", ""):
        assert ctype1 == original["CTYPE1"] and ctype2 == original["CTYPE2"]
        pv = [k for k in original if re.match(r"^PV[12]_\d+$", k)]
        # wcslib leaves out zero coefficients (their default) and writes 14 significant digits
        assert pv and all(np.isclose(header.get(k, 0.0), original[k], rtol=1e-13, atol=0) for k in pv)
        assert all(f"PV{axis}_1" in header for axis in (1, 2))
    if "PLTRAH" in original:  # DSS plate solution: DS9 maps pixels through CNPIX (the plate corner)
        for key in [k for k in original if re.match(r"^(AMD[XY]\d+|PPO\d|PLT(RA|DEC)\w*|[XY]PIXELSZ)$", k)]:
            assert header[key] == original[key], key
    for prefix in ("DP", "D2IM"):
        for axis in (1, 2):
            key = f"{prefix}{axis}"
            if f"{'CPDIS' if prefix == 'DP' else 'D2IMDIS'}{axis}" not in header:
                continue
            assert header[f"{'CPDIS' if prefix == 'DP' else 'D2IMDIS'}{axis}"] == "LOOKUP"
            extver = int(header[f"{key}.EXTVER"])
            extname = "WCSDVARR" if prefix == "DP" else "D2IMARR"
            assert (extname, extver) in [(h.name, h.ver) for h in cut], (key, extname, extver)


def _positions(w: WCS, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        lon, lat = w.all_pix2world(xs, ys, 0)
    lon, lat = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


@pytest.mark.parametrize("api", ["FITSCutout", "fits_cut"])
@pytest.mark.parametrize("where", ["inside", "edge"])
@pytest.mark.parametrize("name", CASES)
def test_cutout_matches_original(name, where, api, tmp_path):
    path = _make_input(name, tmp_path)
    with fits.open(path) as hdul:
        index = _image_index(hdul)
        original = hdul[index].header.copy()
        data = np.asarray(hdul[index].data, dtype=np.float64)
        wcs = _wcs(hdul, index)
    ny, nx = data.shape
    size = 15 if where == "inside" else 12
    px = (nx * 0.45 + 0.2, ny * 0.55 + 0.3) if where == "inside" else (2.2, 3.6)  # 0-based (x, y)
    sky = wcs.pixel_to_world(*px)
    out = _cut(api, path, sky, size, tmp_path / "out")

    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyUserWarning)  # a checksum mismatch warns
        cut = fits.open(out, checksum=True)
    with cut:
        cut.verify("exception")
        assert cut[1].name == "CUTOUT"
        header = cut[1].header
        assert (header["NAXIS1"], header["NAXIS2"]) == (size, size)
        cwcs = _wcs(cut, 1)
        cdata = np.asarray(cut[1].data, dtype=np.float64)
        _check_ds9_readable(cut, header, original)
        assert [c.keyword for c in header.cards].count("DATE-OBS") == ("DATE-OBS" in original)
        if "DATE-OBS" in original:  # the original's card, as written (not wcslib's echo of it)
            assert header["DATE-OBS"] == original["DATE-OBS"]
        # placement: the box of `size` pixels whose lower edge is x - size/2 rounded (astrocut's rule)
        xmin = int(np.floor(px[0] - size / 2 + 0.5))
        ymin = int(np.floor(px[1] - size / 2 + 0.5))
        assert (header["CRVAL1P"], header["CRVAL2P"]) == (xmin + 1, ymin + 1)
        assert (header["LTV1"], header["LTV2"]) == (-xmin, -ymin)
        if where == "edge":
            assert xmin < 0 and ymin < 0

    # pixels: the original's at the matching positions, fill value (NaN) off the image
    cy, cx = np.mgrid[0:size, 0:size]
    ox, oy = cx + xmin, cy + ymin
    on = (ox >= 0) & (ox < nx) & (oy >= 0) & (oy < ny)
    assert np.array_equal(cdata[on], data[oy[on], ox[on]])
    assert np.all(np.isnan(cdata[~on]))

    # sky positions: cutout WCS at every cutout pixel == original WCS at the matching original pixel
    mine = _positions(cwcs, cx.ravel().astype(float), cy.ravel().astype(float))
    theirs = _positions(wcs, ox.ravel().astype(float), oy.ravel().astype(float))
    off_sky = np.isnan(theirs).any(axis=0)
    assert np.array_equal(np.isnan(mine).any(axis=0), off_sky)
    assert (~off_sky).sum() > size * size // 2
    sep = np.degrees(np.linalg.norm(mine[:, ~off_sky] - theirs[:, ~off_sky], axis=0))
    assert sep.max() < TOL_DEG, f"{name}: max separation {sep.max():.3g} deg"
    if original.get("CPDIS1") == "LOOKUP":  # the distortion model is carried, not approximated
        assert cwcs.cpdis1 is not None and cwcs.cpdis2 is not None and cwcs.det2im1 is not None


def test_dss_modern_keywords_fast_path(tmp_path):
    """A DSS header without archaic keywords (PC00i00j, EPOCH, CROTA) in ICRS still uses the plate solution:
    the astropy-free fast path must not treat it as a plain TAN image."""
    src = DATA / "dss.14.29.56-62.41.05.fits.gz"
    with fits.open(src) as hdul:
        header = hdul[0].header.copy()
        data = hdul[0].data.copy()
    for key in (
        "EPOCH",
        "PC001001",
        "PC001002",
        "PC002001",
        "PC002002",
        "CROTA1",
        "CROTA2",
        "CDELT1",
        "CDELT2",
    ):
        header.remove(key)
    header["RADESYS"] = "ICRS"  # (FK5 images are never on the fast path)
    path = tmp_path / "dss_modern.fits"
    fits.PrimaryHDU(data=data, header=header).writeto(path, output_verify="silentfix")
    wcs = _wcs(fits.open(path), 0)
    sky = wcs.pixel_to_world(41.3, 57.9)
    out = tmp_path / "out"
    out.mkdir()
    written = fits_cut(str(path), sky, 16, output_dir=out)
    with fits.open(written) as cut:
        cwcs = _wcs(cut, 1)
        assert cut[1].header["CNPIX1"] == header["CNPIX1"] + cut[1].header["CRVAL1P"] - 1
        assert cut[1].header["CNPIX2"] == header["CNPIX2"] + cut[1].header["CRVAL2P"] - 1
        xmin, ymin = int(cut[1].header["CRVAL1P"]) - 1, int(cut[1].header["CRVAL2P"]) - 1
    cy, cx = np.mgrid[0:16, 0:16].astype(float)
    mine = _positions(cwcs, cx.ravel(), cy.ravel())
    theirs = _positions(wcs, cx.ravel() + xmin, cy.ravel() + ymin)
    assert np.degrees(np.linalg.norm(mine - theirs, axis=0)).max() < TOL_DEG


@pytest.mark.parametrize("shift", [(38, 48), (-4, -2), (1000, -700)])
def test_shifted_wcs_moves_lookup_tables(shift):
    """``shifted_wcs`` keeps SIP, D2IM and CPDIS tables of an HST ACS header, moved with the pixel origin."""
    from skycut.core.geometry import shifted_wcs

    with fits.open(DATA / "dist_lookup.fits.gz") as hdul:
        wcs = _wcs(hdul, 1)
    assert wcs.sip is not None and wcs.cpdis1 is not None and wcs.det2im1 is not None
    xmin, ymin = shift
    out = shifted_wcs(wcs, xmin, ymin, (20, 20))
    assert out.pixel_shape == (20, 20)
    assert np.array_equal(out.cpdis1.data, wcs.cpdis1.data) and np.array_equal(
        out.det2im1.data, wcs.det2im1.data
    )
    cy, cx = np.mgrid[0:20, 0:20].astype(float)
    mine = _positions(out, cx.ravel(), cy.ravel())
    theirs = _positions(wcs, cx.ravel() + xmin, cy.ravel() + ymin)
    assert np.degrees(np.linalg.norm(mine - theirs, axis=0)).max() < TOL_DEG
    assert tuple(wcs.cpdis1.crval) == (0.0, 0.0)  # the input is left alone


def test_old_style_date_obs_written_once(tmp_path):
    """An old-style ``DATE-OBS = 'dd/mm/yy'`` is kept as the original wrote it, once (wcslib's ISO rewrite of
    it, and the MJD-OBS it derives, are not added)."""
    header = _read_header("maps/1904-66_TAN.hdr")
    header["DATE-OBS"] = ("02/01/95", "old-style date")
    hdu = fits.PrimaryHDU(data=np.arange(1.0, 101.0).reshape(10, 10))
    for card in header.cards:
        if card.keyword not in _STRUCTURAL:
            hdu.header.append(card)
    path = tmp_path / "old_date.fits"
    hdu.writeto(path, output_verify="silentfix")
    with fits.open(path) as hdul:
        sky = _wcs(hdul, 0).pixel_to_world(4.2, 5.1)
    out = _cut("FITSCutout", path, sky, 6, tmp_path / "out")
    with fits.open(out) as cut:
        cards = [c for c in cut[1].header.cards if c.keyword == "DATE-OBS"]
        assert [(c.value, c.comment) for c in cards] == [("02/01/95", "old-style date")]
        assert "MJD-OBS" not in cut[1].header


def _lookup_refs(cut: fits.HDUList, index: int) -> set[tuple[str, int]]:
    h = cut[index].header
    return {
        (name, int(h[f"{prefix}{axis}.EXTVER"]))
        for prefix, name in (("DP", "WCSDVARR"), ("D2IM", "D2IMARR"))
        for axis in (1, 2)
        if f"{prefix}{axis}.EXTVER" in h
    }


def _shifted_copy(src: Path, dst: Path, dx: float) -> Path:
    """``src`` with the SCI WCS (and so SIP) moved by ``dx`` pixels, the lookup tables not: the same sky falls
    on other pixels, where the tables hold other corrections."""
    shutil.copy(src, dst)
    with fits.open(dst, mode="update") as hdul:
        hdul[1].header["CRPIX1"] += dx
    return dst


@pytest.mark.parametrize("single_outfile", [True, False])
def test_lookup_tables_of_several_cutouts_in_one_file(tmp_path, single_outfile):
    """Several cutouts with lookup tables in one file (``single_outfile``, two coordinates): each cutout has its
    own WCSDVARR/D2IMARR extensions (unique EXTVERs, after the cutouts), and each reads back to its own WCS."""
    first = tmp_path / "a.fits"
    shutil.copy(DATA / "dist_lookup.fits.gz", first)
    second = _shifted_copy(DATA / "dist_lookup.fits.gz", tmp_path / "b.fits", 7.0)
    originals = {}
    for p in (first, second):
        with fits.open(p) as hdul:
            originals[p.name] = _wcs(hdul, 1)
    sky = originals["a.fits"].pixel_to_world([30.2, 61.7], [40.6, 55.2])
    out = tmp_path / "out"
    out.mkdir()
    written = FITSCutout([str(first), str(second)], sky, 9, single_outfile=single_outfile).write_as_fits(out)
    assert len(written) == (2 if single_outfile else 4)
    for path in written:
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstropyUserWarning)
            cut = fits.open(path, checksum=True)
        with cut:
            cut.verify("exception")
            cutouts = [i for i, h in enumerate(cut) if h.name == "CUTOUT"]
            assert cutouts == list(range(1, 1 + (2 if single_outfile else 1)))
            tables = [(h.name, h.ver) for h in cut[1 + len(cutouts) :]]
            assert sorted(tables) == sorted(set(tables)) and len(tables) == 3 * len(cutouts)
            assert {n for n, _v in tables} == {"WCSDVARR", "D2IMARR"}
            refs = [_lookup_refs(cut, i) for i in cutouts]
            assert all(len(r) == 3 for r in refs) and set().union(*refs) == set(tables)  # each its own
            for i in cutouts:
                h = cut[i].header
                cwcs = _wcs(cut, i)
                assert cwcs.cpdis1 is not None and cwcs.cpdis2 is not None and cwcs.det2im1 is not None
                xmin, ymin = int(h["CRVAL1P"]) - 1, int(h["CRVAL2P"]) - 1
                cy, cx = np.mgrid[0:9, 0:9].astype(float)
                mine = _positions(cwcs, cx.ravel(), cy.ravel())
                theirs = _positions(originals[h["ORIG_FLE"]], cx.ravel() + xmin, cy.ravel() + ymin)
                assert np.degrees(np.linalg.norm(mine - theirs, axis=0)).max() < TOL_DEG


def test_lookup_tables_batch_takes_the_astropy_route(tmp_path, monkeypatch):
    """The workflow's batch cuts files with lookup tables by the astropy route: the same file as FITSCutout +
    write_hdulist, tables included."""
    from skycut.core.atomic import write_hdulist
    from skycut.image import fits_batch

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # reproducible checksum comments
    path = tmp_path / "acs.fits"
    shutil.copy(DATA / "dist_lookup.fits.gz", path)
    with fits.open(path) as hdul:
        sky = _wcs(hdul, 1).pixel_to_world(50.3, 44.8)
    coords = f"{sky.ra.deg} {sky.dec.deg}"
    before = dict(fits_batch.STATS)
    result = fits_batch.cut_fits_targets([str(path)], [("t", coords, 11)], [tmp_path / "batch.fits"])
    assert fits_batch.STATS["astropy"] == before["astropy"] + 1 and fits_batch.STATS["fast"] == before["fast"]
    assert not result.failed and not result.skipped
    write_hdulist(FITSCutout(str(path), coords, 11).fits_cutouts[0], tmp_path / "direct.fits")
    assert (tmp_path / "batch.fits").read_bytes() == (tmp_path / "direct.fits").read_bytes()
    with fits.open(tmp_path / "batch.fits", checksum=True) as a:
        assert [(h.name, h.ver) for h in a] == [
            ("PRIMARY", 1),
            ("CUTOUT", 1),
            ("D2IMARR", 1),
            ("WCSDVARR", 1),
            ("WCSDVARR", 2),
        ]
