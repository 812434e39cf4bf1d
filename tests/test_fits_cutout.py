"""FITS image cutouts: truth from the simulator, sizes/orientation, headers, names vs astrocut, errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

import skycut
from skycut.exceptions import DataWarning, InvalidInputError, InvalidQueryError
from skycut.image.fits_cutout import FITSCutout, fits_cut, img_cut

SCALE = 0.1 / 3600.0  # 0.1 arcsec per pixel


def make_wcs(shape=(80, 100), crval=(150.0, 2.0), sip=False) -> WCS:
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"] if sip else ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    w.wcs.cdelt = [-SCALE, SCALE]
    if sip:
        from astropy.wcs import Sip

        a = np.zeros((3, 3))
        b = np.zeros((3, 3))
        a[2, 0] = 2e-5
        b[0, 2] = -1.5e-5
        w.sip = Sip(a, b, None, None, w.wcs.crpix)
    return w


def index_image(shape=(80, 100)) -> np.ndarray:
    ny, nx = shape
    return (np.arange(ny)[:, None] * 1000 + np.arange(nx)[None, :]).astype(np.float32)


def write_image(
    path: Path,
    data=None,
    shape=(80, 100),
    crval=(150.0, 2.0),
    sip=False,
    extra=None,
    n_ext=1,
    compressed=False,
) -> WCS:
    data = index_image(shape) if data is None else data
    w = make_wcs(data.shape[-2:], crval, sip)
    hdus = [fits.PrimaryHDU(header=fits.Header([("FILENAME", path.name), ("TELESCOP", "SIM")]))]
    for k in range(n_ext):
        h = w.to_header(relax=True)
        h["BUNIT"] = "e/s"
        h["EXTVER"] = k + 1
        h.update(extra or {})
        cls = fits.CompImageHDU if compressed else fits.ImageHDU
        hdus.append(cls(data=data * (k + 1), header=h, name="SCI"))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return w


@pytest.fixture
def image(tmp_path) -> tuple[Path, WCS]:
    path = tmp_path / "small.fits"
    return path, write_image(path)


def expected_box(w: WCS, coord: SkyCoord, nx: int, ny: int) -> tuple[int, int]:
    x, y = w.world_to_pixel(coord)
    return int(np.floor(x - nx / 2 + 0.5)), int(np.floor(y - ny / 2 + 0.5))


# ----------------------------------------------------------------------------------------- against truth


def test_star_peak_at_centre_of_simulated_hst(sim_hst):
    truth = sim_hst.truth
    name = sim_hst.files[0].name
    cell = truth["skycells"][name]
    ny, nx = truth["shape"]
    src = truth["sources"]
    x, y = np.asarray(cell["x"]), np.asarray(cell["y"])
    stars = np.flatnonzero(
        (np.asarray(src["sigma_pix"]) == 0) & (x > 15) & (x < nx - 15) & (y > 15) & (y < ny - 15)
    )
    assert stars.size, "the simulator should put stars inside the first skycell"
    flux = np.asarray(src["flux"][cell["band"]])
    star = stars[np.argmax(flux[stars])]
    coord = SkyCoord(src["ra"][star], src["dec"][star], unit="deg")
    cut = FITSCutout(sim_hst.files[0], coord, 11, extension="SCI")
    (inst,) = cut.cutouts_by_file[str(sim_hst.files[0])]
    assert inst.shape == (11, 11)
    assert np.unravel_index(np.nanargmax(inst.data), inst.data.shape) == (5, 5)
    # the cutout WCS puts the star on the central pixel too
    cx, cy = inst.wcs.world_to_pixel(coord)
    assert abs(cx - 5) <= 0.5 and abs(cy - 5) <= 0.5
    # and the original position maps through the slices
    assert inst.slices_original[1].start + 5 == int(np.floor(x[star] + 0.5))
    assert inst.slices_original[0].start + 5 == int(np.floor(y[star] + 0.5))


def test_default_extension_cuts_every_celestial_image(sim_hst):
    coord = SkyCoord(*sim_hst.truth["center"], unit="deg")
    cut = FITSCutout(sim_hst.files[:2], coord, 15)
    for f in sim_hst.files[:2]:
        with fits.open(f) as hdul:
            wanted = [
                i
                for i, h in enumerate(hdul)
                if h.is_image and h.header.get("NAXIS", 0) == 2 and WCS(h.header).has_celestial
            ]
        assert [i.extension for i in cut.cutouts_by_file[str(f)]] == wanted
    (hdul,) = cut.fits_cutouts
    assert len(hdul) == 1 + sum(len(v) for v in cut.cutouts_by_file.values())


# ----------------------------------------------------------------------------------------- sizes, pixels


def test_size_order_and_pixel_values(image):
    path, w = image
    coord = SkyCoord(150.001, 2.001, unit="deg")
    cut = FITSCutout([str(path)], coord, [7, 5])
    (inst,) = cut.cutouts_by_file[str(path)]
    assert inst.shape == (5, 7) and inst.shape_input == (80, 100)
    assert inst.data.flags.writeable and inst.data.flags.owndata  # not a view of the input file
    xmin, ymin = expected_box(w, coord, 7, 5)
    np.testing.assert_array_equal(inst.data, index_image()[ymin : ymin + 5, xmin : xmin + 7])
    assert (inst.xmin_original, inst.ymin_original) == (xmin, ymin)
    assert inst.slices_original == (slice(ymin, ymin + 5), slice(xmin, xmin + 7))
    hdu = cut.fits_cutouts[0][1]
    assert (hdu.header["NAXIS1"], hdu.header["NAXIS2"]) == (7, 5)


def test_200_by_300_gives_fits_dimensions_200_300(tmp_path):
    path = tmp_path / "big.fits"
    write_image(path, shape=(400, 500))
    out = fits_cut(path, "150 2", [200, 300], output_dir=tmp_path / "out")
    assert Path(out).name == "cutout_150.0000000_2.0000000_200-x-300_astrocut.fits"
    with fits.open(out) as hdul:
        assert hdul[1].data.shape == (300, 200)
        assert (hdul[1].header["NAXIS1"], hdul[1].header["NAXIS2"]) == (200, 300)


@pytest.mark.parametrize("size", ["1.5 arcsec", 1.5 * u.arcsec, [1.5 * u.arcsec, 0.02 * u.arcmin]])
def test_angular_sizes(image, size):
    path, _ = image
    cut = FITSCutout(path, "150 2", size)
    (inst,) = cut.cutouts_by_file[str(path)]
    expected_ny = 12 if isinstance(size, list) else 15  # 0.02 arcmin = 1.2 arcsec = 12 pixels
    assert inst.shape == (expected_ny, 15)


def test_padding_with_fill_value(image):
    path, w = image
    corner = w.pixel_to_world(0, 0)
    cut = FITSCutout(path, corner, 6, fill_value=-99.0)
    (inst,) = cut.cutouts_by_file[str(path)]
    assert inst.shape == (6, 6)
    # the box spans pixels -3..2 in both axes: 3x3 on the image, the rest padded
    np.testing.assert_array_equal(inst.data[3:, 3:], index_image()[:3, :3])
    assert (inst.data[:3, :] == -99).all() and (inst.data[:, :3] == -99).all()
    assert inst.aperture.sum() == 9
    nan_cut = FITSCutout(path, corner, 6)
    assert np.isnan(nan_cut.cutouts[0].data[:3]).all()


def test_integer_image_keeps_dtype_with_integer_fill(tmp_path):
    path = tmp_path / "int.fits"
    w = write_image(path, data=index_image().astype(np.int32))
    cut = FITSCutout(path, w.pixel_to_world(0, 0), 4, fill_value=0)
    assert cut.cutouts[0].data.dtype == np.int32
    nan_cut = FITSCutout(path, w.pixel_to_world(0, 0), 4)
    assert nan_cut.cutouts[0].data.dtype.kind == "f" and np.isnan(nan_cut.cutouts[0].data[0, 0])


def test_tile_compressed_input_matches_uncompressed(tmp_path):
    plain, comp = tmp_path / "plain.fits", tmp_path / "comp.fits"
    data = index_image((120, 90)).astype(np.int32)
    write_image(plain, data=data)
    write_image(comp, data=data, compressed=True)
    coord = SkyCoord(150.0005, 1.9995, unit="deg")
    a = FITSCutout(plain, coord, [9, 13]).cutouts[0]
    b = FITSCutout(comp, coord, [9, 13]).cutouts[0]
    np.testing.assert_array_equal(a.data, b.data)
    assert a.slices_original == b.slices_original


def test_rounding_methods(image):
    path, w = image
    coord = w.pixel_to_world(40.3, 30.3)  # x - 4/2 + 0.5 = 38.8
    starts = {
        m: FITSCutout(path, coord, 4, limit_rounding_method=m).cutouts[0].xmin_original
        for m in ("round", "floor", "ceil")
    }
    assert starts == {"round": 38, "floor": 38, "ceil": 39}
    with pytest.raises(InvalidInputError, match="limit_rounding_method"):
        FITSCutout(path, coord, 4, limit_rounding_method="nearest")


# ----------------------------------------------------------------------------------------- several coordinates


def test_several_coordinates_each_get_a_cutout(image, tmp_path):
    path, w = image
    coords = [w.pixel_to_world(20, 20), "150.001 2.001", w.pixel_to_world(70, 60)]
    cut = FITSCutout(path, coords, 5)
    insts = cut.cutouts_by_file[str(path)]
    assert len(insts) == 3
    for inst, c in zip(insts, skycut.core.coords.parse_coordinates(coords), strict=True):
        assert inst.coordinate.separation(c).arcsec < 1e-6
        x, y = w.world_to_pixel(c)
        assert inst.xmin_original == int(np.floor(x - 2)) and inst.ymin_original == int(np.floor(y - 2))
    assert len(cut.fits_cutouts) == 3
    ras = [h[0].header["RA_OBJ"] for h in cut.fits_cutouts]
    assert ras == pytest.approx([c.ra.deg for c in skycut.core.coords.parse_coordinates(coords)])
    paths = cut.write_as_fits(tmp_path / "multi")
    assert len(set(paths)) == 3 and all(Path(p).exists() for p in paths)
    per_file = FITSCutout(path, coords, 5, single_outfile=False).write_as_fits(tmp_path / "per")
    assert sorted(Path(p).name.split("_")[0] for p in per_file) == ["small"] * 3


# ----------------------------------------------------------------------------------------- headers


def test_header_layout_and_wcs(tmp_path):
    path = tmp_path / "sip.fits"
    w = write_image(path, sip=True, extra={"FILENAME": "raw_name.fits", "OBSERVER": "me"})
    coord = w.pixel_to_world(61.2, 33.7)
    cut = FITSCutout(path, coord, [9, 7])
    hdul = cut.fits_cutouts[0]
    assert [h.name for h in hdul] == ["PRIMARY", "CUTOUT"]
    prim = hdul[0].header
    for key in ("ORIGIN", "DATE", "PROCVER", "RA_OBJ", "DEC_OBJ"):
        assert key in prim
    assert prim["RA_OBJ"] == pytest.approx(coord.ra.deg)
    assert hdul[0].data is None
    h = hdul[1].header
    assert h["O_EXT_NM"] == "SCI" and h["ORIG_EXT"] == 1 and h["ORIG_FLE"] == "raw_name.fits"
    assert "FILENAME" not in h and h["OBSERVER"] == "me" and h["BUNIT"] == "e/s"
    assert h["CTYPE1"] == "RA---TAN-SIP" and "A_2_0" in h
    inst = cut.cutouts[0]
    xmin, ymin = inst.xmin_original, inst.ymin_original
    assert h["CRVAL1P"] == xmin + 1 and h["CRVAL2P"] == ymin + 1 and h["WCSNAMEP"] == "PHYSICAL"
    cw = WCS(h)
    for px, py in [(0, 0), (8, 6), (4.3, 2.9)]:
        a = cw.pixel_to_world(px, py)
        b = w.pixel_to_world(px + xmin, py + ymin)
        assert a.separation(b).arcsec < 1e-6


def test_written_file_has_valid_checksums(image, tmp_path):
    path, _ = image
    (out,) = FITSCutout(path, "150 2", 5, extension="all").write_as_fits(tmp_path / "o")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(out, checksum=True) as hdul:
            assert all("CHECKSUM" in h.header and "DATASUM" in h.header for h in hdul)


def test_pan_starrs_asinh_linearised(tmp_path):
    path = tmp_path / "ps1.fits"
    raw = np.linspace(-1, 3, 100 * 80, dtype=np.float32).reshape(80, 100)
    write_image(path, data=raw, extra={"BSOFTEN": 2.5, "BOFFSET": 10.0})
    inst = FITSCutout(path, "150 2", 4).cutouts[0]
    src = raw[inst.slices_original].astype(np.float64)
    lin = 10.0 + 2.5 * (10 ** (0.4 * src) - 10 ** (-0.4 * src))
    np.testing.assert_allclose(inst.data, lin, rtol=1e-5)
    h = FITSCutout(path, "150 2", 4).fits_cutouts[0][1].header
    assert "BSOFTEN" not in h and any("BSOFTEN" in str(c) for c in h["HISTORY"])
    # padding keeps the fill value (it is not "linearised")
    corner = FITSCutout(path, WCS(fits.getheader(path, 1)).pixel_to_world(0, 0), 4, fill_value=-5.0).cutouts[
        0
    ]
    assert (corner.data[:2] == -5.0).all() and (corner.data[:, :2] == -5.0).all()
    np.testing.assert_allclose(
        corner.data[2:, 2:],
        10.0 + 2.5 * (10 ** (0.4 * raw[:2, :2].astype(float)) - 10 ** (-0.4 * raw[:2, :2].astype(float))),
        rtol=1e-5,
    )


# ----------------------------------------------------------------------------------------- vs astrocut


def test_same_names_shapes_values_as_astrocut(tmp_path):
    astrocut = pytest.importorskip("astrocut")
    a, b = tmp_path / "img_a.fits", tmp_path / "img_b.fits"
    write_image(a)
    write_image(b, data=index_image() * 3)
    coord = SkyCoord(150.0012, 2.0009, unit="deg")
    for single in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ac = astrocut.FITSCutout([str(a), str(b)], coord, [11, 7], single_outfile=single)
            ac_paths = ac.write_as_fits(str(tmp_path / f"ac{single}"), cutout_prefix="pre")
        sk = FITSCutout([str(a), str(b)], coord, [11, 7], single_outfile=single)
        sk_paths = sk.write_as_fits(tmp_path / f"sk{single}", cutout_prefix="pre")
        assert [Path(p).name for p in sk_paths] == [Path(p).name for p in ac_paths]
        for p, q in zip(sk_paths, ac_paths, strict=True):
            with fits.open(p) as s, fits.open(q) as r:
                assert [h.name for h in s] == [h.name for h in r]
                for hs, hr in zip(s[1:], r[1:], strict=True):
                    assert hs.data.shape == hr.data.shape and hs.data.dtype == hr.data.dtype
                    np.testing.assert_array_equal(hs.data, hr.data)
                    for key in ("CRPIX1", "CRPIX2", "CRVAL1", "ORIG_EXT", "O_EXT_NM"):
                        assert (
                            hs.header[key] == pytest.approx(hr.header[key])
                            if isinstance(hr.header[key], float)
                            else hs.header[key] == hr.header[key]
                        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ac_img = astrocut.FITSCutout([str(a), str(b)], coord, [11, 7]).write_as_img(
            output_format="png", output_dir=str(tmp_path / "aci")
        )
        ac_zip = astrocut.FITSCutout([str(a)], coord, [11, 7]).write_as_zip(str(tmp_path / "acz"))
    sk_img = FITSCutout([str(a), str(b)], coord, [11, 7]).write_as_img(
        output_format="png", output_dir=tmp_path / "ski"
    )
    assert [Path(p).name for p in sk_img] == [Path(p).name for p in ac_img]
    sk_zip = FITSCutout([str(a)], coord, [11, 7]).write_as_zip(tmp_path / "skz")
    assert Path(sk_zip).name == Path(ac_zip).name


def test_every_extension_gets_its_own_image(tmp_path):
    path = tmp_path / "two.fits"
    write_image(path, n_ext=2)
    paths = FITSCutout(path, "150 2", 6, extension="all").write_as_img(
        output_format="png", output_dir=tmp_path / "img"
    )
    assert [Path(p).name for p in paths] == [
        f"two_150.0000000_2.0000000_6-x-6_astrocut_{i}.png" for i in (0, 1)
    ]
    from PIL import Image

    with Image.open(paths[0]) as im0, Image.open(paths[1]) as im1:
        assert im0.size == (6, 6) and im1.size == (6, 6)
        assert im0.text["input_file"] == str(path)


def test_colour_image_and_img_cut(tmp_path):
    files = []
    for k in range(3):
        f = tmp_path / f"band{k}.fits"
        write_image(f, data=index_image() * (k + 1))
        files.append(f)
    out = img_cut(
        files,
        "150 2",
        [8, 6],
        colorize=True,
        img_format="png",
        output_dir=tmp_path / "c",
        cutout_prefix="rgb",
    )
    assert Path(out).name == "rgb_150.0000000_2.0000000_8-x-6_astrocut.png"
    from PIL import Image

    with Image.open(out) as im:
        assert im.mode == "RGB" and im.size == (8, 6)
    single = img_cut(files[0], "150 2", 5, output_dir=tmp_path / "g")
    assert isinstance(single, str) and single.endswith("_astrocut_0.jpg")


def test_fits_cut_return_conventions(image, tmp_path):
    path, _ = image
    mem = fits_cut(str(path), "150 2", 5, memory_only=True)
    assert isinstance(mem, list) and isinstance(mem[0], fits.HDUList)
    one = fits_cut(str(path), "150 2", 5, output_dir=tmp_path / "x")
    assert isinstance(one, str) and Path(one).exists()
    two = fits_cut([str(path)], ["150 2", "150.001 2.001"], 5, output_dir=tmp_path / "y")
    assert isinstance(two, list) and len(two) == 2


def test_extension_selection(tmp_path):
    path = tmp_path / "multi.fits"
    write_image(path, n_ext=3)
    assert [c.extension for c in FITSCutout(path, "150 2", 3, extension=2).cutouts] == [2]
    assert [c.extension for c in FITSCutout(path, "150 2", 3, extension=("SCI", 3)).cutouts] == [3]
    with pytest.warns(DataWarning, match="no extension 7"):
        sel = FITSCutout(path, "150 2", 3, extension=[1, 7]).cutouts
    assert [c.extension for c in sel] == [1]
    with pytest.raises(InvalidInputError, match="multi.fits has no extension 9"):
        FITSCutout(path, "150 2", 3, extension=9)
    with pytest.raises(InvalidInputError, match="extension 0 of .*multi.fits is not an image"):
        FITSCutout(path, "150 2", 3, extension=0)


# ----------------------------------------------------------------------------------------- errors


def test_target_missing_the_image_names_file_and_coordinate(image):
    path, _ = image
    with pytest.raises(InvalidQueryError, match=r"\(10\.0000000, 20\.0000000\) is outside .*small\.fits"):
        FITSCutout(path, "10 20", 5)


def test_target_missing_one_of_several_files_warns_and_cuts_the_others(image, tmp_path):
    path, _ = image
    far = tmp_path / "far.fits"
    write_image(far, crval=(30.0, -40.0))
    with pytest.warns(DataWarning, match="far.fits"):
        cut = FITSCutout([path, far], "150 2", 5)
    assert list(cut.cutouts_by_file) == [str(path)]
    assert len(cut.fits_cutouts[0]) == 2


def test_bad_inputs_have_clear_messages(image, tmp_path):
    path, _ = image
    with pytest.raises(InvalidInputError, match="input file not found: .*nothere.fits"):
        FITSCutout(tmp_path / "nothere.fits", "150 2", 5)
    text = tmp_path / "notes.fits"
    text.write_text("this is not a FITS file\n" * 200)
    with pytest.raises(InvalidInputError, match="notes.fits"):
        FITSCutout(text, "150 2", 5)
    nowcs = tmp_path / "nowcs.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((10, 10), np.float32))]).writeto(nowcs)
    with pytest.raises(InvalidInputError, match="nowcs.fits has no image HDU with data and a celestial WCS"):
        FITSCutout(nowcs, "150 2", 5)
    with pytest.raises(InvalidInputError, match="cutout size"):
        FITSCutout(path, "150 2", -3)
    with pytest.raises(InvalidInputError, match="coordinates"):
        FITSCutout(path, "somewhere", 5)
    assert not list((tmp_path).glob("*astrocut*"))


def test_all_nan_region(tmp_path):
    path = tmp_path / "nan.fits"
    data = index_image()
    data[:40, :50] = np.nan
    w = write_image(path, data=data)
    coord = w.pixel_to_world(10, 10)
    with pytest.raises(InvalidQueryError, match="no data"):
        FITSCutout(path, coord, 5)
    cut = FITSCutout(path, coord, 5, allow_empty=True)
    assert cut.fits_cutouts[0][1].header["EMPTY"] is True
    assert np.isnan(cut.cutouts[0].data).all()


def test_write_is_atomic(image, tmp_path, monkeypatch):
    path, _ = image
    cut = FITSCutout(path, "150 2", 5)
    out = tmp_path / "atomic"
    original = fits.HDUList.writeto

    def broken(self, name, *args, **kwargs):
        original(self, name, *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", broken)
    with pytest.raises(OSError, match="disk full"):
        cut.write_as_fits(out)
    assert not list(out.iterdir())  # neither the final name nor a temporary is left
    monkeypatch.setattr(fits.HDUList, "writeto", original)
    (done,) = cut.write_as_fits(out)
    assert [p.name for p in out.iterdir()] == [Path(done).name]


def test_astrocut_style_import():
    import skycut as astrocut

    assert astrocut.FITSCutout is FITSCutout and astrocut.fits_cut is fits_cut and astrocut.img_cut is img_cut


# ----------------------------------------------------------------------------------------- doc examples


def test_astrocut_doc_example_runs_on_simulated_hst(sim_hst, tmp_path, monkeypatch):
    import skycut as astrocut

    monkeypatch.chdir(tmp_path)
    input_files = [str(sim_hst.files[2]), str(sim_hst.files[4])]  # f606w, f814w (skycell x05)
    center_coord = SkyCoord(*sim_hst.truth["center"], unit="deg")
    cutout_size = [200, 300]
    fits_cutout = astrocut.FITSCutout(
        input_files=input_files, coordinates=center_coord, cutout_size=cutout_size, single_outfile=True
    )
    cutout = fits_cutout.fits_cutouts[0]
    n_cut = sum(len(v) for v in fits_cutout.cutouts_by_file.values())
    assert len(cutout) == 1 + n_cut >= 3
    assert all(h.data.shape == (300, 200) for h in cutout[1:])
    path = fits_cutout.write_as_fits()
    ra, dec = sim_hst.truth["center"]
    assert path == [f"./cutout_{ra:.7f}_{dec:.7f}_200-x-300_astrocut.fits"] or [
        Path(p).name for p in path
    ] == [f"cutout_{ra:.7f}_{dec:.7f}_200-x-300_astrocut.fits"]
    fits_img = fits_cutout.get_image_cutouts(stretch="linear", minmax_percent=[10, 99])[1]
    assert fits_img.size == (200, 300)
    paths = fits_cutout.write_as_img(stretch="sqrt", invert=True, output_format="png")
    assert len(paths) == n_cut and len(set(paths)) == n_cut


def test_colour_from_three_multi_extension_files_uses_each_files_first_extension(sim_hst):
    from skycut.image.render import normalize_img

    files = [sim_hst.files[0], sim_hst.files[2], sim_hst.files[4]]  # f435w, f606w, f814w
    coord = SkyCoord(*sim_hst.truth["center"], unit="deg")
    cut = FITSCutout(files, coord, [40, 30])
    (img,) = cut.get_image_cutouts(
        colorize=True, stretch="linear", minmax_percent=[0, 100], flip_orientation=False
    )
    pix = np.asarray(img)
    for channel, f in enumerate(files):
        sci = fits.getdata(f, 1)[cut.cutouts_by_file[str(f)][0].slices_original]
        np.testing.assert_array_equal(pix[..., channel], normalize_img(sci, stretch="linear"))


def test_zip_members(image, tmp_path):
    import zipfile

    path, _ = image
    cut = FITSCutout(path, ["150 2", "150.001 2.001"], 5)
    z = cut.write_as_zip(tmp_path, "bundle")
    assert Path(z).name == "bundle.zip"
    with zipfile.ZipFile(z) as zf:
        names = sorted(zf.namelist())
    assert names == sorted(Path(p).name for p in cut.write_as_fits(tmp_path / "plain"))


def test_far_target_on_sip_image_is_a_clear_miss(tmp_path):
    path = tmp_path / "sip.fits"
    write_image(path, sip=True)
    with pytest.raises(InvalidQueryError, match=r"\(330\.0000000, -2\.0000000\) is outside .*sip\.fits"):
        FITSCutout(path, "330 -2", 5)
    with pytest.warns(DataWarning, match="330.0000000"):
        cut = FITSCutout(path, ["150 2", "330 -2"], 5)
    assert len(cut.cutouts) == 1


def test_galactic_image_with_icrs_target(tmp_path):
    path = tmp_path / "gal.fits"
    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-TAN", "GLAT-TAN"]
    w.wcs.crval = [120.0, 10.0]
    w.wcs.crpix = [50.5, 40.5]
    w.wcs.cdelt = [-SCALE, SCALE]
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(index_image(), w.to_header())]).writeto(path)
    target = w.pixel_to_world(33.0, 21.0).icrs
    inst = FITSCutout(path, target, 5).cutouts[0]
    assert (inst.xmin_original, inst.ymin_original) == (31, 19)
    assert inst.data[2, 2] == 21 * 1000 + 33


def test_extension_without_wcs(tmp_path):
    path = tmp_path / "mixed.fits"
    w = make_wcs()
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(index_image(), w.to_header(), name="SCI"),
            fits.ImageHDU(index_image(), name="MASK"),
        ]
    ).writeto(path)
    assert [c.extension for c in FITSCutout(path, "150 2", 3).cutouts] == [1]  # default skips MASK silently
    with pytest.warns(DataWarning, match="extension 2 of .*mixed.fits has no celestial WCS"):
        assert [c.extension for c in FITSCutout(path, "150 2", 3, extension="all").cutouts] == [1]
    with pytest.raises(InvalidInputError, match="extension 2 of .*mixed.fits has no celestial WCS"):
        FITSCutout(path, "150 2", 3, extension="MASK")


def test_inputs_with_the_same_stem_get_distinct_files(tmp_path):
    a, b = tmp_path / "a" / "img.fits", tmp_path / "b" / "img.fits"
    a.parent.mkdir()
    b.parent.mkdir()
    write_image(a)
    write_image(b, data=index_image() + 1)
    paths = FITSCutout([a, b], "150 2", 5, single_outfile=False).write_as_fits(tmp_path / "out")
    assert len(set(paths)) == 2
    assert fits.getdata(paths[1], 1)[0, 0] == fits.getdata(paths[0], 1)[0, 0] + 1


@pytest.mark.parametrize(
    "value",
    [
        0,
        -7,
        2**40,
        True,
        False,
        1.0,
        -0.5,
        1e-30,
        6.02214076e23,
        150.0945,
        -1.1111111111111e-05,
        1 / 3,
        "",
        "SCI",
        "it's",
        "x" * 40,
        "RA---TAN-SIP",
    ],
)
def test_format_card_round_trips_through_astropy(value):
    from skycut.core.fits_bytes import format_card, plain_card

    image = format_card("KEY", value, "a comment")
    assert image == plain_card("KEY", value, "a comment")  # formatted without astropy
    assert len(image) == 80
    card = fits.Card.fromstring(image)
    assert card.keyword == "KEY" and card.comment == "a comment"
    assert card.value == value and type(card.value) is type(value)


def test_format_card_delegates_what_it_cannot_format_to_astropy():
    from skycut.core.fits_bytes import format_card, plain_card
    from skycut.image.fits_helpers import header_from_cards

    assert plain_card("KEY", "x" * 80) is None
    assert plain_card("lower", 1) is None
    assert plain_card("KEY", "caf\u00e9") is None
    long = format_card("KEY", "x" * 80)
    assert len(long) % 80 == 0 and len(long) > 80  # CONTINUE cards
    assert fits.Header.fromstring(long)["KEY"] == "x" * 80
    assert isinstance(fits.Card.fromstring(format_card("KEY", float("nan"))).value, fits.card.Undefined)
    h = header_from_cards([("LONGSTR", "y" * 100, "long"), ("N", 3, "")])
    assert h["LONGSTR"] == "y" * 100 and h["N"] == 3


def test_verbose_logs_the_cut(image, caplog):
    import logging

    path, _ = image
    with caplog.at_level(logging.DEBUG, logger="skycut"):
        FITSCutout(path, "150 2", 5, verbose=True)
    assert any("small.fits[1]" in r.getMessage() and "limits" in r.getMessage() for r in caplog.records)
    logging.getLogger("skycut").setLevel(logging.NOTSET)
