"""Target pixel files (TPFs) of cube cutouts, serialised directly to FITS bytes.

Layout (TESScut's / astrocut's, ``astrocut-formats.md`` §b) plus what astrocut 1.4 loses:

* ``PRIMARY``: the cube's primary header without per-FFI keywords, plus ``CREATOR``, ``PROCVER``, ``FFI_TYPE``,
  ``RA_OBJ``/``DEC_OBJ``, the time keywords and placeholder target keywords.
* ``PIXELS`` binary table, one row per FFI: ``TIME, TIMECORR, CADENCENO, RAW_CNTS, FLUX, FLUX_ERR, FLUX_BKG,
  FLUX_BKG_ERR, QUALITY, POS_CORR1, POS_CORR2, FFI_FILE``. Image columns have per-row numpy shape ``(ny, nx)``
  (``TDIM = (nx, ny)``) and carry the SPOC per-column WCS keywords: the fitted linear sky WCS (``1CTYP5`` ...) and
  the physical WCS whose ``1CRV5P``/``2CRV5P`` give the cutout's lower-left corner on the CCD (1-based column and
  row, what lightkurve reports as ``tpf.column``/``tpf.row``). ``WCS_MSEP``/``WCS_SIG`` are the real residuals of
  the linear fit against the full SIP WCS. ``FFI_FILE`` holds whole file names.
  ``QUALITY`` is the cube table's ``DQUALITY``: SPOC's bits, plus bit 65536
  (:data:`skycut.tess.cube_table.NONFINITE_FFI_BIT`) on cadences whose FFI had no finite flux pixel.
* ``APERTURE`` int32 image ``(ny, nx)``: 1 where the pixel is on the CCD, 0 for padding; linear WCS header.

Headers are assembled from 80-character card strings and checksums computed here, so writing hundreds of TPFs
from one cube costs about a millisecond each; :func:`tpf_hdulist` parses the same bytes into an astropy HDUList.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..core.atomic import pwrite_all, write_with
from ..core.fits_bytes import (
    BLOCK,
    HeaderTemplate,
    card_from_field,
    card_key,
    card_value,
    format_card,
    hdu_parts,
    set_card,
    value_field,
)
from .tpf_table import (
    IMAGE_COLUMNS,
    CubeMeta,
    TpfCutout,
    table_data,
    table_layout,
    write_table,
    write_table_file,
)

# keywords of the cube's primary header that describe a single FFI, not the TPF (astrocut removes the same)
REMOVED_PRIMARY = (
    "SC_*",
    "RMS*",
    "A_*",
    "AP_*",
    "B_*",
    "BP*",
    "GAIN*",
    "TESS_*",
    "CD*",
    "CT*",
    "CRPIX*",
    "CRVAL*",
    "MJD*",
    "COMMENT",
    "FILTER",
    "TIME",
    "EXPTIME",
    "ACS_MODE",
    "DEC_TARG",
    "FLXWIN",
    "RA_TARG",
    "CCDNUM",
    "CAMNUM",
    "WCSGDF",
    "UNITS",
    "CADENCE",
    "SCIPIXS",
    "INT_TIME",
    "PIX_CAT",
    "REQUANT",
    "DIFF_HUF",
    "PRIM_HUF",
    "QUAL_BIT",
    "SPM",
    "STARTTJD",
    "ENDTJD",
    "CRM",
    "TJD_ZERO",
    "CRM_N",
    "ORBIT_ID",
    "MIDTJD",
    "SIMPLE",
    "BITPIX",
    "NAXIS*",
    "EXTEND",
    "CHECKSUM",
    "DATASUM",
    "END",
)

# per-FFI keywords copied from the WCS row of the cube table into the PIXELS header (SPOC TPF set)
IMAGE_KEYWORDS = (
    "BACKAPP",
    "CDPP0_5",
    "CDPP1_0",
    "CDPP2_0",
    "CROWDSAP",
    "DEADAPP",
    "DEADC",
    "EXPOSURE",
    "FLFRCSAP",
    "FRAMETIM",
    "FXDOFF",
    "GAINA",
    "GAINB",
    "GAINC",
    "GAIND",
    "INT_TIME",
    "LIVETIME",
    "MEANBLCA",
    "MEANBLCB",
    "MEANBLCC",
    "MEANBLCD",
    "NREADOUT",
    "NUM_FRM",
    "READNOIA",
    "READNOIB",
    "READNOIC",
    "READNOID",
    "READTIME",
    "TIERRELA",
    "TIMEDEL",
    "TIMEPIXR",
    "TMOFST11",
    "VIGNAPP",
)


# ------------------------------------------------------------------------------------------ PRIMARY


_TIME_COMMENTS = {
    "DATE": "FFI cube creation date",
    "TSTART": "observation start time in TJD of first FFI",
    "TSTOP": "observation stop time in TJD of last FFI",
    "DATE-OBS": "TSTART as UTC calendar date of first FFI",
    "DATE-END": "TSTOP as UTC calendar date of last FFI",
    "FFIINDEX": "number of FFI cadence interval of first FFI",
}


def primary_cards(
    meta: CubeMeta,
    ra: float,
    dec: float,
    creator: str = "skycut",
    version: str | None = None,
    object_name: str = "",
    ticid: int | None = None,
) -> list[str]:
    """Primary header cards of a TPF (the cube's filtered primary header plus the TPF keywords).

    ``object_name`` and ``ticid`` fill ``OBJECT`` and ``TICID`` (by default empty and undefined, as astrocut).
    """
    if version is None:
        from .. import __version__ as version
    key = ("primary", creator, version)
    if key not in meta.cache:
        cards = [
            format_card("SIMPLE", True, "conforms to FITS standard"),
            format_card("BITPIX", 8, "array data type"),
            format_card("NAXIS", 0, "number of array dimensions"),
            format_card("EXTEND", True),
        ]
        cards += meta.primary_cards
        for k, comment in _TIME_COMMENTS.items():  # say which FFI the cube-level time keywords describe
            for i, card in enumerate(cards):
                if card_key(card) == k:
                    cards[i] = format_card(k, card_value(card), comment)
        if not any(card_key(c) == "ORIGIN" for c in cards):
            set_card(cards, "ORIGIN", "STScI/MAST", "institution responsible for creating this file")
        telapse = (meta.tstop - meta.tstart) if meta.tstart is not None and meta.tstop is not None else None
        for k, value, comment in (
            ("CREATOR", creator, "pipeline job and program used to produce this file"),
            ("PROCVER", version, "SW version"),
            ("FFI_TYPE", "SPOC", "the FFI type used to make the cutouts"),
            ("RA_OBJ", 0.0, "[deg] right ascension"),
            ("DEC_OBJ", 0.0, "[deg] declination"),
            ("TIMEREF", "SOLARSYSTEM", "barycentric correction applied to times"),
            ("TASSIGN", "SPACECRAFT", "where time is assigned"),
            ("TIMESYS", "TDB", "time system is TDB"),
            ("BJDREFI", 2457000, "integer part of BTJD reference date"),
            ("BJDREFF", 0.0, "fraction of the day in BTJD reference date"),
            ("TIMEUNIT", "d", "time unit for TIME"),
            ("TELAPSE", telapse, "[d] TSTOP - TSTART"),
            ("OBJECT", "", "string version of target id"),
            ("TCID", 0, "unique tess target identifier"),
            ("PXTABLE", 0, "pixel table id"),
            ("PMRA", 0.0, "[mas/yr] RA proper motion"),
            ("PMDEC", 0.0, "[mas/yr] Dec proper motion"),
            ("PMTOTAL", 0.0, "[mas/yr] total proper motion"),
            ("TESSMAG", 0.0, "[mag] TESS magnitude"),
            ("TEFF", 0.0, "[K] Effective temperature"),
            ("LOGG", 0.0, "[cm/s2] log10 surface gravity"),
            ("MH", 0.0, "[log10([M/H])] metallicity"),
            ("RADIUS", 0.0, "[solar radii] stellar radius"),
            ("TICVER", 0, "TICVER"),
            ("TICID", None, "unique tess target identifier"),
        ):
            set_card(cards, k, value, comment)
        keys = [card_key(c) for c in cards]
        meta.cache[key] = (cards, keys.index("RA_OBJ"), keys.index("DEC_OBJ"))
    template, i_ra, i_dec = meta.cache[key]
    cards = list(template)
    cards[i_ra] = format_card("RA_OBJ", float(ra), "[deg] right ascension")
    cards[i_dec] = format_card("DEC_OBJ", float(dec), "[deg] declination")
    if object_name:
        set_card(cards, "OBJECT", str(object_name), "string version of target id")
    if ticid is not None:
        set_card(cards, "TICID", int(ticid), "unique tess target identifier")
    return cards


def _inherited(meta: CubeMeta, which: str, primary: list[str], existing: list[str]) -> list[str]:
    """Primary cards copied into an extension (as astrocut does), skipping structural and existing keywords.

    Which keywords are copied depends only on the cube, so the choice is cached; values come from ``primary``.
    """
    key = ("inherit", which)
    if key not in meta.cache:
        have = {card_key(c) for c in existing}
        skip = {
            "SIMPLE",
            "BITPIX",
            "NAXIS",
            "EXTEND",
            "CHECKSUM",
            "DATASUM",
            "EXTNAME",
            "HISTORY",
            "COMMENT",
            "",
        }
        meta.cache[key] = [
            i for i, c in enumerate(primary) if card_key(c) not in skip and card_key(c) not in have
        ]
    return [primary[i] for i in meta.cache[key]]


# ------------------------------------------------------------------------------------------ PIXELS

# per-column WCS keywords of the image columns, in SPOC's order: (keyword template, value or "@name", comment)
_COLUMN_WCS = (
    ("WCSN{n}P", "PHYSICAL", "table column WCS name"),
    ("WCAX{n}P", 2, "table column physical WCS dimensions"),
    ("1CTY{n}P", "RAWX", "table column physical WCS axis 1 type, CCD col"),
    ("2CTY{n}P", "RAWY", "table column physical WCS axis 2 type, CCD row"),
    ("1CUN{n}P", "PIXEL", "table column physical WCS axis 1 unit"),
    ("2CUN{n}P", "PIXEL", "table column physical WCS axis 2 unit"),
    ("1CRV{n}P", "@col", "table column physical WCS ax 1 ref value"),
    ("2CRV{n}P", "@row", "table column physical WCS ax 2 ref value"),
    ("1CDL{n}P", 1.0, "table column physical WCS a1 step"),
    ("2CDL{n}P", 1.0, "table column physical WCS a2 step"),
    ("1CRP{n}P", 1, "table column physical WCS a1 reference"),
    ("2CRP{n}P", 1, "table column physical WCS a2 reference"),
    ("WCAX{n}", 2, "number of WCS axes"),
    ("1CTYP{n}", "RA---TAN", "right ascension coordinate type"),
    ("2CTYP{n}", "DEC--TAN", "declination coordinate type"),
    ("1CRPX{n}", "@crpix1", "[pixel] reference pixel along image axis 1"),
    ("2CRPX{n}", "@crpix2", "[pixel] reference pixel along image axis 2"),
    ("1CRVL{n}", "@crval1", "[deg] right ascension at reference pixel"),
    ("2CRVL{n}", "@crval2", "[deg] declination at reference pixel"),
    ("1CUNI{n}", "deg", "physical unit in column dimension"),
    ("2CUNI{n}", "deg", "physical unit in row dimension"),
    ("1CDLT{n}", 1.0, "[deg] pixel scale in RA dimension"),
    ("2CDLT{n}", 1.0, "[deg] pixel scale in DEC dimension"),
    ("11PC{n}", "@pc11", "linear transformation matrix element"),
    ("12PC{n}", "@pc12", "linear transformation matrix element"),
    ("21PC{n}", "@pc21", "linear transformation matrix element"),
    ("22PC{n}", "@pc22", "linear transformation matrix element"),
)
_STATIC_FIELDS = {
    t: value_field(v) for t, v, _ in _COLUMN_WCS if not (isinstance(v, str) and v.startswith("@"))
}


def column_wcs_cards(n: int, cut: TpfCutout) -> list[str]:
    """SPOC per-column WCS cards of table column ``n``: physical (CCD) WCS then the linear sky WCS."""
    (xmin, _), (ymin, _) = cut.lims
    col, row = cut.corner if cut.corner is not None else (int(xmin) + 1, int(ymin) + 1)
    dynamic = {
        "@col": int(col),
        "@row": int(row),
        "@crpix1": float(cut.crpix[0]),
        "@crpix2": float(cut.crpix[1]),
        "@crval1": float(cut.crval[0]),
        "@crval2": float(cut.crval[1]),
        "@pc11": float(cut.cd[0, 0]),
        "@pc12": float(cut.cd[0, 1]),
        "@pc21": float(cut.cd[1, 0]),
        "@pc22": float(cut.cd[1, 1]),
    }
    fields = {k: value_field(v) for k, v in dynamic.items()}
    return [
        card_from_field(t.format(n=n), _STATIC_FIELDS[t] if t in _STATIC_FIELDS else fields[v], c)
        for t, v, c in _COLUMN_WCS
    ]


def _pixels_cards(meta: CubeMeta, cut: TpfCutout, primary: list[str]) -> list[str]:
    """Return the PIXELS header cards of one cutout (without ``CHECKSUM``/``DATASUM``)."""
    ny, nx = cut.aperture.shape
    _, head, column_cards, _ = table_layout(meta, nx, ny)
    cards = list(head)
    for i, name, defs in column_cards:
        cards += defs
        if name in IMAGE_COLUMNS:
            cards += column_wcs_cards(i, cut)
    cards += [
        format_card("EXTNAME", "PIXELS", "name of extension"),
        format_card("INHERIT", True, "inherit the primary header"),
    ]
    cards += meta.image_cards
    cards += [
        format_card("WCS_MSEP", float(cut.wcs_msep), "[deg] max offset between cutout WCS and FFI WCS"),
        format_card("WCS_SIG", float(cut.wcs_sig), "[deg] rms offset between cutout WCS and FFI WCS"),
    ]
    cards += _inherited(meta, "PIXELS", primary, cards)
    return cards


# ------------------------------------------------------------------------------------------ APERTURE


def _aperture_cards(meta: CubeMeta, cut: TpfCutout, primary: list[str]) -> list[str]:
    """Return the APERTURE header cards of one cutout (without ``CHECKSUM``/``DATASUM``)."""
    ny, nx = cut.aperture.shape
    cd = cut.cd
    npix_missing = int((cut.aperture == 0).sum())
    cards = [
        format_card("XTENSION", "IMAGE", "Image extension"),
        format_card("BITPIX", 32, "array data type"),
        format_card("NAXIS", 2, "number of array dimensions"),
        format_card("NAXIS1", nx),
        format_card("NAXIS2", ny),
        format_card("PCOUNT", 0, "number of parameters"),
        format_card("GCOUNT", 1, "number of groups"),
        format_card("EXTNAME", "APERTURE", "extension name"),
        format_card("WCSAXES", 2, "Number of coordinate axes"),
        format_card("CRPIX1", float(cut.crpix[0]), "Pixel coordinate of reference point"),
        format_card("CRPIX2", float(cut.crpix[1]), "Pixel coordinate of reference point"),
        format_card("PC1_1", float(cd[0, 0]), "Coordinate transformation matrix element"),
        format_card("PC1_2", float(cd[0, 1]), "Coordinate transformation matrix element"),
        format_card("PC2_1", float(cd[1, 0]), "Coordinate transformation matrix element"),
        format_card("PC2_2", float(cd[1, 1]), "Coordinate transformation matrix element"),
        format_card("CDELT1", 1.0, "[deg] Coordinate increment at reference point"),
        format_card("CDELT2", 1.0, "[deg] Coordinate increment at reference point"),
        format_card("CUNIT1", "deg", "Units of coordinate increment and value"),
        format_card("CUNIT2", "deg", "Units of coordinate increment and value"),
        format_card("CTYPE1", "RA---TAN", "Right ascension, gnomonic projection"),
        format_card("CTYPE2", "DEC--TAN", "Declination, gnomonic projection"),
        format_card("CRVAL1", float(cut.crval[0]), "[deg] Coordinate value at reference point"),
        format_card("CRVAL2", float(cut.crval[1]), "[deg] Coordinate value at reference point"),
        format_card("LONPOLE", 180.0, "[deg] Native longitude of celestial pole"),
        format_card("LATPOLE", float(cut.crval[1]), "[deg] Native latitude of celestial pole"),
        format_card("RADESYS", "ICRS", "Equatorial coordinate system"),
        format_card("NPIXMISS", npix_missing, "Number of pixels off the CCD (padding)"),
        format_card("NPIXSAP", None, "Number of pixels in optimal aperture"),
        format_card("WCS_MSEP", float(cut.wcs_msep), "[deg] max offset between cutout WCS and FFI WCS"),
        format_card("WCS_SIG", float(cut.wcs_sig), "[deg] rms offset between cutout WCS and FFI WCS"),
        format_card("INHERIT", True, "inherit the primary header"),
    ]
    cards += _inherited(meta, "APERTURE", primary, cards)
    return cards


def aperture_hdu(meta: CubeMeta, cut: TpfCutout, primary: list[str]) -> list:
    """Serialise the APERTURE image HDU: 1 on the CCD, 0 for padding, with the linear WCS of the cutout."""
    return hdu_parts(_aperture_cards(meta, cut, primary), np.ascontiguousarray(cut.aperture, dtype=">i4"))


# ------------------------------------------------------------------------------------------ the file


class _TpfTemplate:
    """The three headers of every TPF of one cube and cutout shape, formatted once (:class:`HeaderTemplate`).

    Per target only the values that depend on it are written into them: ``RA_OBJ``/``DEC_OBJ``, ``OBJECT`` and
    ``TICID`` (in the primary header and wherever the extensions inherit them), the CCD corner, the linear WCS,
    ``WCS_MSEP``/``WCS_SIG`` and ``NPIXMISS``. The cards are those :func:`primary_cards`, ``_pixels_cards``
    and :func:`aperture_hdu` format (the same formatter, the same positions), so the bytes are identical.
    """

    def __init__(self, meta: CubeMeta, nx: int, ny: int, creator: str, version: str):
        dummy = TpfCutout(
            ra=0.0,
            dec=0.0,
            lims=np.array([[0, nx], [0, ny]]),
            block=np.empty((ny, nx, 0, 2), dtype=">f4"),
            aperture=np.ones((ny, nx), dtype=np.int32),
            crval=(0.0, 0.0),
            crpix=(0.0, 0.0),
            cd=np.zeros((2, 2)),
            wcs_msep=0.0,
            wcs_sig=0.0,
            corner=(0, 0),
        )
        primary = primary_cards(meta, 0.0, 0.0, creator, version)
        self.primary = HeaderTemplate(primary)
        self.pixels = HeaderTemplate(_pixels_cards(meta, dummy, primary))
        self.aperture = HeaderTemplate(_aperture_cards(meta, dummy, primary))
        at = self.primary.index
        # the primary's per-target cards (name -> index in the primary) and where each extension inherits them
        self.dynamic = {k: at(k) for k in ("RA_OBJ", "DEC_OBJ", "OBJECT", "TICID")}
        self.inherited = {}
        for which, tpl in (("PIXELS", self.pixels), ("APERTURE", self.aperture)):
            first = len(tpl.cards) - len(meta.cache[("inherit", which)])
            where = {p: first + j for j, p in enumerate(meta.cache[("inherit", which)])}
            self.inherited[which] = {k: where[i] for k, i in self.dynamic.items() if i in where}
        # value fields of the PIXELS header: name of the value -> the card indices it goes to (one per image column)
        px = self.pixels.index
        self.pixel_fields: dict[str, list[int]] = {"msep": [px("WCS_MSEP")], "sig": [px("WCS_SIG")]}
        for i, name, _ in table_layout(meta, nx, ny)[2]:
            if name in IMAGE_COLUMNS:
                for key, value in (
                    (f"1CRV{i}P", "col"),
                    (f"2CRV{i}P", "row"),
                    (f"1CRPX{i}", "crpix1"),
                    (f"2CRPX{i}", "crpix2"),
                    (f"1CRVL{i}", "crval1"),
                    (f"2CRVL{i}", "crval2"),
                    (f"11PC{i}", "pc11"),
                    (f"12PC{i}", "pc12"),
                    (f"21PC{i}", "pc21"),
                    (f"22PC{i}", "pc22"),
                ):
                    self.pixel_fields.setdefault(value, []).append(px(key))
        ap = self.aperture.index
        self.aperture_fields = [
            (ap(k), v)
            for k, v in (
                ("CRPIX1", "crpix1"),
                ("CRPIX2", "crpix2"),
                ("PC1_1", "pc11"),
                ("PC1_2", "pc12"),
                ("PC2_1", "pc21"),
                ("PC2_2", "pc22"),
                ("CRVAL1", "crval1"),
                ("CRVAL2", "crval2"),
                ("LATPOLE", "crval2"),
                ("NPIXMISS", "npixmiss"),
                ("WCS_MSEP", "msep"),
                ("WCS_SIG", "sig"),
            )
        ]

    def pending(self, meta: CubeMeta, cut: TpfCutout, scratch: int | None) -> PendingTpf:
        """Format one cutout's TPF headers (as :func:`tpf_parts` with ``deferred=True``).

        ``ValueError`` if a value does not fit its field.
        """
        (xmin, _), (ymin, _) = cut.lims
        col, row = cut.corner if cut.corner is not None else (int(xmin) + 1, int(ymin) + 1)
        cd = cut.cd
        values = {
            "col": int(col),
            "row": int(row),
            "crpix1": float(cut.crpix[0]),
            "crpix2": float(cut.crpix[1]),
            "crval1": float(cut.crval[0]),
            "crval2": float(cut.crval[1]),
            "pc11": float(cd[0, 0]),
            "pc12": float(cd[0, 1]),
            "pc21": float(cd[1, 0]),
            "pc22": float(cd[1, 1]),
            "msep": float(cut.wcs_msep),
            "sig": float(cut.wcs_sig),
            "npixmiss": int((cut.aperture == 0).sum()),
        }
        vf = {k: value_field(v) for k, v in values.items()}
        # the primary's per-target cards, patched as whole cards wherever they appear
        dynamic = {
            "RA_OBJ": format_card("RA_OBJ", float(cut.ra), "[deg] right ascension"),
            "DEC_OBJ": format_card("DEC_OBJ", float(cut.dec), "[deg] declination"),
        }
        if cut.object_name:
            dynamic["OBJECT"] = format_card("OBJECT", str(cut.object_name), "string version of target id")
        if cut.ticid is not None:
            dynamic["TICID"] = format_card("TICID", int(cut.ticid), "unique tess target identifier")
        primary = [(self.dynamic[k], card) for k, card in dynamic.items()]
        pixels = [(i, dynamic[k]) for k, i in self.inherited["PIXELS"].items() if k in dynamic]
        aperture = [(i, dynamic[k]) for k, i in self.inherited["APERTURE"].items() if k in dynamic]
        return PendingTpf(
            meta,
            cut,
            scratch,
            self.primary.hdu_parts(b"", cards=primary),
            self.pixels,
            self.pixels.patched([(where, vf[k]) for k, where in self.pixel_fields.items()], pixels),
            self.aperture.hdu_parts(
                np.ascontiguousarray(cut.aperture, dtype=">i4"),
                [(i, vf[k]) for i, k in self.aperture_fields],
                aperture,
            ),
        )


class PendingTpf:
    """A cutout's TPF with its headers formatted, its pixel table filled when it is written or its parts taken.

    Made by :func:`tpf_parts` with ``deferred=True``. :meth:`write` and :meth:`parts` may run on another thread
    than the one that formatted the headers (the pixel copies and the writes release the GIL); the cutout's block
    must stay unchanged until then, and the ``scratch`` buffer unused by any other call.
    """

    def __init__(
        self,
        meta: CubeMeta,
        cut: TpfCutout,
        scratch: int | None,
        head: list,
        pixels: HeaderTemplate,
        pixels_header: bytearray,
        tail: list,
    ):
        self.meta, self.cut, self.scratch = meta, cut, scratch
        self.head, self.tail = head, tail  # PRIMARY's parts; APERTURE's parts
        self.pixels, self.pixels_header = pixels, pixels_header  # PIXELS' template and its patched header

    def parts(self) -> list:
        """Return the TPF as buffers to write in order (the pixel table built in memory)."""
        rec, datasum = table_data(self.meta, self.cut, self.scratch)
        return self.head + self.pixels.finish(self.pixels_header, rec, datasum=datasum) + self.tail

    def write(self, path: str | os.PathLike) -> Path:
        """Write the TPF to ``path`` atomically, the pixel table chunk by chunk (:func:`write_table`).

        Compiled, the whole file is made in one call without the GIL (:func:`write_table_file`).
        """
        head = b"".join(self.head)
        written = write_table_file(
            path, head, self.pixels, self.pixels_header, self.tail, self.meta, self.cut, self.scratch
        )
        return written if written is not None else write_with(path, lambda fd: self._fill(fd, head))

    def _fill(self, fd: int, head: bytes) -> None:
        start = len(head) + len(self.pixels_header)
        written = write_table(fd, start, self.meta, self.cut, self.scratch)
        if written is None:  # a table that cannot be written in chunks
            pwrite_all(fd, [p for p in self.parts() if len(p)], 0)
            return
        nbytes, datasum = written
        header = self.pixels.finish(self.pixels_header, b"", datasum=datasum)[0]
        pwrite_all(fd, [head, header], 0)
        pwrite_all(fd, [b"\0" * (-nbytes % BLOCK), *(p for p in self.tail if len(p))], start + nbytes)


def tpf_parts(
    meta: CubeMeta,
    cut: TpfCutout,
    *,
    creator: str = "skycut",
    version: str | None = None,
    scratch: int | None = None,
    deferred: bool = False,
) -> list | PendingTpf:
    """Serialise the whole TPF file (three HDUs with checksums) as buffers, to write without joining.

    The headers come from the cube's :class:`_TpfTemplate` for the cutout's shape (made on first use), with the
    target's values written in; a value that does not fit its template field (an ``OBJECT`` longer than a card)
    has every card formatted instead, with the same result. ``scratch=k`` fills the pixel table in the cube's
    reused buffer number ``k`` (:func:`skycut.tess.tpf_table.table_data`; ``None``: a new one), so the parts are
    valid until the next call with the same ``k`` for the same cube; never two calls with one ``k`` at once.

    ``deferred=True`` formats the headers now and returns a :class:`PendingTpf`, whose pixel table is filled when
    it is written (``.write(path)``, chunk by chunk, no table in memory) or its parts taken (``.parts()``); that
    may be on another thread, so a batch's reading thread only reads and formats headers.
    """
    if version is None:
        from .. import __version__ as version
    ny, nx = cut.aperture.shape
    key = ("template", nx, ny, creator, version)
    template = meta.cache.get(key)
    if template is None:
        template = meta.cache[key] = _TpfTemplate(meta, nx, ny, creator, version)
    try:
        pending = template.pending(meta, cut, scratch)
    except ValueError:
        primary = primary_cards(meta, cut.ra, cut.dec, creator, version, cut.object_name, cut.ticid)
        pixels = HeaderTemplate(_pixels_cards(meta, cut, primary))
        head, tail = hdu_parts(primary, b""), aperture_hdu(meta, cut, primary)
        pending = PendingTpf(meta, cut, scratch, head, pixels, pixels.patched(), tail)
    return pending if deferred else pending.parts()


def tpf_bytes(
    meta: CubeMeta, cut: TpfCutout, *, creator: str = "skycut", version: str | None = None
) -> bytes:
    """Serialise the whole TPF file to bytes."""
    return b"".join(tpf_parts(meta, cut, creator=creator, version=version))


def tpf_hdulist(meta: CubeMeta, cut: TpfCutout):
    """Return the TPF as an in-memory astropy ``HDUList``.

    Parsed from :func:`tpf_bytes`, so identical to the file.
    """
    from astropy.io import fits

    return fits.HDUList.fromfile(io.BytesIO(tpf_bytes(meta, cut)))
