#!/usr/bin/env python3
"""Generate the golden fixtures of mailintake: fixtures/<group>/<name>.eml + <name>.expected.json.

Run from anywhere:  python3 scripts/make_fixtures.py          (writes fixtures/, README included)
                    python3 scripts/make_fixtures.py --check  (regenerates in memory, compares with disk)

Deterministic: fixed dates, Message-IDs and boundaries derived from the fixture name, every random
byte from a random.Random seeded with the fixture name. Byte-identical output needs the same zlib and
py7zr (the only PyPI dependency: `pip install py7zr`; used for the .7z archives) as the run that made
the committed files; CI never runs this script.

The expected files use SUBSET semantics (see fixtures/README.md): keys left out are not checked,
arrays must have the same length and match as multisets.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import email
import email.policy
import hashlib
import html
import io
import json
import random
import shutil
import struct
import sys
import tarfile
import gzip
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures"
CRLF = b"\r\n"
MIB = 1024 * 1024
TEN_MIB = 10 * MIB  # 10,485,760
HELP = "help@sevmiac.ru"
GROUPS = ["accept", "incomplete", "reject", "filter", "ignore", "followup", "charset", "layout",
          "attachments", "archives", "broken"]


def h(name: str, n: int = 8) -> bytes:
    return hashlib.sha256(name.encode("utf-8")).digest()[:n]


def hx(name: str, n: int = 8) -> str:
    return h(name, n).hex()


# =============================================================================================
# Transfer encodings, RFC 2047 / RFC 2231
# =============================================================================================

def b64_lines(data: bytes, width: int = 76) -> bytes:
    s = base64.b64encode(data)
    if not s:
        return b""
    return CRLF.join(s[i:i + width] for i in range(0, len(s), width)) + CRLF


def qp_encode(data: bytes) -> bytes:
    """Quoted-printable of text whose line breaks are LF (or CRLF); output lines end in CRLF."""
    out = []
    for line in data.replace(b"\r\n", b"\n").split(b"\n"):
        toks = []
        n = len(line)
        for i, c in enumerate(line):
            if (33 <= c <= 126 and c != 61) or (c in (32, 9) and i != n - 1):
                toks.append(bytes([c]))
            else:
                toks.append(b"=%02X" % c)
        cur = b""
        for t in toks:
            if len(cur) + len(t) > 75:
                out.append(cur + b"=")
                cur = b""
            cur += t
        out.append(cur)
    return CRLF.join(out)


def _ew_one(chunk: str, charset: str, mode: str) -> str:
    raw = chunk.encode(charset)
    if mode == "B":
        return f"=?{charset}?B?{base64.b64encode(raw).decode()}?="
    enc = []
    for c in raw:
        if c == 32:
            enc.append("_")
        elif (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c in b"!*+-/":
            enc.append(chr(c))
        else:
            enc.append("=%02X" % c)
    return f"=?{charset}?Q?{''.join(enc)}?="


def ew_words(text: str, charset: str = "UTF-8", mode: str = "B", limit: int = 75) -> list[str]:
    """Split text into RFC 2047 encoded-words of at most `limit` chars, never splitting a character."""
    words, chunk = [], ""
    for ch in text:
        if chunk and len(_ew_one(chunk + ch, charset, mode)) > limit:
            words.append(_ew_one(chunk, charset, mode))
            chunk = ch
        else:
            chunk += ch
    if chunk:
        words.append(_ew_one(chunk, charset, mode))
    return words


def ew(text: str, charset: str = "UTF-8", mode: str = "B", fold: bool = True) -> str:
    if text.isascii() and mode != "force":
        return text
    return ("\r\n " if fold else " ").join(ew_words(text, charset, mode))


def ew_single(text: str, charset: str = "UTF-8", mode: str = "B") -> str:
    """One encoded-word regardless of length (what Outlook and Mail.ru put into name= parameters)."""
    if text.isascii():
        return text
    return _ew_one(text, charset, mode)


def subj(text: str, how: str = "b-utf8", prefix: str = "") -> str:
    """Subject header value. how: b-utf8 / B-UTF8 (upper-case charset) / b-1251 / q-1251 / b-koi8 / q-utf8."""
    cs, mode = {
        "b-utf8": ("utf-8", "B"), "B-UTF8": ("UTF-8", "B"), "q-utf8": ("UTF-8", "Q"),
        "b-1251": ("windows-1251", "B"), "q-1251": ("windows-1251", "Q"), "b-koi8": ("KOI8-R", "B"),
    }[how]
    if text.isascii():
        return prefix + text
    return prefix + ew(text, cs, mode)


def addr(name: str | None, address: str, charset: str = "UTF-8", mode: str = "B", quote=False) -> str:
    if not name:
        return address if not address.startswith("<") else address
    if name.isascii():
        return f'"{name}" <{address}>' if quote or any(c in name for c in ',.@"') else f"{name} <{address}>"
    return f"{ew(name, charset, mode)} <{address}>"


ATTR_CHARS = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~")


def pct2231(s: str, charset="utf-8") -> str:
    return "".join(chr(c) if c in ATTR_CHARS else "%%%02X" % c for c in s.encode(charset))


# =============================================================================================
# Binary payloads (all generated here, nothing pasted)
# =============================================================================================

def png(seed: int = 0, w: int = 48, h_: int = 32) -> bytes:
    """A tiny valid PNG that looks like a screenshot: title bar, a few coloured boxes."""
    rnd = random.Random(seed)
    bg = (rnd.randrange(225, 256), rnd.randrange(225, 256), rnd.randrange(225, 256))
    accent = (rnd.randrange(0, 200), rnd.randrange(0, 200), rnd.randrange(0, 200))
    boxes = [(rnd.randrange(0, w - 8), rnd.randrange(6, h_ - 4), rnd.randrange(4, 16), rnd.randrange(2, 6))
             for _ in range(4)]
    rows = []
    for y in range(h_):
        row = bytearray([0])
        for x in range(w):
            if y < 5:
                c = (0, 84, 166)
            elif any(bx <= x < bx + bw and by <= y < by + bh for bx, by, bw, bh in boxes):
                c = accent
            else:
                c = bg
            row += bytes(c)
        rows.append(bytes(row))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h_, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


def jpeg(seed: int = 0) -> bytes:
    """A valid baseline JPEG, 8x8 grey, one-code Huffman tables; a COM segment makes each one unique."""
    comment = f"mailintake fixture {seed}".encode()
    seg = lambda m, d: b"\xff" + bytes([m]) + struct.pack(">H", len(d) + 2) + d
    return (b"\xff\xd8"
            + seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
            + seg(0xFE, comment)
            + seg(0xDB, b"\x00" + bytes([1] * 64))
            + seg(0xC0, struct.pack(">BHHB", 8, 8, 8, 1) + b"\x01\x11\x00")
            + seg(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
            + seg(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")
            + seg(0xDA, b"\x01\x01\x00\x00\x3f\x00")
            + b"\x3f" + b"\xff\xd9")


def gif(seed: int = 0) -> bytes:
    rnd = random.Random(seed)
    gct = bytes([rnd.randrange(256) for _ in range(3)]) + b"\xff\xff\xff"
    return (b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + gct
            + b"\x21\xf9\x04\x01\x00\x00\x00\x00"
            + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00" + b"\x3b")


def bmp(w: int = 8, h_: int = 6) -> bytes:
    stride = (w * 3 + 3) & ~3
    pix = bytearray()
    for y in range(h_):
        row = bytearray()
        for x in range(w):
            row += bytes([(x * 30) & 255, (y * 40) & 255, 200])
        pix += row + bytes(stride - len(row))
    fh = b"BM" + struct.pack("<IHHI", 54 + len(pix), 0, 0, 54)
    ih = struct.pack("<IiiHHIIiiII", 40, w, h_, 1, 24, 0, len(pix), 2835, 2835, 0, 0)
    return fh + ih + bytes(pix)


def tiff() -> bytes:
    entries = [(256, 3, 1, 4), (257, 3, 1, 4), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 0), (278, 3, 1, 4), (279, 4, 1, 16)]
    ifd_len = 2 + 12 * len(entries) + 4
    data_off = 8 + ifd_len
    ifd = struct.pack("<H", len(entries))
    for tag, typ, cnt, val in entries:
        if tag == 273:
            val = data_off
        ifd += struct.pack("<HHII", tag, typ, cnt, val) if typ == 4 else struct.pack("<HHIHH", tag, typ, cnt, val, 0)
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(range(0, 256, 16))


def isobmff(brand: bytes, compat: list[bytes], payload: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    ftyp = brand + struct.pack(">I", 0) + b"".join(compat)
    body = bytes(rnd.randrange(256) for _ in range(payload))
    return (struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp
            + struct.pack(">I", 8 + len(body)) + b"mdat" + body)


def mp4(seed: int = 0, payload: int = 3000) -> bytes:
    return isobmff(b"isom", [b"isom", b"iso2", b"avc1", b"mp41"], payload, seed)


def heic(seed: int = 0) -> bytes:
    return isobmff(b"heic", [b"mif1", b"heic"], 1500, seed)


def avi(seed: int = 0, payload: int = 2000) -> bytes:
    rnd = random.Random(seed)
    avih = b"avih" + struct.pack("<I", 56) + struct.pack("<14I", 40000, 0, 0, 0x10, 25, 0, 1, 0, 320, 240, 0, 0, 0, 0)
    hdrl = b"LIST" + struct.pack("<I", 4 + len(avih)) + b"hdrl" + avih
    movi_data = bytes(rnd.randrange(256) for _ in range(payload))
    movi = b"LIST" + struct.pack("<I", 4 + len(movi_data)) + b"movi" + movi_data
    body = b"AVI " + hdrl + movi
    return b"RIFF" + struct.pack("<I", len(body)) + body


def cfb(text: str) -> bytes:
    """An OLE2 compound file header (the .doc/.xls magic) followed by two sectors of text."""
    hdr = bytearray(512)
    hdr[0:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    struct.pack_into("<HHHHH", hdr, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<I", hdr, 44, 1)        # number of FAT sectors
    struct.pack_into("<I", hdr, 48, 1)        # first directory sector
    struct.pack_into("<I", hdr, 56, 4096)     # mini stream cutoff
    struct.pack_into("<I", hdr, 60, 0xFFFFFFFE)
    struct.pack_into("<I", hdr, 68, 0xFFFFFFFE)
    struct.pack_into("<I", hdr, 76, 0)        # DIFAT[0] = sector 0
    for i in range(1, 109):
        struct.pack_into("<I", hdr, 76 + 4 * i, 0xFFFFFFFF)
    fat = bytearray(b"\xff" * 512)
    struct.pack_into("<III", fat, 0, 0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFE)
    body = text.encode("utf-16-le")[:512]
    return bytes(hdr) + bytes(fat) + body + bytes(512 - len(body))


def exe_pe() -> bytes:
    b = bytearray(1024)
    b[0:2] = b"MZ"
    struct.pack_into("<H", b, 2, 0x90)
    struct.pack_into("<I", b, 0x3C, 0x80)
    stub = b"This program cannot be run in DOS mode.\r\r\n$"
    b[0x4E:0x4E + len(stub)] = stub
    b[0x80:0x84] = b"PE\x00\x00"
    struct.pack_into("<HHIIIHH", b, 0x84, 0x8664, 1, 0x6553F100, 0, 0, 0xF0, 0x0022)
    struct.pack_into("<H", b, 0x98, 0x20B)  # PE32+ optional header magic
    return bytes(b)


def elf() -> bytes:
    b = bytearray(512)
    b[0:16] = b"\x7fELF\x02\x01\x01" + bytes(9)
    struct.pack_into("<HHIQQQIHHHHHH", b, 16, 2, 0x3E, 1, 0x401000, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    return bytes(b)


def macho() -> bytes:
    b = bytearray(512)
    struct.pack_into("<IiiIIII", b, 0, 0xFEEDFACF, 0x01000007, 3, 2, 0, 0, 0x00200085)
    return bytes(b)


def pdf(text: str = "mailintake", target: int | None = None) -> bytes:
    """A small valid PDF; with `target` a comment block pads it to exactly that many bytes."""
    def build(padlen: int) -> bytes:
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        if padlen:
            line = b"%" + b"0" * 70 + b"\n"
            full, rest = divmod(padlen, len(line))
            out += line * full
            if rest:
                out += (b"%" + b"0" * (rest - 2) + b"\n") if rest >= 2 else b"\n"
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                b"/Resources << /Font << /F1 5 0 R >> >> >>",
                b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
        offs = []
        for i, o in enumerate(objs, 1):
            offs.append(len(out))
            out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
        for o in offs:
            out += b"%010d 00000 n \n" % o
        out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
        return bytes(out)

    if target is None:
        return build(0)
    pad = target - len(build(0))
    for _ in range(10):
        b = build(pad)
        if len(b) == target:
            return b
        pad += target - len(b)
    raise RuntimeError("pdf padding did not converge")


def rtf(text: str) -> bytes:
    body = "".join(c if ord(c) < 128 else "\\'%02x" % c.encode("cp1251")[0] for c in text)
    return ("{\\rtf1\\ansi\\ansicpg1251\\deff0{\\fonttbl{\\f0 Times New Roman;}}\\f0\\fs24 " + body + "\\par}\r\n").encode("ascii")


# ---------------------------------------------------------------------------------------------
# ZIP (own writer: fixed dates, ZipCrypto, odd names, symlinks, declared sizes)
# ---------------------------------------------------------------------------------------------

def _crc_table():
    t = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (0xEDB88320 ^ (c >> 1)) if c & 1 else (c >> 1)
        t.append(c)
    return t


CRC_TABLE = _crc_table()


def zipcrypto(data: bytes, password: bytes, crc: int, rnd: random.Random) -> bytes:
    """Traditional PKWARE encryption (APPNOTE 6.1): 12-byte header, last byte = CRC high byte."""
    k = [0x12345678, 0x23456789, 0x34567890]

    def upd(c):
        k[0] = CRC_TABLE[(k[0] ^ c) & 0xFF] ^ (k[0] >> 8)
        k[1] = (k[1] + (k[0] & 0xFF)) & 0xFFFFFFFF
        k[1] = (k[1] * 134775813 + 1) & 0xFFFFFFFF
        k[2] = CRC_TABLE[(k[2] ^ (k[1] >> 24)) & 0xFF] ^ (k[2] >> 8)

    for c in password:
        upd(c)
    out = bytearray()
    for c in bytes(rnd.randrange(256) for _ in range(11)) + bytes([crc >> 24]) + data:
        t = (k[2] | 2) & 0xFFFF
        out.append(c ^ (((t * (t ^ 1)) >> 8) & 0xFF))
        upd(c)
    return bytes(out)


def dos_datetime(dt=(2023, 11, 14, 9, 30, 0)):
    y, mo, d, hh, mi, ss = dt
    return (hh << 11) | (mi << 5) | (ss // 2), ((y - 1980) << 9) | (mo << 5) | d


def deflate_raw(data: bytes) -> bytes:
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    return co.compress(data) + co.flush()


def zip_build(entries: list[dict], seed: int = 0) -> bytes:
    """entries: {name: str|bytes, data: bytes, method: 8|0, password: bytes, utf8: bool,
    external_attr: int, unix: bool, comp: (bytes, crc, usize) precomputed}."""
    rnd = random.Random(seed)
    out, central = bytearray(), bytearray()
    for e in entries:
        name = e["name"]
        nb = name.encode("utf-8") if isinstance(name, str) else name
        flags = 0
        if e.get("utf8", isinstance(name, str) and not name.isascii()):
            flags |= 0x800
        method = e.get("method", 8)
        if "comp" in e:
            comp, crc, usize = e["comp"]
        else:
            data = e["data"]
            crc, usize = zlib.crc32(data) & 0xFFFFFFFF, len(data)
            comp = deflate_raw(data) if method == 8 else data
        if e.get("password"):
            flags |= 1
            comp = zipcrypto(comp, e["password"], crc, rnd)
        t, d = dos_datetime(e.get("date", (2023, 11, 14, 9, 30, 0)))
        ver = 20 if (method == 8 or flags & 1) else 10
        made_by = (3 << 8 | 30) if e.get("unix") else 20
        ext = e.get("external_attr", 0x20 if not e.get("unix") else (0o100644 << 16))
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, ver, flags, method, t, d, crc, len(comp), usize, len(nb), 0) + nb
        out += comp
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, made_by, ver, flags, method, t, d, crc,
                               len(comp), usize, len(nb), 0, 0, 0, 0, ext, off) + nb
    cd = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), cd, 0)
    return bytes(out)


def office_zip(files: list[tuple[str, str]], stored_first: bool = False) -> bytes:
    ents = []
    for i, (n, content) in enumerate(files):
        ents.append({"name": n, "data": content.encode("utf-8"), "method": 0 if (stored_first and i == 0) else 8,
                     "date": (2023, 11, 13, 16, 20, 0)})
    return zip_build(ents)


def docx(text: str) -> bytes:
    paras = "".join(f"<w:p><w:r><w:t xml:space=\"preserve\">{html.escape(p)}</w:t></w:r></w:p>" for p in text.split("\n"))
    return office_zip([
        ("[Content_Types].xml",
         '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
         '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
         '<Default Extension="xml" ContentType="application/xml"/>'
         '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'),
        ("_rels/.rels",
         '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'),
        ("word/document.xml",
         '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
         f'<w:body>{paras}</w:body></w:document>'),
    ])


def xlsx(rows: list[list[str]]) -> bytes:
    cells = "".join("<row r=\"%d\">%s</row>" % (i + 1, "".join(
        f'<c t="inlineStr"><is><t>{html.escape(v)}</t></is></c>' for v in r)) for i, r in enumerate(rows))
    return office_zip([
        ("[Content_Types].xml",
         '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
         '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
         '<Default Extension="xml" ContentType="application/xml"/>'
         '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
         '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'),
        ("_rels/.rels",
         '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        ("xl/workbook.xml",
         '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
         'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Лист1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        ("xl/_rels/workbook.xml.rels",
         '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
        ("xl/worksheets/sheet1.xml",
         '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
         f'<sheetData>{cells}</sheetData></worksheet>'),
    ])


def odf(mimetype: str, text: str) -> bytes:
    return office_zip([
        ("mimetype", mimetype),
        ("META-INF/manifest.xml",
         '<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
         f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>'
         '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>'),
        ("content.xml",
         '<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
         'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:text>'
         f'<text:p>{html.escape(text)}</text:p></office:text></office:body></office:document-content>'),
    ], stored_first=True)


def targz(files: list[tuple[str, bytes]]) -> bytes:
    tb = io.BytesIO()
    with tarfile.open(fileobj=tb, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for n, d in files:
            ti = tarfile.TarInfo(n)
            ti.size, ti.mtime, ti.mode, ti.uname, ti.gname = len(d), 1699950000, 0o644, "user", "user"
            t.addfile(ti, io.BytesIO(d))
    gb = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gb, mtime=0) as g:
        g.write(tb.getvalue())
    return gb.getvalue()


# ---------------------------------------------------------------------------------------------
# 7z via py7zr (timestamps and AES IVs pinned for determinism)
# ---------------------------------------------------------------------------------------------

def sevenzip(files: list[tuple[str, bytes]], password: str | None = None, header_encryption: bool = False,
             seed: int = 0, raw_names: bool = False) -> bytes:
    import py7zr
    import py7zr.compressor
    import py7zr.helpers
    fixed = _dt.datetime(2023, 11, 14, 9, 30, 0, tzinfo=_dt.timezone.utc).timestamp()
    rnd = random.Random(seed)
    saved = (py7zr.helpers.ArchiveTimestamp.from_now, py7zr.compressor.get_random_bytes)
    py7zr.helpers.ArchiveTimestamp.from_now = classmethod(lambda cls: cls.from_datetime(fixed))
    py7zr.compressor.get_random_bytes = lambda n: bytes(rnd.randrange(256) for _ in range(n))
    try:
        b = io.BytesIO()
        with py7zr.SevenZipFile(b, "w", password=password, header_encryption=header_encryption) as z:
            for n, d in files:
                if raw_names:
                    z._writestr(d, n)  # bypasses py7zr's own path check (for the ../ fixture)
                else:
                    z.writestr(d, n)
        return b.getvalue()
    finally:
        py7zr.helpers.ArchiveTimestamp.from_now, py7zr.compressor.get_random_bytes = saved


# ---------------------------------------------------------------------------------------------
# RAR 4.x (hand-built; see fixtures/README.md "RAR 4.x writer")
# ---------------------------------------------------------------------------------------------

def rar_unicode_name(name: str) -> bytes:
    """RAR 2.9+ file name with LHD_UNICODE: OEM (cp866) name, NUL, then the EncodeFileName stream:
    HighByte, then per 4 characters one flag byte (2 bits each, MSB first; 0 = low byte only,
    1 = low byte with HighByte as high byte, 2 = two bytes little-endian) followed by their data."""
    oem = name.encode("cp866", errors="replace")
    highs = [ord(c) >> 8 for c in name if ord(c) >= 256]
    high = max(set(highs), key=highs.count) if highs else 0
    enc = bytearray([high])
    chars = [ord(c) for c in name]
    for i in range(0, len(chars), 4):
        group = chars[i:i + 4]
        flags, data = 0, bytearray()
        for j, c in enumerate(group):
            if c < 256:
                op, d = 0, bytes([c])
            elif c >> 8 == high:
                op, d = 1, bytes([c & 0xFF])
            else:
                op, d = 2, struct.pack("<H", c)
            flags |= op << (6 - 2 * j)
            data += d
        enc += bytes([flags]) + data
    return oem + b"\x00" + bytes(enc)


def rar_build(files: list[tuple[str, bytes]], encrypted: bool = False, header_encrypted: bool = False,
              seed: int = 0) -> bytes:
    rnd = random.Random(seed)

    def block(htype: int, flags: int, body: bytes) -> bytes:
        hdr = struct.pack("<BHH", htype, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(hdr) & 0xFFFF) + hdr

    out = bytearray(b"Rar!\x1a\x07\x00")
    out += block(0x73, 0x0080 if header_encrypted else 0x0000, struct.pack("<HI", 0, 0))
    if header_encrypted:
        # With MHD_PASSWORD every following header is AES-encrypted (8-byte salt + 16-byte blocks):
        # without the password nothing after the main header can be read.
        out += bytes(rnd.randrange(256) for _ in range(8 + 16 * 12))
        return bytes(out)
    t, d = dos_datetime()
    ftime = (d << 16) | t
    for name, data in files:
        flags = 0x8000  # LONG_BLOCK: ADD_SIZE (PACK_SIZE) present
        if name.isascii():
            nb = name.encode("ascii")
        else:
            flags |= 0x0200  # LHD_UNICODE
            nb = rar_unicode_name(name)
        crc = zlib.crc32(data) & 0xFFFFFFFF
        extra = b""
        if encrypted:
            flags |= 0x0004 | 0x0400  # LHD_PASSWORD | LHD_SALT
            extra = bytes(rnd.randrange(256) for _ in range(8))
            packed = bytes(rnd.randrange(256) for _ in range((len(data) + 15) // 16 * 16))
        else:
            packed = data
        body = struct.pack("<IIBIIBBHI", len(packed), len(data), 2, crc, ftime, 29 if encrypted else 20, 0x30,
                           len(nb), 0x20) + nb + extra
        out += block(0x74, flags, body) + packed
    out += block(0x7B, 0x4000, b"")
    return bytes(out)


# =============================================================================================
# MIME building
# =============================================================================================

def header_bytes(name: str, value) -> bytes:
    if isinstance(value, bytes):
        return name.encode() + b": " + value + CRLF
    return f"{name}: {value}".encode("utf-8") + CRLF


def part(headers: list, body: bytes) -> bytes:
    return b"".join(header_bytes(n, v) for n, v in headers) + CRLF + body


def multipart(ctype: str, boundary: str, children: list[bytes], headers_extra: list = (),
              preamble: bytes = b"", epilogue: bytes = b"", close: bool = True, ct_extra: str = "") -> bytes:
    hs = [("Content-Type", f'{ctype};{ct_extra}\r\n\tboundary="{boundary}"')] + list(headers_extra)
    # ct_extra, when given, is one or more ";"-terminated parameters (e.g. '\r\n\ttype="multipart/alternative";')
    return part(hs, multipart_body(boundary, children, preamble, epilogue, close))


def multipart_body(boundary: str, children: list[bytes], preamble: bytes = b"", epilogue: bytes = b"",
                   close: bool = True) -> bytes:
    b = boundary.encode()
    body = bytearray(preamble)
    for c in children:
        body += b"--" + b + CRLF + c + CRLF
    if close:
        body += b"--" + b + b"--" + CRLF
    body += epilogue
    return bytes(body)


def encode_body(text: str, charset: str, cte: str) -> bytes:
    raw = text.replace("\r\n", "\n").encode(charset)
    if cte == "base64":
        return b64_lines(raw)
    if cte == "quoted-printable":
        return qp_encode(raw)
    return raw.replace(b"\n", CRLF)


def text_part(text: str, subtype: str = "plain", charset: str = "utf-8", cte: str = "quoted-printable",
              ct_extra: str = "", quote_cs: bool = True, extra: list = ()) -> bytes:
    cs = f'"{charset}"' if quote_cs else charset
    return part([("Content-Type", f"text/{subtype}; charset={cs}{ct_extra}"),
                 ("Content-Transfer-Encoding", cte)] + list(extra), encode_body(text, charset, cte))


def att_part(data: bytes, filename: str | None, ctype: str, style: str = "outlook", inline: bool = False,
             cid: str | None = None, cte: str = "base64", extra: list = ()) -> bytes:
    """One file part the way a given client writes it."""
    fn = filename or ""
    hs = []
    if style == "outlook":
        n = ew_single(fn, "utf-8")
        hs.append(("Content-Type", f'{ctype};\r\n\tname="{n}"' if fn else ctype))
        if fn:
            hs.append(("Content-Description", n))
        disp = "inline" if inline else "attachment"
        if fn:
            hs.append(("Content-Disposition", f'{disp};\r\n\tfilename="{n}"; size={len(data)};\r\n'
                                              f'\tcreation-date="Tue, 14 Nov 2023 06:12:33 GMT";\r\n'
                                              f'\tmodification-date="Tue, 14 Nov 2023 06:12:33 GMT"'))
        else:
            hs.append(("Content-Disposition", disp))
    elif style == "outlook1251":
        n = ew_single(fn, "windows-1251")
        hs.append(("Content-Type", f'{ctype};\r\n\tname="{n}"'))
        hs.append(("Content-Disposition", f'{"inline" if inline else "attachment"};\r\n\tfilename="{n}"'))
    elif style == "tb":  # Thunderbird: RFC 2047 name=, RFC 2231 filename*=
        n = ew_single(fn, "UTF-8")
        hs.append(("Content-Type", f'{ctype}; name="{n}"' if fn else ctype))
        if fn.isascii():
            hs.append(("Content-Disposition", f'{"inline" if inline else "attachment"}; filename="{fn}"'))
        else:
            hs.append(("Content-Disposition", f"{'inline' if inline else 'attachment'};\r\n filename*=UTF-8''{pct2231(fn)}"))
    elif style == "tb2231cont":  # RFC 2231 continuations; a chunk never splits a character
        chunks, cur = [], ""
        for ch in fn:
            e = pct2231(ch)
            if cur and len(cur) + len(e) > 54:
                chunks.append(cur)
                cur = ""
            cur += e
        chunks.append(cur)
        n = ew_single(fn, "UTF-8")
        ps = ";\r\n ".join((f"filename*{idx}*=UTF-8''{c}" if idx == 0 else f"filename*{idx}*={c}")
                          for idx, c in enumerate(chunks))
        hs.append(("Content-Type", f'{ctype}; name="{n}"'))
        hs.append(("Content-Disposition", f"attachment;\r\n {ps}"))
    elif style == "mailru":
        n = ew_single(fn, "UTF-8")
        hs.append(("Content-Type", f'{ctype}; name="{n}"'))
        hs.append(("Content-Disposition", f'attachment; filename="{n}"'))
    elif style == "bat":
        n = ew_single(fn, "windows-1251")
        hs.append(("Content-Type", f'{ctype};\r\n name="{n}"'))
        hs.append(("Content-Disposition", f'attachment;\r\n filename="{n}"'))
    elif style == "iphone":
        hs.append(("Content-Type", f"{ctype};\r\n\tname={fn}" if fn.isascii() and " " not in fn else f'{ctype};\r\n\tname="{ew_single(fn)}"'))
        hs.append(("Content-Disposition", f"{'inline' if inline else 'attachment'};\r\n\tfilename={fn}"
                   if fn.isascii() and " " not in fn else f'attachment;\r\n\tfilename="{ew_single(fn)}"'))
    elif style == "bare":  # name only in Content-Type, no Content-Disposition
        hs.append(("Content-Type", f'{ctype}; name="{ew_single(fn)}"' if fn else ctype))
    else:
        raise ValueError(style)
    hs.append(("Content-Transfer-Encoding", cte))
    if cid:
        hs.append(("Content-ID", f"<{cid}>"))
    hs += list(extra)
    if cte == "base64":
        body = b64_lines(data)
    elif cte == "quoted-printable":
        body = qp_encode(data)
    else:
        body = data
    return part(hs, body)


def message(headers: list, body_part: bytes) -> bytes:
    return b"".join(header_bytes(n, v) for n, v in headers) + body_part


# =============================================================================================
# Per-fixture context: fixed date / ids / boundaries / seeded random
# =============================================================================================

BASE_DATE = _dt.datetime(2023, 11, 13, 8, 0, 0, tzinfo=_dt.timezone(_dt.timedelta(hours=3)))


class Ctx:
    def __init__(self, group: str, name: str):
        self.key = f"{group}/{name}"
        self.seed = int.from_bytes(h(self.key, 4), "big")
        self.rnd = random.Random(self.seed)
        mins = int.from_bytes(h(self.key + "#date", 4), "big") % (4 * 24 * 60)
        self.dt = BASE_DATE + _dt.timedelta(minutes=mins, seconds=self.seed % 60)
        self._b = 0

    @property
    def date(self) -> str:
        return self.dt.strftime("%a, %d %b %Y %H:%M:%S +0300")

    def boundary(self, style: str = "outlook") -> str:
        self._b += 1
        x = hx(f"{self.key}#b{self._b}", 8).upper()
        if style == "outlook":
            return f"----=_NextPart_{self._b - 1:03d}_{x[:4]}_{x[4:12]}.{x[8:16]}"
        if style == "tb":
            return "------------" + hx(f"{self.key}#b{self._b}", 12)[:24].upper()
        if style == "bat":
            return "----------" + x[:16]
        if style == "mailru":
            return "--ALT--" + hx(f"{self.key}#b{self._b}", 16) + "1699950000"
        if style == "apple":
            return "Apple-Mail-" + "-".join([x[:8], x[8:12], x[12:16]])
        if style == "yandex":
            return "----==--bound." + str(int(x[:8], 16))
        return "=_" + x

    def msgid(self, style: str = "outlook", domain: str = "sev.gov.ru") -> str:
        x = hx(self.key + "#mid", 16)
        if style == "outlook":
            return f"<0{x[:5]}da{x[5:11]}${x[11:19]}${x[19:27]}$@{domain}>"
        if style == "tb":
            return f"<{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}@{domain}>"
        if style == "bat":
            return f"<{int(x[:8], 16)}.{self.dt.strftime('%Y%m%d%H%M%S')}@{domain}>"
        if style == "mailru":
            return f"<{int(self.dt.timestamp())}.{int(x[:6], 16)}@f{int(x[6:8], 16)}.i.mail.ru>"
        if style == "yandex":
            return f"<{int(x[:10], 16) % 10**7}{int(self.dt.timestamp())}@mail.yandex.ru>"
        if style == "apple":
            return f"<{x[:8].upper()}-{x[8:12].upper()}-{x[12:16].upper()}-{x[16:20].upper()}-{x[20:32].upper()}@{domain}>"
        return f"<{x}@{domain}>"

    def thread_index(self) -> str:
        return base64.b64encode(b"\x01\xda\x16\xc2" + h(self.key + "#ti", 18)).decode()

    def received(self, host: str = "mail.sev.gov.ru", ip: str = "10.10.1.25") -> str:
        return (f"from {host} ({host} [{ip}])\r\n\tby mx.sevmiac.ru (Postfix) with ESMTPS id {hx(self.key + '#q', 5).upper()}\r\n"
                f"\tfor <{HELP}>; {self.date}")


# =============================================================================================
# Client profiles
# =============================================================================================

def html_escape_text(line: str, entities: bool = False) -> str:
    s = html.escape(line, quote=False)
    if entities:
        s = s.replace("«", "&laquo;").replace("»", "&raquo;").replace("—", "&mdash;").replace("–", "&ndash;")
    return s


OUTLOOK_HEAD = (
    '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
    'xmlns:w="urn:schemas-microsoft-com:office:word" xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" '
    'xmlns="http://www.w3.org/TR/REC-html40"><head><meta http-equiv=Content-Type content="text/html; charset={cs}">'
    '<meta name=Generator content="Microsoft Word 15 (filtered medium)"><style><!--\n'
    '/* Font Definitions */\n@font-face\n\t{{font-family:"Cambria Math";\n\tpanose-1:2 4 5 3 5 4 6 3 2 4;}}\n'
    '@font-face\n\t{{font-family:Calibri;\n\tpanose-1:2 15 5 2 2 2 4 3 2 4;}}\n'
    '/* Style Definitions */\np.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{{margin:0cm;\n\tfont-size:11.0pt;\n'
    '\tfont-family:"Calibri",sans-serif;\n\tmso-fareast-language:EN-US;}}\n'
    'span.EmailStyle17\n\t{{mso-style-type:personal-compose;\n\tfont-family:"Calibri",sans-serif;\n\tcolor:windowtext;}}\n'
    '.MsoChpDefault\n\t{{mso-style-type:export-only;\n\tfont-family:"Calibri",sans-serif;\n\tmso-fareast-language:EN-US;}}\n'
    '@page WordSection1\n\t{{size:612.0pt 792.0pt;\n\tmargin:2.0cm 42.5pt 2.0cm 3.0cm;}}\n'
    'div.WordSection1\n\t{{page:WordSection1;}}\n--></style><!--[if gte mso 9]><xml>\n'
    '<o:shapedefaults v:ext="edit" spidmax="1026" />\n</xml><![endif]--><!--[if gte mso 9]><xml>\n'
    '<o:shapelayout v:ext="edit">\n<o:idmap v:ext="edit" data="1" />\n</o:shapelayout></xml><![endif]--></head>'
    '<body lang=RU link="#0563C1" vlink="#954F72" style=\'word-wrap:break-word\'><div class=WordSection1>'
)


def outlook_html(text: str, cs: str, cids: list[str] = (), table: list[tuple[str, list[str]]] | None = None,
                 table_after: int = 0, entities: bool = False) -> str:
    """Word-style HTML: one <p class=MsoNormal> per line; optional two-column table after line `table_after`."""
    ps = []
    lines = text.split("\n")

    def para(l):
        if l.strip() == "":
            return "<p class=MsoNormal><o:p>&nbsp;</o:p></p>"
        return f"<p class=MsoNormal>{html_escape_text(l, entities)}<o:p></o:p></p>"

    for i, l in enumerate(lines):
        ps.append(para(l))
        if table is not None and i + 1 == table_after:
            rows = []
            for label, vals in table:
                cell2 = "".join(f"<p class=MsoNormal>{html_escape_text(v, entities)}<o:p></o:p></p>" for v in vals)
                rows.append(
                    "<tr><td width=246 valign=top style='width:184.25pt;border:solid windowtext 1.0pt;padding:0cm 5.4pt 0cm 5.4pt'>"
                    f"<p class=MsoNormal><b>{html_escape_text(label, entities)}<o:p></o:p></b></p></td>"
                    "<td width=392 valign=top style='width:294.0pt;border:solid windowtext 1.0pt;border-left:none;padding:0cm 5.4pt 0cm 5.4pt'>"
                    f"{cell2}</td></tr>")
            ps.append("<table class=MsoTableGrid border=1 cellspacing=0 cellpadding=0 style='border-collapse:collapse;border:none'>"
                      + "".join(rows) + "</table>")
    for i, c in enumerate(cids):
        ps.append(f"<p class=MsoNormal><img width=640 height=400 style='width:6.6666in;height:4.1666in' "
                  f"id=\"Рисунок_x0020_{i + 1}\" src=\"cid:{c}\"><o:p></o:p></p>")
    return OUTLOOK_HEAD.format(cs=cs) + "".join(ps) + "</div></body></html>"


class Mail:
    """Common inputs for the client builders."""

    def __init__(self, ctx: Ctx, from_name: str | None, from_addr: str, subject: str | None, text: str,
                 attachments: list = (), headers_extra: list = (), subject_raw: str | None = None,
                 from_raw: str | None = None):
        self.ctx, self.from_name, self.from_addr, self.subject, self.text = ctx, from_name, from_addr, subject, text
        self.attachments = list(attachments)  # [(filename, data, ctype)]
        self.headers_extra = list(headers_extra)
        self.subject_raw, self.from_raw = subject_raw, from_raw


def _subject_header(m: Mail, how: str, prefix: str = ""):
    if m.subject_raw is not None:
        return [("Subject", m.subject_raw)]
    if m.subject is None:
        return []
    return [("Subject", subj(m.subject, how, prefix))]


def _from_header(m: Mail, cs="UTF-8", mode="B", quote=False):
    if m.from_raw is not None:
        return [("From", m.from_raw)] if m.from_raw != "\0" else []  # "\0": no From header at all
    return [("From", addr(m.from_name, m.from_addr, cs, mode, quote))]


def outlook(m: Mail, charset: str = "windows-1251", inline: list = (), subject_how: str | None = None,
            subject_prefix: str = "", html_text: str | None = None, table=None, table_after=0, entities=False,
            plain_text: str | None = None, related_html_cid: bool = False) -> bytes:
    c = m.ctx
    subject_how = subject_how or ("b-1251" if charset == "windows-1251" else "b-utf8")
    cs_h = "windows-1251" if charset == "windows-1251" else "utf-8"
    plain = plain_text if plain_text is not None else m.text
    html_src = html_text if html_text is not None else m.text
    cid_names = []
    inline_parts = []
    suffix = hx(c.key + "#cid", 4).upper() + "." + hx(c.key + "#cid2", 4).upper()
    for fn, data, ctype in inline:
        cid = f"{fn}@01DA16C2.{suffix}" if fn else f"part{len(cid_names) + 1}.{suffix}@sev.gov.ru"
        cid_names.append(cid)
        inline_parts.append(att_part(data, fn, ctype, "outlook", inline=True, cid=cid))
    alt = multipart("multipart/alternative", c.boundary(), [
        text_part(plain, "plain", cs_h, "quoted-printable"),
        text_part(outlook_html(html_src, cs_h, cid_names, table, table_after, entities), "html", cs_h,
                  "quoted-printable", extra=[("Content-ID", f"<body.{suffix}@sev.gov.ru>")] if related_html_cid else []),
    ])
    body = alt
    if inline_parts:
        body = multipart("multipart/related", c.boundary(), [alt] + inline_parts, ct_extra='\r\n\ttype="multipart/alternative";')
    if m.attachments:
        body = multipart("multipart/mixed", c.boundary(), [body] + [att_part(d, fn, ct, "outlook") for fn, d, ct in m.attachments])
    hs = [("Received", c.received())]
    hs += _from_header(m, cs_h, "B")
    hs += [("To", f'"{HELP}" <{HELP}>')]
    hs += _subject_header(m, subject_how, subject_prefix)
    hs += [("Date", c.date), ("Message-ID", c.msgid("outlook")), ("MIME-Version", "1.0")]
    top = body
    # move the Content-Type of the top part below MIME-Version, then the Outlook trailer headers
    return message(hs, top[:top.index(CRLF + CRLF) + 2] + b"".join(header_bytes(n, v) for n, v in [
        ("X-Mailer", "Microsoft Outlook 16.0"), ("Thread-Index", c.thread_index()),
        ("Content-Language", "ru")] + m.headers_extra) + top[top.index(CRLF + CRLF) + 2:])


def flow(text: str, width: int = 72) -> str:
    """RFC 3676 format=flowed: soft-break long lines after a space, space-stuff where needed."""
    out = []
    for line in text.split("\n"):
        if line == "-- ":
            out.append(line)
            continue
        if line.startswith((" ", "From ")):
            line = " " + line
        while len(line) > width and " " in line[:width]:
            k = line.rfind(" ", 0, width)
            out.append(line[:k + 1])
            line = line[k + 1:]
        out.append(line.rstrip(" ") if not line.endswith(" ") else line.rstrip(" "))
    return "\n".join(out)


def thunderbird(m: Mail, flowed: bool | None = None, charset: str = "UTF-8", cte: str = "8bit", att_style: str = "tb",
                lf_only: bool = False) -> bytes:
    c = m.ctx
    if flowed is None:
        # Thunderbird's default is format=flowed. It is used where it is the point of the fixture (flowed=True)
        # and where no parsed value is pinned; elsewhere the sender has switched it off, so that a fixture
        # about attachments or one form rule does not also depend on RFC 3676 decoding.
        flowed = c.key.split("/")[0] in ("followup", "filter", "ignore", "reject")
    text = flow(m.text) if flowed else m.text
    tp = text_part(text, "plain", charset, cte, "; format=flowed" if flowed else "", quote_cs=False)
    if m.attachments:
        body = multipart("multipart/mixed", c.boundary("tb"),
                         [tp] + [att_part(d, fn, ct, att_style) for fn, d, ct in m.attachments],
                         preamble=b"This is a multi-part message in MIME format.\r\n")
    else:
        body = tp
    top_ct, rest = body[:body.index(CRLF + CRLF) + 2], body[body.index(CRLF + CRLF) + 2:]
    hs = [("Received", c.received())]
    hs2 = [("Message-ID", c.msgid("tb")), ("Date", c.date), ("MIME-Version", "1.0"),
           ("User-Agent", "Mozilla Thunderbird"), ("Content-Language", "ru"), ("To", HELP)]
    hs2 += _from_header(m, "UTF-8", "B")
    hs2 += _subject_header(m, "B-UTF8")
    out = message(hs + hs2 + m.headers_extra, top_ct + rest)
    if lf_only:
        out = out.replace(CRLF, b"\n")
    return out


def thebat(m: Mail, charset: str = "windows-1251", cte: str = "8bit", subject_how: str = "q-1251") -> bytes:
    c = m.ctx
    tp = text_part(m.text, "plain", charset, cte, quote_cs=False)
    if m.attachments:
        body = multipart("multipart/mixed", c.boundary("bat"),
                         [tp] + [att_part(d, fn, ct, "bat") for fn, d, ct in m.attachments])
    else:
        body = tp
    hs = [("Received", c.received()), ("Date", c.date)]
    hs += _from_header(m, "windows-1251" if charset != "KOI8-R" else "KOI8-R", "B")
    hs += [("Message-ID", c.msgid("bat")), ("To", HELP)]
    hs += _subject_header(m, subject_how)
    hs += [("MIME-Version", "1.0")]
    hs_after = [("X-Mailer", "The Bat! (v9.4.5) Professional"), ("X-Priority", "3 (Normal)")] + m.headers_extra
    i = body.index(CRLF + CRLF) + 2
    return message(hs, body[:i] + b"".join(header_bytes(n, v) for n, v in hs_after) + body[i:])


def yandex(m: Mail, html_body: str) -> bytes:
    c = m.ctx
    hp = text_part(html_body, "html", "utf-8", "base64", quote_cs=False)
    if m.attachments:
        body = multipart("multipart/mixed", c.boundary("yandex"),
                         [hp] + [att_part(d, fn, ct, "mailru") for fn, d, ct in m.attachments])
    else:
        body = hp
    hs = [("Received", c.received("forward500a.mail.yandex.net", "178.154.239.80"))]
    hs += _from_header(m, "utf-8", "B")
    hs += [("To", HELP)]
    hs += _subject_header(m, "b-utf8")
    hs += [("MIME-Version", "1.0"), ("X-Mailer", "Yamail [ http://yandex.ru ] 5.0"), ("Date", c.date),
           ("Message-Id", c.msgid("yandex"))] + m.headers_extra
    return message(hs, body)


def mailru(m: Mail, html_body: str | None = None, mobile: bool = True) -> bytes:
    c = m.ctx
    text = m.text
    hb = html_body if html_body is not None else (
        "<HTML><BODY>" + "".join(f"<div>{html_escape_text(l) or '&nbsp;'}</div>" for l in text.split("\n")) + "</BODY></HTML>")
    alt = multipart("multipart/alternative", c.boundary("mailru"),
                    [text_part(text, "plain", "utf-8", "base64", quote_cs=False),
                     text_part(hb, "html", "utf-8", "base64", quote_cs=False)])
    body = alt
    if m.attachments:
        body = multipart("multipart/mixed", c.boundary("mailru"),
                         [alt] + [att_part(d, fn, ct, "mailru") for fn, d, ct in m.attachments])
    hs = [("Received", c.received("f511.i.mail.ru", "10.161.100.11"))]
    hs += _from_header(m, "UTF-8", "B")
    hs += [("To", HELP)]
    hs += _subject_header(m, "B-UTF8")
    hs += [("MIME-Version", "1.0"),
           ("X-Mailer", "Mail.Ru Mailer 1.0" if not mobile else "Mail.Ru Mobile Mailer 1.0 (Android)"),
           ("X-SenderField-Remind", "0"), ("Date", c.date), ("Reply-To", addr(m.from_name, m.from_addr)),
           ("X-Priority", "3 (Normal)"), ("Message-ID", c.msgid("mailru"))] + m.headers_extra
    return message(hs, body)


def iphone(m: Mail) -> bytes:
    c = m.ctx
    tp = text_part(m.text, "plain", "utf-8", "quoted-printable", quote_cs=False)
    body = tp
    if m.attachments:
        b = c.boundary("apple")
        body = multipart("multipart/mixed", b, [tp] + [att_part(d, fn, ct, "iphone") for fn, d, ct in m.attachments])
    hs = [("Received", c.received("mail.sev.gov.ru", "10.10.1.25"))]
    hs2 = _from_header(m, "utf-8", "B")
    hs2 += [("Mime-Version", "1.0 (1.0)"), ("Date", c.date)]
    hs2 += _subject_header(m, "b-utf8")
    hs2 += [("Message-Id", c.msgid("apple")), ("To", HELP), ("X-Mailer", "iPhone Mail (21A351)")] + m.headers_extra
    return message(hs + hs2, body)


def plain_mail(ctx: Ctx, headers: list, text: str, charset="utf-8", cte="8bit", subtype="plain") -> bytes:
    """A hand-assembled single-part mail: headers exactly as given, then the text part."""
    return message(headers, text_part(text, subtype, charset, cte, quote_cs=False))


# =============================================================================================
# The form of Приложение 1
# =============================================================================================

REQUIRED = ["applicant.full_name", "applicant.organization", "applicant.phone"]
RECOMMENDED = ["applicant.position", "user.full_name", "user.login", "patient.name", "patient.card"]

IMPACT_RU = {"feature": "Нововведение", "typo": "Текст/опечатка", "setting": "Настройка", "minor": "Малое",
             "major": "Большое", "critical": "Критический", "blocker": "Блокирующий"}
PRIO_RU = {"urgent": "Неотложный", "high": "Высокий", "normal": "Обычный", "low": "Низкий"}
ALLOWED = {"critical": ["urgent"], "blocker": ["urgent"], "major": ["high"], "minor": ["high", "normal"],
           "setting": ["normal", "low"], "typo": ["low"], "feature": ["low"]}
RANK = {"urgent": 1, "high": 2, "normal": 3, "low": 4}


def resolve_priority(impact: str | None, prio: str | None) -> tuple[str, bool]:
    """(priority, lowered) per the SPEC table."""
    if impact is None:
        return (prio or "normal"), False
    allowed = ALLOWED[impact]
    if prio is None:
        return allowed[0], False
    if prio in allowed:
        return prio, False
    if RANK[prio] < RANK[allowed[0]]:
        return allowed[0], True
    raise ValueError("stated priority below what the impact allows: not pinned by the SPEC")


class Form:
    FIELDS = ["fn", "pos", "org", "phone", "user", "login", "patient", "card", "steps", "error"]

    def __init__(self, fn=None, pos=None, org=None, phone=None, phone_n=None, user=None, login=None,
                 patient=None, card=None, steps=None, error=None, impact=None, prio=None):
        self.fn, self.pos, self.org, self.phone, self.phone_n = fn, pos, org, phone, phone_n
        self.user, self.login, self.patient, self.card = user, login, patient, card
        self.steps, self.error, self.impact, self.prio = steps, error, impact, prio

    def but(self, **kw) -> "Form":
        f = Form(**{k: getattr(self, k) for k in self.FIELDS + ["phone_n", "impact", "prio"]})
        for k, v in kw.items():
            setattr(f, k, v)
        if "phone" in kw and "phone_n" not in kw:
            f.phone_n = None if kw["phone"] is None else f.phone_n
        return f

    def values(self) -> dict:
        return {"applicant.full_name": self.fn, "applicant.position": self.pos, "applicant.organization": self.org,
                "applicant.phone": self.phone_n if self.phone else None, "user.full_name": self.user,
                "user.login": self.login, "patient.name": self.patient, "patient.card": self.card,
                "steps": self.steps, "error_text": self.error}

    def missing(self) -> list[str]:
        v = self.values()
        out = [n for n in REQUIRED if v[n] is None]
        if v["steps"] is None and v["error_text"] is None:
            out += ["steps", "error_text"]
        return out

    def rec_absent(self) -> list[str]:
        v = self.values()
        return [n for n in RECOMMENDED if v[n] is None]

    def fields(self, pin_steps: bool = True, pin_error: bool = True, only: list[str] | None = None) -> dict:
        v = self.values()
        d = {"applicant": {"full_name": v["applicant.full_name"], "position": v["applicant.position"],
                           "organization": v["applicant.organization"], "phone": v["applicant.phone"]},
             "user": {"full_name": v["user.full_name"], "login": v["user.login"]},
             "patient": {"name": v["patient.name"], "card": v["patient.card"]}}
        if pin_steps:
            d["steps"] = v["steps"]
        if pin_error:
            d["error_text"] = v["error_text"]
        if only is not None:
            keep = {}
            for dotted in only:
                if "." in dotted:
                    a, b = dotted.split(".")
                    keep.setdefault(a, {})[b] = d[a][b]
                else:
                    keep[dotted] = d[dotted]
            return keep
        return d

    def prio_lines(self, sep=": ") -> str:
        out = ""
        if self.impact:
            out += f"Влияние{sep}{IMPACT_RU[self.impact]}\n"
        if self.prio:
            out += f"Приоритет{sep}{PRIO_RU[self.prio]}\n"
        return out


def _join(*parts):
    return ", ".join(p for p in parts if p)


def render(f: Form, layout: str = "colon", steps_block: bool = False) -> str:
    """The form as a user types it. Absent values are left out (their line or their comma part)."""
    L = []
    if layout in ("colon", "caps", "emdash", "tab"):
        sep = {"colon": ": ", "caps": ": ", "emdash": " — ", "tab": "\t"}[layout]
        lab = (lambda s: s.upper()) if layout == "caps" else (lambda s: s)
        if f.fn or f.pos or f.org or f.phone:
            L.append(lab("Данные о заявителе") + sep + _join(f.fn, f.pos, f.org, f.phone))
        if f.user or f.login:
            L.append(lab("ФИО пользователя, логин") + sep + _join(f.user, f.login))
        if f.patient or f.card:
            L.append(lab("Данные пациента") + sep + _join(f.patient, f.card))
        if f.steps:
            if "\n" in f.steps:
                L.append(lab("Последовательность выполняемых действий") + (":" if layout != "tab" else ""))
                L.extend(f.steps.split("\n"))
            else:
                L.append(lab("Последовательность выполняемых действий") + sep + f.steps)
        if f.error:
            L.append(lab("Описание ошибки") + sep + f.error)
        if f.impact:
            L.append(lab("Влияние") + sep + IMPACT_RU[f.impact])
        if f.prio:
            L.append(lab("Приоритет") + sep + PRIO_RU[f.prio])
    elif layout == "sub":
        if f.fn or f.pos or f.org or f.phone:
            L.append("Данные о заявителе:")
            if f.fn: L.append(f"ФИО: {f.fn}")
            if f.pos: L.append(f"Должность: {f.pos}")
            if f.org: L.append(f"МО: {f.org}")
            if f.phone: L.append(f"Телефон: {f.phone.removeprefix('тел. ')}")
        if f.user: L.append(f"ФИО пользователя: {f.user}")
        if f.login: L.append(f"Логин: {f.login}")
        if f.patient: L.append(f"Пациент: {f.patient}")
        if f.card: L.append(f"№ карты: {f.card}")
        if f.steps:
            if "\n" in f.steps:
                L.append("Последовательность действий:")
                L.extend(f.steps.split("\n"))
            else:
                L.append(f"Последовательность действий: {f.steps}")
        if f.error: L.append(f"Описание ошибки: {f.error}")
        if f.impact: L.append(f"Влияние: {IMPACT_RU[f.impact]}")
        if f.prio: L.append(f"Приоритет: {PRIO_RU[f.prio]}")
    elif layout == "blocks":
        def blk(label, val):
            L.append(label + ":")
            L.extend(val.split("\n"))
            L.append("")
        if f.fn or f.pos or f.org or f.phone:
            blk("Данные о заявителе", _join(f.fn, f.pos, f.org, f.phone))
        if f.user or f.login:
            blk("ФИО пользователя, логин", _join(f.user, f.login))
        if f.patient or f.card:
            blk("Данные пациента", _join(f.patient, f.card))
        if f.steps:
            blk("Последовательность выполняемых действий", f.steps)
        if f.error:
            blk("Описание ошибки", f.error)
        if L and L[-1] == "":
            L.pop()
    else:
        raise ValueError(layout)
    return "\n".join(L)


def table_rows(f: Form, entities_steps: bool = False) -> list[tuple[str, list[str]]]:
    rows = [("Данные о заявителе", [_join(f.fn, f.pos, f.org, f.phone)]),
            ("ФИО пользователя, логин", [_join(f.user, f.login)]),
            ("Данные пациента", [_join(f.patient, f.card)]),
            ("Последовательность выполняемых действий", f.steps.split("\n")),
            ("Описание ошибки", [f.error])]
    return rows


# People (all at sev.gov.ru unless a fixture says otherwise)
P1 = Form("Иванова Татьяна Александровна", "медицинская сестра", "ГБУЗС «Городская больница №1»",
          "+7 (8692) 55-12-34", "+78692551234", "Петров Сергей Иванович", "petrov_si", "Сидоров А.В.", "123456",
          "Регистратура → Расписание стандартное → Запись пациента к врачу-логопеду",
          "Шаблона посещения для данной услуги (В02.069.002-1) не существует")
P1_ADDR, P1_NAME = "t.ivanova@sev.gov.ru", "Иванова Татьяна Александровна"
P2 = Form("Петренко Олег Викторович", "инженер-программист", "ГБУЗС «Городская больница №9»",
          "+7 978 123-45-67", "+79781234567", "Савченко Марина Олеговна", "savchenko_mo", "Кузьмина О.П.", "004512",
          "Отчеты -> Счета-реестры -> Сформировать за октябрь 2023",
          "Не удалось сформировать счет-реестр: превышено время ожидания ответа сервера")
P2_ADDR, P2_NAME = "o.petrenko@sev.gov.ru", "Петренко Олег Викторович"
P3 = Form("Кравченко Елена Николаевна", "медицинский регистратор", "ГБУЗС «Центральная городская больница»",
          "8 (8692) 54-32-10", "+78692543210", "Литвиненко Ольга Юрьевна", "litvinenko.oy", "Лысенко Г.Н.", "017734",
          "ЭМК пациента -> Протокол осмотра -> Подписать ЭП",
          "Ошибка при подписании ЭМД: сертификат не найден")
P3_ADDR, P3_NAME = "kravchenko.en@sev.gov.ru", "Кравченко Елена Николаевна"
P4 = Form("Ткаченко Андрей Сергеевич", "системный администратор",
          "ГБУЗС «Городская больница №5 – «Центр охраны здоровья матери и ребенка»",
          "(8692) 48-11-02", "+78692481102", "Гончаренко Павел Андреевич", "goncharenko_pa", "Мартыненко Е.С.", "2023/0815",
          "Женская консультация → Карта беременной → Печать обменной карты",
          "Object reference not set to an instance of an object.")
P4_ADDR, P4_NAME = "it.gb5@sev.gov.ru", "Ткаченко Андрей Сергеевич"
P5 = Form("Мельник Ирина Петровна", "старшая медицинская сестра", "ГБУЗС «Городская больница №4»",
          "тел. 8-978-700-11-22", "+79787001122", "Руденко Анна Викторовна", "rudenko_av", "Бойко Н.И.", "55871",
          "Поликлиника → Талон амбулаторного пациента → Закрыть случай",
          "Талон не может быть закрыт: не заполнен основной диагноз")
P5_ADDR, P5_NAME = "melnik.ip@sev.gov.ru", "Мельник Ирина Петровна"
P6 = Form("Бондаренко Дмитрий Игоревич", "ведущий специалист отдела ИТ", "ГБУЗС «Севастопольская городская больница №2»",
          "+7 (978) 555-66-77", "+79785556677", "Шевчук Алла Борисовна", "shevchuk_ab", "Гаврилюк П.П.", "310522",
          "Администрирование -> Пользователи -> Назначить роль Врач",
          "Пользователь не имеет прав на выполнение операции")
P6_ADDR, P6_NAME = "d.bondarenko@sev.gov.ru", "Бондаренко Дмитрий Игоревич"
P7 = Form("Шевченко Наталья Владимировна", "заведующая регистратурой", "ГБУЗС «Городская больница №6»",
          "+7 (8692) 53-00-17", "+78692530017", "Ковальчук Виктор Петрович", "kovalchuk_vp", "Андреева М.К.", "98114",
          "Регистратура -> Запись на прием -> Выбор участкового терапевта",
          "Нет доступных слотов для записи")
P7_ADDR, P7_NAME = "shevchenko.nv@sev.gov.ru", "Шевченко Наталья Владимировна"
P8 = Form("Коваленко Сергей Анатольевич", "врач-терапевт участковый", "ГБУЗС «Городская больница №9»",
          "+7 978 010-20-30", "+79780102030", "Коваленко Сергей Анатольевич", "kovalenko_sa", "Ефимова Л.Д.", "440219",
          "ЭМК -> Направления -> Направление на госпитализацию -> Подписать",
          "Сервис РЭМД недоступен. Повторите попытку позже")
P8_ADDR, P8_NAME = "kovalenko.sa@sev.gov.ru", "Коваленко Сергей Анатольевич"

KOI_SAFE = lambda s: s.replace("«", '"').replace("»", '"').replace("№", "N").replace("→", "->").replace("–", "-").replace("—", "-")

STEPS_MULTI = ("1. Открыть модуль «Регистратура».\n"
               "2. Перейти в «Расписание стандартное».\n"
               "3. Выбрать врача-логопеда и свободный слот.\n"
               "4. Нажать «Записать».")

GREET = ["Добрый день!", "Здравствуйте!", "Добрый день, коллеги!", "Здравствуйте, уважаемые коллеги."]


def body_with_form(form_text: str, greet: str = "Добрый день!", intro: str = "Прошу зарегистрировать заявку.",
                   closing: str = "С уважением,\n{who}", who: str = "") -> str:
    parts = [greet, "", intro, "", form_text, ""]
    if closing:
        parts.append(closing.format(who=who))
    return "\n".join(parts) + "\n"


def short_name(full: str) -> str:
    a = full.split()
    return f"{a[0]} {a[1][0]}.{a[2][0]}." if len(a) == 3 else full


# =============================================================================================
# Expectations
# =============================================================================================

def E(decision: str, reasons=(), warnings=(), missing=(), followup_of=None, sender="", subject="", **kw) -> dict:
    d = {"decision": decision, "reasons": [{"code": c} for c in reasons]}
    if warnings is not None:
        d["warnings"] = [{"code": c} for c in warnings]
    d["missing"] = list(missing)
    d["followup_of"] = followup_of
    d["sender"] = sender
    d["subject"] = subject
    d.update(kw)
    return d


def EF(form: Form, sender: str, subject: str, reasons_extra=(), warnings_extra=(), fields="all",
       attachments=None, pin_priority=True, **kw) -> dict:
    """Expectation for a mail that reaches the form checks (accept / incomplete)."""
    missing = form.missing()
    reasons = []
    if subject.strip() == "":
        reasons.append("subject_missing")
    if missing:
        reasons.append("fields_missing")
    reasons += list(reasons_extra)
    decision = "incomplete" if reasons else "accept"
    warnings = ["field_recommended"] * len(form.rec_absent()) + list(warnings_extra)
    prio, lowered = resolve_priority(form.impact, form.prio)
    if lowered:
        warnings.append("priority_lowered")
    d = E(decision, reasons, warnings, missing, None, sender, subject.strip())
    if pin_priority:
        d["priority"] = prio
        d["impact"] = form.impact
    if fields == "all":
        d["fields"] = form.fields()
    elif fields == "single":
        d["fields"] = form.fields(pin_steps=form.steps is None or "\n" not in form.steps)
    elif isinstance(fields, list):
        d["fields"] = form.fields(only=fields)
    if attachments is not None:
        d["attachments"] = attachments
    d.update(kw)
    return d


def A(name, kind, data: bytes | int | None = None, inline=None, entries=None, **kw) -> dict:
    d = {"name": name, "kind": kind}
    if data is not None:
        d["bytes"] = data if isinstance(data, int) else len(data)
    if inline is not None:
        d["inline"] = inline
    if entries is not None:
        d["entries"] = [{"name": n, "kind": k} for n, k in entries]
    d.update(kw)
    return d


# =============================================================================================
# Registry
# =============================================================================================

FIXTURES: list[tuple[str, str, str, object]] = []


def fx(group: str, name: str, what: str):
    assert group in GROUPS, group

    def deco(fn):
        FIXTURES.append((group, name, what, fn))
        return fn

    return deco


CT = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "bmp": "image/bmp", "pdf": "application/pdf",
      "zip": "application/x-zip-compressed", "7z": "application/x-7z-compressed", "rar": "application/x-rar-compressed",
      "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
      "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
      "doc": "application/msword", "xls": "application/vnd.ms-excel", "mp4": "video/mp4", "avi": "video/x-msvideo",
      "txt": "text/plain", "csv": "text/csv", "rtf": "application/rtf", "odt": "application/vnd.oasis.opendocument.text",
      "ods": "application/vnd.oasis.opendocument.spreadsheet", "exe": "application/x-msdownload",
      "bin": "application/octet-stream", "tif": "image/tiff", "heic": "image/heic", "gz": "application/x-gzip"}


def cp1251_safe(s: str) -> str:
    return s.replace("→", "->")


def imgs(n: int, base: int, prefix: str = "Снимок экрана ", ext: str = "png") -> list[tuple[str, bytes, str]]:
    return [(f"{prefix}{i + 1}.{ext}", png(base + i), CT["png"]) for i in range(n)]


# =============================================================================================
# accept
# =============================================================================================

@fx("accept", "outlook_cp1251_basic", "Outlook 16, windows-1251 QP, plain+MsoNormal HTML, canonical 'Label: value' form")
def _(c):
    f = P1.but(steps=cp1251_safe(P1.steps))
    s = "Не открывается расписание логопеда"
    m = Mail(c, P1_NAME, P1_ADDR, s, body_with_form(render(f), who="Иванова Т.А."))
    return outlook(m, "windows-1251"), EF(f, P1_ADDR, s)


@fx("accept", "outlook_utf8_inline_screenshot", "Outlook 16, utf-8 QP, multipart/related with one pasted screenshot (cid:image001.png)")
def _(c):
    f = P2
    s = "Не формируется счет-реестр за октябрь"
    img = png(201, 64, 40)
    m = Mail(c, P2_NAME, P2_ADDR, s, body_with_form(render(f), "Здравствуйте!", "Скриншот ниже.", who="Петренко О.В."))
    return (outlook(m, "utf-8", inline=[("image001.png", img, "image/png")]),
            EF(f, P2_ADDR, s, attachments=[A("image001.png", "image", img, inline=True)]))


@fx("accept", "thunderbird_flowed", "Thunderbird format=flowed UTF-8 8bit: long lines soft-wrapped, values must be unflowed (joined with the space)")
def _(c):
    f = P3.but(steps="ЭМК пациента → Протокол осмотра → Подписать ЭП → Выбрать сертификат руководителя → Нажать «Подписать и отправить в РЭМД»",
               error="Ошибка при подписании ЭМД: сертификат не найден в хранилище «Личное» текущего пользователя, обратитесь к администратору")
    s = "Не подписывается протокол осмотра"
    m = Mail(c, P3_NAME, P3_ADDR, s, body_with_form(render(f), who="Кравченко Е.Н."))
    eml = thunderbird(m, flowed=True)
    assert b"= \r\n" not in eml and b" \r\n" in eml  # really soft-wrapped
    return eml, EF(f, P3_ADDR, s)


@fx("accept", "thebat_cp1251_8bit", "The Bat! windows-1251 8bit, Q-encoded subject, phone written 'тел. 8-978-…', signature after '-- '")
def _(c):
    f = P5.but(steps=cp1251_safe(P5.steps))
    s = "Не закрывается талон амбулаторного пациента"
    text = ("Здравствуйте, коллеги.\n\n" + render(f) + "\n\n-- \nС уважением,\n Мельник Ирина                          mailto:melnik.ip@sev.gov.ru\n")
    m = Mail(c, P5_NAME, P5_ADDR, s, text, headers_extra=[])
    eml = thebat(m)
    eml = header_bytes("Return-Path", f"<{P5_ADDR}>") + eml
    return eml, EF(f, P5_ADDR, s)


@fx("accept", "yandex_html_only", "Yandex web mail: HTML-only, base64 UTF-8, <div> per line, &laquo;/&raquo; entities")
def _(c):
    f = P7
    s = "Нет слотов для записи к терапевту"
    divs = ["Добрый день!", "", "Прошу помочь.", ""] + render(f).split("\n") + ["", "С уважением, Шевченко Н.В."]
    hb = "<div>" + "</div><div>".join(html_escape_text(l, True) if l else "&nbsp;" for l in divs) + "</div>"
    m = Mail(c, P7_NAME, P7_ADDR, s, "")
    return yandex(m, hb), EF(f, P7_ADDR, s)


@fx("accept", "mailru_mobile", "Mail.ru mobile app: multipart/alternative, both parts base64 UTF-8, 'Отправлено из мобильной Почты Mail.ru'")
def _(c):
    f = P6
    s = "Нет прав на назначение роли"
    text = "Добрый день\n\n" + render(f) + "\n\n--\nОтправлено из мобильной Почты Mail.ru\n"
    m = Mail(c, P6_NAME, P6_ADDR, s, text)
    return mailru(m), EF(f, P6_ADDR, s)


@fx("accept", "iphone_qp", "iPhone Mail: text/plain UTF-8 quoted-printable, 'Sent from my iPhone'")
def _(c):
    f = P8
    s = "РЭМД недоступен при подписании направления"
    text = "Добрый день.\n\n" + render(f) + "\n\nSent from my iPhone\n"
    m = Mail(c, P8_NAME, P8_ADDR, s, text)
    return iphone(m), EF(f, P8_ADDR, s)


@fx("accept", "only_error_text", "steps absent but error_text present: the 'one of steps/error_text' rule is met")
def _(c):
    f = P2.but(steps=None)
    s = "Ошибка формирования реестра"
    m = Mail(c, P2_NAME, P2_ADDR, s, body_with_form(render(f, "sub"), who="Петренко О.В."))
    return thunderbird(m), EF(f, P2_ADDR, s)


@fx("accept", "only_steps", "error_text absent but steps present: accept")
def _(c):
    f = P3.but(error=None, steps=cp1251_safe(P3.steps))
    s = "Не подписывается протокол"
    m = Mail(c, P3_NAME, P3_ADDR, s, body_with_form(render(f), who="Кравченко Е.Н."))
    return outlook(m, "windows-1251"), EF(f, P3_ADDR, s)


@fx("accept", "auto_submitted_no", "'Auto-Submitted: no' is an ordinary mail, not automatic")
def _(c):
    f = P4
    s = "Не печатается обменная карта"
    m = Mail(c, P4_NAME, P4_ADDR, s, body_with_form(render(f), who="Ткаченко А.С."), headers_extra=[("Auto-Submitted", "no")])
    return thunderbird(m), EF(f, P4_ADDR, s)


@fx("accept", "uppercase_sender", "From address in capitals (T.Ivanova@SEV.GOV.RU): domain case-insensitive, sender lower-cased")
def _(c):
    f = P1.but(steps=cp1251_safe(P1.steps))
    s = "Ошибка записи к логопеду"
    m = Mail(c, P1_NAME, "T.Ivanova@SEV.GOV.RU", s, body_with_form(render(f), who="Иванова Т.А."))
    return outlook(m, "windows-1251"), EF(f, "t.ivanova@sev.gov.ru", s, fields=None)


@fx("accept", "trailing_dot_domain", "From domain with a trailing dot (sev.gov.ru.) is allowed; sender not pinned (dot kept or not)")
def _(c):
    f = P7
    s = "Не работает запись на прием"
    m = Mail(c, P7_NAME, "shevchenko.nv@sev.gov.ru.", s, body_with_form(render(f), who="Шевченко Н.В."))
    e = EF(f, "x", s, fields=None)
    del e["sender"]
    return thunderbird(m), e


@fx("accept", "recommended_absent", "only the required fields: five field_recommended warnings")
def _(c):
    f = Form(P6.fn, None, P6.org, P6.phone, P6.phone_n, error=P6.error)
    s = "Нет прав на операцию"
    m = Mail(c, P6_NAME, P6_ADDR, s, body_with_form(render(f, "sub"), who="Бондаренко Д.И."))
    return thunderbird(m), EF(f, P6_ADDR, s)


@fx("accept", "placeholders_count_as_absent", "'Логин: -' and 'Данные пациента: нет' are placeholders: three field_recommended warnings")
def _(c):
    f = P7.but(login=None, patient=None, card=None)
    s = "Нет доступных слотов"
    form = "\n".join(["Данные о заявителе:", f"ФИО: {f.fn}", f"Должность: {f.pos}", f"МО: {f.org}", f"Телефон: {f.phone}",
                      f"ФИО пользователя: {f.user}", "Логин: -", "Данные пациента: нет",
                      f"Последовательность действий: {f.steps}", f"Описание ошибки: {f.error}"])
    m = Mail(c, P7_NAME, P7_ADDR, s, body_with_form(form, who="Шевченко Н.В."))
    return thunderbird(m), EF(f, P7_ADDR, s)


@fx("accept", "docx_with_form", "a .docx (supplement) next to a complete form: accept, the .docx listed as supplement")
def _(c):
    f = P2
    s = "Ошибка при формировании счета (подробно во вложении)"
    d = docx("Подробное описание: Отчеты → Счета-реестры → Сформировать.\nОшибка: превышено время ожидания.")
    fn = "Описание ошибки.docx"
    m = Mail(c, P2_NAME, P2_ADDR, s, body_with_form(render(f), intro="Подробности во вложении.", who="Петренко О.В."),
             attachments=[(fn, d, CT["docx"])])
    return outlook(m, "utf-8"), EF(f, P2_ADDR, s, fields=None, attachments=[A(fn, "supplement", d, inline=False)])


@fx("accept", "video_with_form", "an .mp4 screen recording (supplement) next to a complete form: accept")
def _(c):
    f = P6
    s = "Видео ошибки назначения роли"
    v = mp4(c.seed)
    fn = "VID_20231114_101532.mp4"
    text = "Добрый день\n\n" + render(f) + "\n\nВидео во вложении.\n\n--\nОтправлено из мобильной Почты Mail.ru\n"
    m = Mail(c, P6_NAME, P6_ADDR, s, text, attachments=[(fn, v, CT["mp4"])])
    return mailru(m), EF(f, P6_ADDR, s, fields=None, attachments=[A(fn, "supplement", v)])


@fx("accept", "not_followup_no_brackets", "'заявке #123' without the [Заявка #N] tag is not a follow-up")
def _(c):
    f = P5.but(steps=cp1251_safe(P5.steps))
    s = "Повторно по заявке #123 - не решено"
    m = Mail(c, P5_NAME, P5_ADDR, s, body_with_form(render(f), who="Мельник И.П."))
    return thebat(m), EF(f, P5_ADDR, s, fields=None)


@fx("accept", "documents_all_kinds", "pdf, xlsx, xls, ods, odt, txt, csv, rtf attachments: all kind=document, accept")
def _(c):
    f = P2
    s = "Расхождения в реестре (выгрузки во вложении)"
    files = [
        ("Реестр за октябрь.pdf", pdf("Reestr 2023-10"), CT["pdf"]),
        ("Реестр за октябрь.xlsx", xlsx([["Код", "Услуга", "Сумма"], ["B01.047.001", "Прием терапевта", "450,00"]]), CT["xlsx"]),
        ("Старый реестр.xls", cfb("Реестр 2023-09"), CT["xls"]),
        ("Сверка.ods", odf("application/vnd.oasis.opendocument.spreadsheet", "Сверка"), CT["ods"]),
        ("Пояснение.odt", odf("application/vnd.oasis.opendocument.text", "Пояснение к реестру"), CT["odt"]),
        ("server.log.txt", "2023-11-14 09:12:33 ERROR Timeout waiting for response\r\n".encode("ascii") * 20, CT["txt"]),
        ("выгрузка.csv", "Код;Услуга;Сумма\r\nB01.047.001;Прием терапевта;450,00\r\n".encode("cp1251"), CT["csv"]),
        ("Письмо.rtf", rtf("Пояснение к реестру за октябрь"), CT["rtf"]),
    ]
    m = Mail(c, P2_NAME, P2_ADDR, s, body_with_form(render(f), who="Петренко О.В."), attachments=files)
    return (thunderbird(m),
            EF(f, P2_ADDR, s, fields=None, attachments=[A(fn, "document", d, inline=False) for fn, d, _ in files]))


def _prio(name: str, what: str, impact, prio, person=P1, addr_=P1_ADDR, pname=P1_NAME, pin_error=False):
    @fx("accept", name, what)
    def _(c):
        f = person.but(impact=impact, prio=prio, steps=cp1251_safe(person.steps))
        s = {"feature": "Доработка: новый отчет по логопедам", "typo": "Опечатка в названии кнопки",
             "setting": "Настроить права пользователю", "minor": "Неудобство в расписании",
             "major": "Неактуальные данные в отчете", "critical": "Недоступна запись на прием",
             "blocker": "МИС не открывается"}.get(impact, "Ошибка в расписании")
        m = Mail(c, pname, addr_, s, body_with_form(render(f), who=short_name(pname)))
        return outlook(m, "windows-1251"), EF(f, addr_, s, fields=(["error_text"] if pin_error else None))


_prio("prio_feature", "Влияние: Нововведение → impact feature, priority low", "feature", None)
_prio("prio_typo", "Влияние: Текст/опечатка → typo, low", "typo", None, P5, P5_ADDR, P5_NAME)
_prio("prio_setting", "Влияние: Настройка → setting, normal (highest allowed)", "setting", None, P6, P6_ADDR, P6_NAME)
_prio("prio_minor", "Влияние: Малое → minor, high; the Влияние line does not leak into error_text", "minor", None, P7, P7_ADDR, P7_NAME, True)
_prio("prio_major", "Влияние: Большое → major, high", "major", None, P2, P2_ADDR, P2_NAME)
_prio("prio_critical", "Влияние: Критический → critical, urgent", "critical", None, P3, P3_ADDR, P3_NAME)
_prio("prio_blocker", "Влияние: Блокирующий → blocker, urgent", "blocker", None, P8, P8_ADDR, P8_NAME)
_prio("prio_kept_minor_normal", "Малое + Обычный: allowed, kept normal", "minor", "normal")
_prio("prio_kept_setting_low", "Настройка + Низкий: allowed, kept low", "setting", "low", P6, P6_ADDR, P6_NAME)
_prio("prio_kept_blocker_urgent", "Блокирующий + Неотложный: kept urgent", "blocker", "urgent", P8, P8_ADDR, P8_NAME)
_prio("prio_lowered_minor_urgent", "Малое + Неотложный: lowered to high + priority_lowered", "minor", "urgent", P7, P7_ADDR, P7_NAME, True)
_prio("prio_lowered_setting_high", "Настройка + Высокий: lowered to normal + priority_lowered", "setting", "high", P6, P6_ADDR, P6_NAME)
_prio("prio_lowered_typo_normal", "Текст/опечатка + Обычный: lowered to low + priority_lowered", "typo", "normal", P5, P5_ADDR, P5_NAME)
_prio("prio_lowered_major_urgent", "Большое + Неотложный: lowered to high + priority_lowered", "major", "urgent", P2, P2_ADDR, P2_NAME)
_prio("prio_only_priority_high", "Приоритет: Высокий without Влияние: kept high, impact null", None, "high", P3, P3_ADDR, P3_NAME)
_prio("prio_only_priority_urgent", "Приоритет: Неотложный without Влияние: kept urgent, impact null", None, "urgent", P4, P4_ADDR, P4_NAME)
_prio("prio_only_priority_low", "Приоритет: Низкий without Влияние: kept low", None, "low")


# =============================================================================================
# incomplete
# =============================================================================================

@fx("incomplete", "no_subject_header", "no Subject header at all: subject_missing (subject \"\")")
def _(c):
    f = P1
    m = Mail(c, P1_NAME, P1_ADDR, None, body_with_form(render(f), who="Иванова Т.А."))
    return thunderbird(m), EF(f, P1_ADDR, "", fields=None)


@fx("incomplete", "blank_subject", "Subject of blanks only: subject_missing")
def _(c):
    f = P2
    m = Mail(c, P2_NAME, P2_ADDR, None, body_with_form(render(f), who="Петренко О.В."), subject_raw="   ")
    return outlook(m, "utf-8"), EF(f, P2_ADDR, "", fields=None)


@fx("incomplete", "missing_phone", "sub-label form without Телефон: fields_missing [applicant.phone]")
def _(c):
    f = P3.but(phone=None)
    s = "Не подписывается протокол осмотра"
    m = Mail(c, P3_NAME, P3_ADDR, s, body_with_form(render(f, "sub"), who="Кравченко Е.Н."))
    return thunderbird(m), EF(f, P3_ADDR, s)


@fx("incomplete", "missing_name_and_org", "only Должность and Телефон under the applicant heading: missing full_name and organization")
def _(c):
    f = P4.but(fn=None, org=None)
    s = "Не печатается обменная карта"
    m = Mail(c, P4_NAME, P4_ADDR, s, body_with_form(render(f, "sub"), who="Ткаченко А.С."))
    return thunderbird(m), EF(f, P4_ADDR, s)


@fx("incomplete", "no_steps_no_error", "neither steps nor error_text: both are listed in missing")
def _(c):
    f = P5.but(steps=None, error=None)
    s = "Проблема с талоном"
    m = Mail(c, P5_NAME, P5_ADDR, s, body_with_form(render(f), intro="Не закрывается талон, помогите.", who="Мельник И.П."))
    return thebat(m), EF(f, P5_ADDR, s)


@fx("incomplete", "see_attachment_png", "'см. вложение' + one screenshot, no form: all required fields missing (+5 field_recommended)")
def _(c):
    f = Form()
    s = "Ошибка в МИС"
    img = png(301, 64, 48)
    text = "Добрый день, см. вложение.\n"
    m = Mail(c, "Регистратура ГБ4", "reg.gb4@sev.gov.ru", s, text, attachments=[("Снимок.PNG", img, CT["png"])])
    return thunderbird(m), EF(f, "reg.gb4@sev.gov.ru", s, attachments=[A("Снимок.PNG", "image", img, inline=False)])


@fx("incomplete", "no_attachments_one_line", "one line, no attachments, no form: fields_missing (supplement_only needs an attachment)")
def _(c):
    s = "Не работает МИС"
    m = Mail(c, None, "reg.gb6@sev.gov.ru", s, "Не работает МИС, помогите срочно!\n")
    e = EF(Form(), "reg.gb6@sev.gov.ru", s, fields=None)
    del e["warnings"]
    return iphone(m), e


@fx("incomplete", "phone_placeholder", "'Телефон: -' is a placeholder: applicant.phone missing")
def _(c):
    f = P6.but(phone=None)
    s = "Нет прав на назначение роли"
    form = "\n".join(["Данные о заявителе:", f"ФИО: {f.fn}", f"Должность: {f.pos}", f"МО: {f.org}",
                      "Телефон: -", f"ФИО пользователя: {f.user}", f"Логин: {f.login}",
                      f"Пациент: {f.patient}", f"№ карты: {f.card}", f"Описание ошибки: {f.error}"])
    m = Mail(c, P6_NAME, P6_ADDR, s, body_with_form(form, who="Бондаренко Д.И."))
    return thunderbird(m), EF(f.but(steps=None), P6_ADDR, s)


@fx("incomplete", "six_images", "six attached PNG screenshots with a complete form: too_many_images")
def _(c):
    f = P1
    s = "Ошибка записи к логопеду (скриншоты)"
    files = imgs(6, 400)
    m = Mail(c, P1_NAME, P1_ADDR, s, body_with_form(render(f), who="Иванова Т.А."), attachments=files)
    return (thunderbird(m), EF(f, P1_ADDR, s, reasons_extra=["too_many_images"], fields=None,
                               attachments=[A(fn, "image", d, inline=False) for fn, d, _ in files]))


@fx("incomplete", "outlook_4_inline_2_attached", "4 pasted screenshots + 2 attached JPEGs = 6 images: too_many_images")
def _(c):
    f = P2
    s = "Ошибки при формировании реестра"
    inl = [(f"image00{i + 1}.png", png(410 + i), "image/png") for i in range(4)]
    att = [(f"IMG_{i}.jpg", jpeg(c.seed + i), "image/jpeg") for i in range(2)]
    m = Mail(c, P2_NAME, P2_ADDR, s, body_with_form(render(f), who="Петренко О.В."), attachments=att)
    exp = [A(n, "image", d, inline=True) for n, d, _ in inl] + [A(n, "image", d, inline=False) for n, d, _ in att]
    return outlook(m, "utf-8", inline=inl), EF(f, P2_ADDR, s, reasons_extra=["too_many_images"], fields=None, attachments=exp)


@fx("incomplete", "bmp_attachment", "a .bmp screenshot is not JPG/GIF/PNG: attachment_type (kind other)")
def _(c):
    f = P3
    s = "Скриншот ошибки подписи"
    b = bmp()
    m = Mail(c, P3_NAME, P3_ADDR, s, body_with_form(render(f), who="Кравченко Е.Н."), attachments=[("screen.bmp", b, CT["bmp"])])
    return thunderbird(m), EF(f, P3_ADDR, s, reasons_extra=["attachment_type"], fields=None,
                              attachments=[A("screen.bmp", "other", b, inline=False)])


@fx("incomplete", "tiff_attachment", "a scanned .tif: attachment_type")
def _(c):
    f = P4.but(steps=cp1251_safe(P4.steps))
    s = "Скан ошибки"
    t = tiff()
    m = Mail(c, P4_NAME, P4_ADDR, s, body_with_form(render(f), who="Ткаченко А.С."), attachments=[("скан.tif", t, CT["tif"])])
    return outlook(m, "windows-1251"), EF(f, P4_ADDR, s, reasons_extra=["attachment_type"], fields=None,
                                          attachments=[A("скан.tif", "other", t, inline=False)])


@fx("incomplete", "heic_from_iphone", "an iPhone photo IMG_4512.HEIC: attachment_type")
def _(c):
    f = P8
    s = "Фото экрана с ошибкой"
    hdata = heic(c.seed)
    m = Mail(c, P8_NAME, P8_ADDR, s, "Добрый день.\n\n" + render(f) + "\n\nSent from my iPhone\n",
             attachments=[("IMG_4512.HEIC", hdata, CT["heic"])])
    return iphone(m), EF(f, P8_ADDR, s, reasons_extra=["attachment_type"], fields=None,
                         attachments=[A("IMG_4512.HEIC", "other", hdata, inline=False)])


@fx("incomplete", "targz_attachment", "logs.tar.gz is not zip/7z/rar: attachment_type")
def _(c):
    f = P6
    s = "Логи клиента МИС"
    t = targz([("client.log", b"2023-11-14 ERROR access denied\n" * 30), ("screen.png", png(5))])
    m = Mail(c, P6_NAME, P6_ADDR, s, body_with_form(render(f), who="Бондаренко Д.И."), attachments=[("logs.tar.gz", t, CT["gz"])])
    return thunderbird(m), EF(f, P6_ADDR, s, reasons_extra=["attachment_type"], fields=None,
                              attachments=[A("logs.tar.gz", "other", t, inline=False)])


@fx("incomplete", "combo_all_four", "no subject + no phone + 6 images + a .bmp: all four incomplete reasons listed")
def _(c):
    f = P7.but(phone=None)
    files = imgs(6, 420) + [("screen.bmp", bmp(10, 4), CT["bmp"])]
    m = Mail(c, P7_NAME, P7_ADDR, None, body_with_form(render(f, "sub"), who="Шевченко Н.В."), attachments=files)
    return thunderbird(m), EF(f, P7_ADDR, "", reasons_extra=["too_many_images", "attachment_type"], fields=None)


@fx("incomplete", "applicant_line_no_phone", "HEURISTIC: comma line with three parts (name, position, MO) and no phone: missing applicant.phone")
def _(c):
    f = P1.but(phone=None, steps=cp1251_safe(P1.steps))
    s = "Не открывается расписание"
    m = Mail(c, P1_NAME, P1_ADDR, s, body_with_form(render(f), who="Иванова Т.А."))
    return outlook(m, "windows-1251"), EF(f, P1_ADDR, s, fields=["applicant.full_name", "applicant.position",
                                                                    "applicant.organization", "applicant.phone"])


@fx("incomplete", "docx_and_signature_logo", "'см. вложение' + .docx + an inline signature logo: not every attachment is a supplement, so fields_missing (not supplement_only)")
def _(c):
    s = "Заявка"
    d = docx("Заявка: не работает расписание")
    logo = png(430, 40, 16)
    text = "Добрый день, см. вложение.\n\nС уважением,\nРегистратура ГБУЗС «Городская больница №6»\n"
    m = Mail(c, "Регистратура ГБ6", "reg.gb6@sev.gov.ru", s, text, attachments=[("Заявка.docx", d, CT["docx"])])
    e = EF(Form(), "reg.gb6@sev.gov.ru", s, fields=None,
           attachments=[A("image001.png", "image", logo, inline=True), A("Заявка.docx", "supplement", d, inline=False)])
    del e["warnings"]
    return outlook(m, "utf-8", inline=[("image001.png", logo, "image/png")]), e


@fx("incomplete", "docx_and_png_no_form", "a .docx and a screenshot, no form: not supplement_only (a PNG is not a supplement) → fields_missing")
def _(c):
    s = "Ошибка"
    d = docx("Описание ошибки")
    img = png(431)
    m = Mail(c, None, "reg.gb9@sev.gov.ru", s, "Описание во вложении\n",
             attachments=[("описание.docx", d, CT["docx"]), ("ошибка.png", img, CT["png"])])
    e = EF(Form(), "reg.gb9@sev.gov.ru", s, fields=None)
    del e["warnings"]
    return mailru(m), e


# =============================================================================================
# reject
# =============================================================================================

def big_pdf_mail(c, total: int, inline_png: bool = False):
    f = P2
    s = "Не формируется реестр (выгрузка во вложении)"
    atts, inl, exp = [], [], []
    if inline_png:
        img = png(500, 320, 200)
        inl = [("image001.png", img, "image/png")]
        exp.append(A("image001.png", "image", img, inline=True))
        total -= len(img)
    p = pdf("Reestr", target=total)
    assert len(p) == total
    atts.append(("Выгрузка реестра.pdf", p, CT["pdf"]))
    exp.append(A("Выгрузка реестра.pdf", "document", p, inline=False))
    m = Mail(c, P2_NAME, P2_ADDR, s, body_with_form(render(f), who="Петренко О.В."), attachments=atts)
    return (outlook(m, "utf-8", inline=inl) if inline_png else thunderbird(m)), f, s, exp


@fx("reject", "too_large_10mib_plus_1", "one PDF of 10,485,761 decoded bytes (10 MiB + 1): too_large")
def _(c):
    eml, f, s, exp = big_pdf_mail(c, TEN_MIB + 1)
    return eml, E("reject", ["too_large"], None, [], None, P2_ADDR, s, attachments=exp)


@fx("reject", "too_large_inline_counted", "inline screenshot + PDF = 10 MiB + 1 decoded bytes: inline parts count toward the limit")
def _(c):
    eml, f, s, exp = big_pdf_mail(c, TEN_MIB + 1, inline_png=True)
    return eml, E("reject", ["too_large"], None, [], None, P2_ADDR, s, attachments=exp)


@fx("reject", "exe_renamed_jpg", "a PE executable (MZ) named photo.jpg: attachment_dangerous")
def _(c):
    f = P1
    s = "Фото ошибки"
    x = exe_pe()
    m = Mail(c, P1_NAME, P1_ADDR, s, body_with_form(render(f), who="Иванова Т.А."), attachments=[("photo.jpg", x, "image/jpeg")])
    return thunderbird(m), E("reject", ["attachment_dangerous"], None, [], None, P1_ADDR, s)


@fx("reject", "elf_binary", "an ELF executable without extension: attachment_dangerous")
def _(c):
    f = P6
    s = "Утилита для исправления"
    m = Mail(c, P6_NAME, P6_ADDR, s, body_with_form(render(f), who="Бондаренко Д.И."), attachments=[("mis_fix", elf(), CT["bin"])])
    return thunderbird(m), E("reject", ["attachment_dangerous"], None, [], None, P6_ADDR, s)


@fx("reject", "macho_named_txt", "Mach-O magic in a file named readme.txt: executable content whatever the name")
def _(c):
    f = P4
    s = "Инструкция"
    m = Mail(c, P4_NAME, P4_ADDR, s, body_with_form(render(f), who="Ткаченко А.С."), attachments=[("readme.txt", macho(), CT["txt"])])
    return thunderbird(m), E("reject", ["attachment_dangerous"], None, [], None, P4_ADDR, s)


@fx("reject", "bat_script", "a .bat script (plain text) attached: attachment_dangerous by extension")
def _(c):
    f = P6.but(steps=cp1251_safe(P6.steps))
    s = "Скрипт для перезапуска службы"
    bat = b"@echo off\r\nnet stop MISClient\r\nnet start MISClient\r\n"
    m = Mail(c, P6_NAME, P6_ADDR, s, body_with_form(render(f), who="Бондаренко Д.И."), attachments=[("restart.bat", bat, "application/x-bat")])
    return thebat(m), E("reject", ["attachment_dangerous"], None, [], None, P6_ADDR, s)


@fx("reject", "js_script", "invoice.js: attachment_dangerous by extension")
def _(c):
    f = P8
    s = "Счет"
    js = b"var s = WScript.CreateObject('WScript.Shell');\r\ns.Run('calc.exe');\r\n"
    m = Mail(c, P8_NAME, P8_ADDR, s, body_with_form(render(f), who="Коваленко С.А."), attachments=[("invoice.js", js, "application/javascript")])
    return mailru(m), E("reject", ["attachment_dangerous"], None, [], None, P8_ADDR, s)


@fx("reject", "vbs_script", "macro.vbs: attachment_dangerous by extension")
def _(c):
    f = P3
    s = "Макрос"
    m = Mail(c, P3_NAME, P3_ADDR, s, body_with_form(render(f), who="Кравченко Е.Н."),
             attachments=[("macro.vbs", b"MsgBox \"hello\"\r\n", "text/vbscript")])
    return thunderbird(m), E("reject", ["attachment_dangerous"], None, [], None, P3_ADDR, s)


@fx("reject", "random_named_pdf", "random bytes named акт.pdf: the extension claims a document, the content is not: attachment_dangerous")
def _(c):
    f = P2
    s = "Акт сверки"
    junk = bytes(c.rnd.randrange(256) for _ in range(4096))
    m = Mail(c, P2_NAME, P2_ADDR, s, body_with_form(render(f), who="Петренко О.В."), attachments=[("акт.pdf", junk, CT["pdf"])])
    return thunderbird(m), E("reject", ["attachment_dangerous"], None, [], None, P2_ADDR, s)


@fx("reject", "random_named_png", "random bytes named screen.png: attachment_dangerous")
def _(c):
    f = P7
    s = "Скриншот"
    junk = b"\x00\x13" + bytes(c.rnd.randrange(256) for _ in range(2048))
    m = Mail(c, P7_NAME, P7_ADDR, s, body_with_form(render(f), who="Шевченко Н.В."), attachments=[("screen.png", junk, CT["png"])])
    return thunderbird(m), E("reject", ["attachment_dangerous"], None, [], None, P7_ADDR, s)


@fx("reject", "random_named_zip", "random bytes named screens.zip (no PK signature): attachment_dangerous, not archive_unreadable")
def _(c):
    f = P5
    s = "Архив скриншотов"
    junk = b"\x1f\x00" + bytes(c.rnd.randrange(256) for _ in range(3000))
    m = Mail(c, P5_NAME, P5_ADDR, s, body_with_form(render(f), who="Мельник И.П."), attachments=[("screens.zip", junk, CT["zip"])])
    return thunderbird(m), E("reject", ["attachment_dangerous"], None, [], None, P5_ADDR, s)


@fx("reject", "exe_with_incomplete_form", "an .exe with an incomplete form: only the reject group is reported (missing [])")
def _(c):
    f = P8.but(phone=None, org=None)
    s = "Программа для МИС"
    m = Mail(c, P8_NAME, P8_ADDR, s, body_with_form(render(f, "sub"), who="Коваленко С.А."),
             attachments=[("setup.exe", exe_pe(), CT["exe"])])
    return thunderbird(m), E("reject", ["attachment_dangerous"], None, [], None, P8_ADDR, s)


@fx("reject", "lone_docx_see_attachment", "only a .docx and 'см. вложение': supplement_only (reg. 3.1)")
def _(c):
    s = "Заявка на доступ"
    d = docx("Данные о заявителе: ...\nПрошу предоставить доступ.")
    m = Mail(c, "Регистратура ГБ1", "reg.gb1@sev.gov.ru", s, "Добрый день, см. вложение.\n",
             attachments=[("Заявка.docx", d, CT["docx"])])
    return outlook(m, "windows-1251"), E("reject", ["supplement_only"], None, [], None, "reg.gb1@sev.gov.ru", s,
                                         attachments=[A("Заявка.docx", "supplement", d, inline=False)])


@fx("reject", "lone_mp4_no_text", "only a phone video, empty body: supplement_only")
def _(c):
    s = "Видео"
    v = mp4(c.seed, 5000)
    m = Mail(c, P8_NAME, P8_ADDR, s, "\n\nSent from my iPhone\n", attachments=[("IMG_0412.MP4", v, CT["mp4"])])
    return iphone(m), E("reject", ["supplement_only"], None, [], None, P8_ADDR, s,
                        attachments=[A("IMG_0412.MP4", "supplement", v, inline=False)])


@fx("reject", "docx_avi_no_subject", "a .docx and an .avi, no subject, no text: supplement_only only (the reject group decides; subject_missing not listed)")
def _(c):
    d, v = docx("Описание"), avi(c.seed)
    m = Mail(c, P3_NAME, P3_ADDR, None, "", attachments=[("описание.docx", d, CT["docx"]), ("запись экрана.avi", v, CT["avi"])])
    return thunderbird(m, flowed=False), E("reject", ["supplement_only"], None, [], None, P3_ADDR, "",
                                           attachments=[A("описание.docx", "supplement", d, inline=False),
                                                        A("запись экрана.avi", "supplement", v, inline=False)])


@fx("reject", "lone_doc_cfb", "an old-style .doc (OLE2) and 'Заявка во вложении': supplement_only")
def _(c):
    s = "Заявка"
    d = cfb("Заявка на создание учетной записи")
    m = Mail(c, P5_NAME, P5_ADDR, s, "Заявка во вложении.\n", attachments=[("заявка.doc", d, CT["doc"])])
    return thebat(m), E("reject", ["supplement_only"], None, [], None, P5_ADDR, s,
                        attachments=[A("заявка.doc", "supplement", d, inline=False)])


# =============================================================================================
# filter
# =============================================================================================

def _filter(name, what, from_addr, from_name=None, from_raw=None, client="tb", extra=(), sender=None,
            attachments=(), subject="Не работает запись к врачу", pin_sender=True):
    @fx("filter", name, what)
    def _(c):
        f = P1
        m = Mail(c, from_name, from_addr, subject, body_with_form(render(f), who="Иванова Т.А."),
                 attachments=list(attachments), headers_extra=list(extra), from_raw=from_raw)
        eml = thunderbird(m) if client == "tb" else outlook(m, "utf-8")
        e = E("filter", ["sender_domain"], None, [], None, sender if sender is not None else from_addr.lower(), subject)
        if not pin_sender:
            del e["sender"]
        return eml, e


_filter("gmail", "a complete form from a private gmail.com address: filtered (reg. 3.3)", "ivanova.tatyana1985@gmail.com", P1_NAME)
_filter("subdomain", "mail.sev.gov.ru is a subdomain: not allowed by default", "t.ivanova@mail.sev.gov.ru", P1_NAME)
_filter("subdomain_mixed_case", "GB1.Sev.Gov.Ru (subdomain in mixed case): filtered, sender lower-cased", "Registratura@GB1.Sev.Gov.Ru", "Регистратура")
_filter("lookalike_suffix", "sev.gov.ru.example.com look-alike: filtered", "t.ivanova@sev.gov.ru.example.com", P1_NAME)
_filter("lookalike_prefix", "notsev.gov.ru look-alike: filtered", "t.ivanova@notsev.gov.ru", P1_NAME)
_filter("desk_own_domain", "sevmiac.ru (the desk's own domain) is not sev.gov.ru: filtered", "ivanov@sevmiac.ru", "Иванов Иван")
_filter("display_name_trick", "From: \"help@sev.gov.ru\" <x@evil.com>: the display name is never used", "x@evil.com",
        from_raw='"t.ivanova@sev.gov.ru" <x@evil.com>')
_filter("display_name_encoded_trick", "the display name is an encoded-word that decodes to a sev.gov.ru address", "promo@mail-sender.biz",
        from_raw="=?UTF-8?B?" + base64.b64encode("Иванова <t.ivanova@sev.gov.ru>".encode()).decode() + "?= <promo@mail-sender.biz>")
_filter("missing_from", "no From header at all: filtered, sender \"\"", "", from_raw="\0", sender="")
_filter("garbage_from", "From with only an encoded display name and no address: filtered, sender \"\"", "",
        from_raw="=?UTF-8?B?" + base64.b64encode("Иванова Татьяна".encode()).decode() + "?=", sender="")
_filter("empty_from", "an empty From header: filtered, sender \"\"", "", from_raw="", sender="")
_filter("reply_to_inside", "From outside, Reply-To inside the domain: the From address decides", "helpdesk.gb1@yandex.ru", "Иванова Т.А.",
        extra=[("Reply-To", f"<{P1_ADDR}>")])
_filter("sender_header_inside", "From outside, Sender: inside the domain: the From address decides", "t.ivanova@list.ru", P1_NAME,
        extra=[("Sender", P1_ADDR)])
_filter("outside_with_exe", "outside sender with an .exe: filter wins over reject (group order)", "admin@evil-updates.com", "МИАЦ",
        attachments=[("update.exe", exe_pe(), CT["exe"])], subject="Срочное обновление МИС")
_filter("mailer_daemon_outside", "MAILER-DAEMON at another domain: filtered (filter before ignore)", "MAILER-DAEMON@mail.ru",
        extra=[("Auto-Submitted", "auto-replied")], subject="Undelivered Mail Returned to Sender")
_filter("auto_reply_outside", "an out-of-office reply from outside: filter before ignore", "glavvrach.gb1@gmail.com", "Главный врач",
        extra=[("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")], subject="Автоматический ответ: Заявка")


# =============================================================================================
# ignore
# =============================================================================================

def _ignore(name, what, headers, text="Я нахожусь в отпуске до 20.11.2023.\n", sender="t.ivanova@sev.gov.ru",
            from_h=None, subject="Автоматический ответ: Не открывается расписание", pin_followup=True, body=None):
    @fx("ignore", name, what)
    def _(c):
        person = {P1_ADDR: P1_NAME, P2_ADDR: P2_NAME, P3_ADDR: P3_NAME, P4_ADDR: P4_NAME, P5_ADDR: P5_NAME, P6_ADDR: P6_NAME}.get(sender)
        hs = [("Received", c.received()), ("From", from_h or addr(person, sender)), ("To", HELP),
              ("Subject", subj(subject, "b-utf8")), ("Date", c.date), ("Message-ID", c.msgid("tb")), ("MIME-Version", "1.0")]
        hs += headers
        t = text if text.endswith("\n") else text + "\n"
        eml = message(hs, body(c) if body else text_part(t, "plain", "utf-8", "8bit", quote_cs=False))
        e = E("ignore", ["automatic"], None, [], None, sender.lower(), subject)
        if not pin_followup:
            del e["followup_of"]
        return eml, e


def _ooo_body(c):
    t = "Я нахожусь в отпуске с 13.11.2023 по 20.11.2023.\nПо срочным вопросам обращайтесь к Петрову С.И., тел. 55-12-00.\n"
    return multipart("multipart/alternative", c.boundary(), [
        text_part(t, "plain", "windows-1251", "quoted-printable"),
        text_part(outlook_html(t, "windows-1251"), "html", "windows-1251", "quoted-printable")])


_ignore("outlook_out_of_office", "Outlook OOF: Auto-Submitted: auto-replied + X-Auto-Response-Suppress: All (one automatic reason)",
        [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All"), ("X-Mailer", "Microsoft Outlook 16.0")],
        body=_ooo_body)
_ignore("ooo_to_ticket_reply", "an auto-reply whose subject carries [Заявка #123]: ignore comes before followup (followup_of not pinned)",
        [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")],
        subject="Автоматический ответ: RE: [Заявка #123] Не открывается расписание", pin_followup=False, body=_ooo_body)
_ignore("auto_submitted_generated", "Auto-Submitted: auto-generated (a system notification)",
        [("Auto-Submitted", "auto-generated")], "Задание «Выгрузка реестра» завершено с ошибкой.\n",
        "mis-robot@sev.gov.ru", subject="Отчет планировщика МИС")
_ignore("auto_submitted_odd_value", "Auto-Submitted: auto-notified (any value but 'no')",
        [("Auto-Submitted", "auto-notified")], "Уведомление.\n", "mis-robot@sev.gov.ru", subject="Уведомление")
_ignore("precedence_bulk", "Precedence: bulk", [("Precedence", "bulk")], "Новости ЕГИСЗ за ноябрь.\n",
        "news@sev.gov.ru", subject="Новости ЕГИСЗ")
_ignore("precedence_junk", "Precedence: junk", [("Precedence", "junk")], "Реклама.\n", "info@sev.gov.ru", subject="Вебинар")
_ignore("precedence_list", "Precedence: list", [("Precedence", "list")], "Сообщение рассылки.\n", "it-list@sev.gov.ru",
        subject="[it-list] Обновление МИС 14.11")
_ignore("list_id", "List-Id header only", [("List-Id", ew("Обсуждение ЕГИСЗ") + " <egisz.lists.sev.gov.ru>")],
        render(P2), "o.petrenko@sev.gov.ru", subject="[egisz] Ошибка формирования реестра")
_ignore("list_unsubscribe", "List-Unsubscribe header only", [("List-Unsubscribe", "<mailto:egisz-leave@lists.sev.gov.ru>")],
        "Дайджест рассылки.\n", "digest@sev.gov.ru", subject="Дайджест")
_ignore("list_post", "List-Post header only (any List-*)", [("List-Post", "<mailto:egisz@lists.sev.gov.ru>")],
        render(P3), "kravchenko.en@sev.gov.ru", subject="Не подписывается протокол")
_ignore("x_loop", "X-Loop header", [("X-Loop", HELP)], render(P4), "it.gb5@sev.gov.ru", subject="Не печатается обменная карта")
_ignore("x_autoreply", "X-Autoreply: yes", [("X-Autoreply", "yes")], "Спасибо, письмо получено.\n", "gb4@sev.gov.ru",
        subject="Re: Не закрывается талон")
_ignore("x_autorespond", "X-Autorespond header", [("X-Autorespond", ew("Ваше письмо получено"))], "Ваше письмо получено.\n",
        "gb9@sev.gov.ru", subject="Ваше письмо получено")
_ignore("x_auto_response_suppress_oof", "X-Auto-Response-Suppress: OOF alone", [("X-Auto-Response-Suppress", "OOF")],
        "Отсутствую.\n", "melnik.ip@sev.gov.ru", subject="Отсутствую на рабочем месте")
_ignore("x_auto_response_suppress_all", "X-Auto-Response-Suppress: All alone", [("X-Auto-Response-Suppress", "All")],
        "Приглашение на совещание.\n", "d.bondarenko@sev.gov.ru", subject="Совещание по ЕГИСЗ")
_ignore("return_path_empty", "Return-Path: <> (null reverse path)", [("Return-Path", "<>")], render(P5),
        "calendar@sev.gov.ru", subject="Напоминание")
_ignore("sender_mailer_daemon", "From MAILER-DAEMON@sev.gov.ru, plain text, no other trigger",
        [], "This is the mail system at host mail.sev.gov.ru.\n\nYour message is delayed.\n",
        "MAILER-DAEMON@sev.gov.ru", from_h="MAILER-DAEMON@sev.gov.ru (Mail Delivery System)", subject="Delayed Mail (still being retried)")
_ignore("sender_postmaster", "From postmaster@sev.gov.ru", [], "Ваш почтовый ящик почти заполнен.\n", "postmaster@sev.gov.ru",
        subject="Почтовый ящик переполнен")
_ignore("sender_noreply", "From noreply@sev.gov.ru", [], render(P6), "noreply@sev.gov.ru", subject="Уведомление портала")
_ignore("sender_no_reply", "From No-Reply@sev.gov.ru (case-insensitive)", [], "Уведомление.\n", "No-Reply@sev.gov.ru",
        subject="Портал: новое сообщение")
_ignore("sender_owner", "From owner-egisz@sev.gov.ru", [], "Bounce report.\n", "owner-egisz@sev.gov.ru", subject="Отчет рассылки")
_ignore("sender_request", "From egisz-request@sev.gov.ru", [], "Welcome to the list.\n", "egisz-request@sev.gov.ru",
        subject="Подписка на рассылку")


def _dsn_body(c, orig: bytes, report_type="delivery-status", exe=False):
    if report_type == "delivery-status":
        human = text_part("Сообщение не доставлено следующим адресатам:\n\nivanov-old@sev.gov.ru\n", "plain", "utf-8", "8bit")
        status = part([("Content-Type", "message/delivery-status")],
                      (b"Reporting-MTA: dns;mail.sev.gov.ru\r\nArrival-Date: " + c.date.encode() +
                       b"\r\n\r\nFinal-Recipient: rfc822;ivanov-old@sev.gov.ru\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                       b"Diagnostic-Code: smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound; not found\r\n"))
    else:
        human = text_part("Ваше сообщение было прочитано 14.11.2023 10:02.\n", "plain", "utf-8", "8bit")
        status = part([("Content-Type", "message/disposition-notification")],
                      b"Reporting-UA: sev.gov.ru; Microsoft Outlook 16.0\r\nFinal-Recipient: rfc822;t.ivanova@sev.gov.ru\r\n"
                      b"Original-Message-ID: <0001a2b3c4d5@sevmiac.ru>\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n")
    orig_part = part([("Content-Type", "message/rfc822")], orig)
    return multipart("multipart/report", c.boundary(), [human, status, orig_part], ct_extra=f" report-type={report_type};")


def _orig_with_exe(c):
    m = Mail(Ctx("ignore", "orig"), P1_NAME, HELP, "Ответ службы поддержки", "Ваша заявка принята.\n",
             attachments=[("tool.exe", exe_pe(), CT["exe"])])
    return thunderbird(m)


@fx("ignore", "dsn_postfix_full", "a real-looking Postfix bounce: Return-Path <>, MAILER-DAEMON, Auto-Submitted, multipart/report (with an .exe inside the returned message): one automatic reason")
def _(c):
    hs = [("Return-Path", "<>"), ("Received", c.received()), ("From", "MAILER-DAEMON@sev.gov.ru (Mail Delivery System)"),
          ("To", HELP), ("Subject", "Undelivered Mail Returned to Sender"), ("Date", c.date),
          ("Message-Id", "<20231114071233.4F2A81C0A1@mail.sev.gov.ru>"), ("Auto-Submitted", "auto-replied"), ("MIME-Version", "1.0")]
    return (message(hs, _dsn_body(c, _orig_with_exe(c))),
            E("ignore", ["automatic"], None, [], None, "mailer-daemon@sev.gov.ru", "Undelivered Mail Returned to Sender"))


@fx("ignore", "report_delivery_status_exchange", "an Exchange NDR: multipart/report; report-type=delivery-status is the only trigger")
def _(c):
    sender = "MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@sev.gov.ru"
    hs = [("Received", c.received()), ("From", f"Microsoft Outlook <{sender}>"), ("To", HELP),
          ("Subject", subj("Не доставлено: Ответ по заявке", "b-utf8")), ("Date", c.date), ("Message-ID", c.msgid("outlook")),
          ("MIME-Version", "1.0")]
    orig = thunderbird(Mail(Ctx("ignore", "orig2"), "Служба поддержки", HELP, "Ответ по заявке", render(P1)))
    return (message(hs, _dsn_body(c, orig)),
            E("ignore", ["automatic"], None, [], None, sender.lower(), "Не доставлено: Ответ по заявке"))


@fx("ignore", "report_read_receipt", "an MDN (read receipt): multipart/report; report-type=disposition-notification")
def _(c):
    hs = [("Received", c.received()), ("From", addr(P1_NAME, P1_ADDR)), ("To", HELP),
          ("Subject", subj("Прочитано: Ответ службы технической поддержки", "b-1251")), ("Date", c.date),
          ("Message-ID", c.msgid("outlook")), ("MIME-Version", "1.0")]
    orig = (b"From: help@sevmiac.ru\r\nTo: t.ivanova@sev.gov.ru\r\nSubject: Reply\r\nMessage-ID: <0001a2b3c4d5@sevmiac.ru>\r\n")
    return (message(hs, _dsn_body(c, orig, "disposition-notification")),
            E("ignore", ["automatic"], None, [], None, P1_ADDR, "Прочитано: Ответ службы технической поддержки"))


@fx("ignore", "autoreply_with_exe", "an auto-reply carrying an .exe: ignore wins over reject (group order)")
def _(c):
    m = Mail(c, P6_NAME, P6_ADDR, "Автоответ", "Ваше письмо получено.\n", attachments=[("tool.exe", exe_pe(), CT["exe"])],
             headers_extra=[("Auto-Submitted", "auto-replied")])
    return thunderbird(m), E("ignore", ["automatic"], None, [], None, P6_ADDR, "Автоответ")


# =============================================================================================
# followup
# =============================================================================================

QUOTE_DESK = ("\n\n-----Original Message-----\nFrom: help@sevmiac.ru <help@sevmiac.ru>\nSent: Monday, November 13, 2023 4:12 PM\n"
              "To: {to}\nSubject: {subject}\n\nДобрый день! Уточните, пожалуйста, логин пользователя.\n")


@fx("followup", "re_zayavka_123", "Outlook 'RE: [Заявка #123] …' with a pasted screenshot and quoted history: followup_of 123")
def _(c):
    base = "[Заявка #123] Не открывается расписание"
    s = "RE: " + base
    img = png(600)
    text = "Добрый день! Проблема сохраняется, скриншот ниже. Логин petrov_si." + QUOTE_DESK.format(to=P1_ADDR, subject=base)
    m = Mail(c, P1_NAME, P1_ADDR, base, cp1251_safe(text))
    return (outlook(m, "windows-1251", inline=[("image001.png", img, "image/png")], subject_prefix="RE: "),
            E("followup", [], [], [], 123, P1_ADDR, s, attachments=[A("image001.png", "image", img, inline=True)]))


@fx("followup", "re_re_ticket_45", "'RE: RE: [Ticket#45] …': followup_of 45")
def _(c):
    s = "RE: RE: [Ticket#45] Ошибка подписи ЭМД"
    m = Mail(c, P3_NAME, P3_ADDR, s, "Сертификат переустановили, ошибка та же.\n")
    return thunderbird(m), E("followup", [], [], [], 45, P3_ADDR, s)


@fx("followup", "otvet_lowercase_7", "'Ответ: [заявка #7] …' (lower-case tag): followup_of 7")
def _(c):
    s = "Ответ: [заявка #7] Не закрывается талон"
    m = Mail(c, P5_NAME, P5_ADDR, s, "Здравствуйте.\n\nДиагноз заполнен, талон все равно не закрывается.\n\n-- \nМельник И.П.\n")
    return thebat(m), E("followup", [], [], [], 7, P5_ADDR, s)


@fx("followup", "otv_caps_88", "'Отв: [ЗАЯВКА #88] …' in a windows-1251 Q encoded-word: followup_of 88")
def _(c):
    s = "Отв: [ЗАЯВКА #88] Нет прав"
    m = Mail(c, P6_NAME, P6_ADDR, s, "Права выдали, спасибо.\n")
    return thebat(m, subject_how="q-1251"), E("followup", [], [], [], 88, P6_ADDR, s)


@fx("followup", "fwd_re_chain_1001", "'Fwd: Re: [Заявка #1001] …' forwarded by a colleague: followup_of 1001")
def _(c):
    s = "Fwd: Re: [Заявка #1001] Не приходят направления"
    text = ("Пересылаю ответ, у нас та же проблема.\n\n-------- Пересылаемое сообщение --------\nТема: \tRe: [Заявка #1001] Не приходят направления\n"
            "Дата: \tMon, 13 Nov 2023 15:02:11 +0300\nОт: \tКоваленко С.А. <kovalenko.sa@sev.gov.ru>\nКому: \thelp@sevmiac.ru\n\n"
            "Направления так и не приходят.\n")
    m = Mail(c, P2_NAME, P2_ADDR, s, text)
    return thunderbird(m), E("followup", [], [], [], 1001, P2_ADDR, s)


@fx("followup", "thebat_re2_ticket_lower_9", "The Bat! 'Re[2]: [ticket#9] …': followup_of 9")
def _(c):
    s = "Re[2]: [ticket#9] Ошибка печати"
    m = Mail(c, P7_NAME, P7_ADDR, s, "Здравствуйте.\n\nПечать заработала.\n")
    return thebat(m), E("followup", [], [], [], 9, P7_ADDR, s)


@fx("followup", "tag_only_55", "'[Заявка #55] дополнение' without Re:: followup_of 55")
def _(c):
    s = "[Заявка #55] дополнение"
    img = png(601)
    m = Mail(c, P4_NAME, P4_ADDR, s, "Добавляю скриншот.\n", attachments=[("screen.png", img, CT["png"])])
    return thunderbird(m), E("followup", [], [], [], 55, P4_ADDR, s, attachments=[A("screen.png", "image", img, inline=False)])


@fx("followup", "no_form_thanks_300", "a one-line thank-you to ticket #300: no fields_missing, missing [] and no field_recommended")
def _(c):
    s = "Re: [Заявка #300] Не работает запись"
    m = Mail(c, P8_NAME, P8_ADDR, s, "Спасибо, все работает.\n\nSent from my iPhone\n")
    return iphone(m), E("followup", [], [], [], 300, P8_ADDR, s)


@fx("followup", "lone_docx_203", "a follow-up with only a .docx: not supplement_only (follow-ups skip it)")
def _(c):
    s = "RE: [Заявка #203] Заявка на доступ"
    d = docx("Список пользователей")
    m = Mail(c, P6_NAME, P6_ADDR, "[Заявка #203] Заявка на доступ", "Список во вложении.\n", attachments=[("список.docx", d, CT["docx"])])
    return (outlook(m, "utf-8", subject_prefix="RE: "),
            E("followup", [], [], [], 203, P6_ADDR, s, attachments=[A("список.docx", "supplement", d, inline=False)]))


@fx("followup", "bmp_warning_200", "a follow-up with a .bmp: decision followup, attachment_type becomes a warning")
def _(c):
    s = "Re: [Заявка #200] Скриншот"
    b = bmp()
    m = Mail(c, P3_NAME, P3_ADDR, s, "Скриншот во вложении.\n", attachments=[("screen.bmp", b, CT["bmp"])])
    return thunderbird(m), E("followup", [], ["attachment_type"], [], 200, P3_ADDR, s,
                             attachments=[A("screen.bmp", "other", b, inline=False)])


@fx("followup", "six_images_warning_201", "a follow-up with 6 screenshots: too_many_images becomes a warning")
def _(c):
    s = "Re: [Заявка #201] Скриншоты"
    files = imgs(6, 610)
    m = Mail(c, P2_NAME, P2_ADDR, s, "Скриншоты по шагам.\n", attachments=files)
    return thunderbird(m), E("followup", [], ["too_many_images"], [], 201, P2_ADDR, s)


@fx("followup", "encrypted_zip_warning_202", "a follow-up with an encrypted zip: archive_unreadable becomes a warning")
def _(c):
    s = "Re: [Заявка #202] Логи"
    z = zip_build([{"name": "client.log.txt", "data": b"ERROR timeout\r\n" * 50, "password": b"1234"}], c.seed)
    m = Mail(c, P2_NAME, P2_ADDR, s, "Логи в архиве, пароль 1234.\n", attachments=[("logs.zip", z, CT["zip"])])
    return thunderbird(m), E("followup", [], ["archive_unreadable"], [], 202, P2_ADDR, s)


@fx("followup", "exe_reject_204", "a follow-up with an .exe: decision reject (attachment_dangerous), followup_of still 204")
def _(c):
    s = "Re: [Заявка #204] Утилита"
    m = Mail(c, P6_NAME, P6_ADDR, s, "Прикладываю утилиту, которой пользуемся.\n", attachments=[("fix.exe", exe_pe(), CT["exe"])])
    return thunderbird(m), E("reject", ["attachment_dangerous"], None, [], 204, P6_ADDR, s)


@fx("followup", "split_encoded_subject_77", "the tag spread over two UTF-8 encoded-words: followup_of 77")
def _(c):
    s = "Re: [Заявка #77] Не формируется отчет по диспансеризации взрослого населения"
    raw = "Re: " + " ".join(ew_words("[Заявка #77] Не формируется отчет по диспансеризации взрослого населения", "UTF-8", "B", 40))
    m = Mail(c, P2_NAME, P2_ADDR, None, "Отчет так и не формируется.\n", subject_raw=raw.replace(" =?", "\r\n =?"))
    return thunderbird(m), E("followup", [], [], [], 77, P2_ADDR, s)


# =============================================================================================
# charset
# =============================================================================================

def fmap(f: Form, fn) -> Form:
    kw = {k: (fn(getattr(f, k)) if isinstance(getattr(f, k), str) else getattr(f, k)) for k in Form.FIELDS}
    return f.but(**kw, phone_n=f.phone_n)


def _charset(name, what, person, paddr, pname, charset, cte, client="plain", subject="Ошибка в МИС", subject_how="b-utf8",
             mailer="Microsoft Outlook 16.0", safe=None):
    @fx("charset", name, what)
    def _(c):
        f = fmap(person, safe) if safe else person
        text = body_with_form(render(f), who=short_name(pname))
        if client == "bat":
            eml = thebat(Mail(c, pname, paddr, subject, text), charset, cte, subject_how)
        else:
            hs = [("Received", c.received()), ("From", addr(pname, paddr, "UTF-8" if charset.lower() == "utf-8" else charset)),
                  ("To", HELP), ("Subject", subj(subject, subject_how)), ("Date", c.date),
                  ("Message-ID", c.msgid("outlook")), ("MIME-Version", "1.0")]
            eml = message(hs, part([("Content-Type", f'text/plain; charset="{charset}"'), ("Content-Transfer-Encoding", cte),
                                    ("X-Mailer", mailer)], encode_body(text, charset, cte)))
        return eml, EF(f, paddr, subject)


_charset("utf8_qp", "text/plain UTF-8 quoted-printable (Outlook plain-text format)", P1, P1_ADDR, P1_NAME, "utf-8", "quoted-printable",
         subject="Не открывается расписание")
_charset("utf8_base64", "text/plain UTF-8 base64", P2, P2_ADDR, P2_NAME, "utf-8", "base64", subject="Ошибка формирования реестра",
         mailer="Mail.Ru Mailer 1.0")
_charset("utf8_8bit", "text/plain UTF-8 8bit", P3, P3_ADDR, P3_NAME, "utf-8", "8bit", subject="Не подписывается ЭМД",
         mailer="Claws Mail 4.1.1")
_charset("cp1251_8bit", "The Bat! windows-1251 8bit", P4, P4_ADDR, P4_NAME, "windows-1251", "8bit", "bat",
         subject="Не печатается обменная карта", subject_how="q-1251", safe=cp1251_safe)
_charset("cp1251_qp", "The Bat! windows-1251 quoted-printable", P5, P5_ADDR, P5_NAME, "windows-1251", "quoted-printable", "bat",
         subject="Не закрывается талон", subject_how="q-1251", safe=cp1251_safe)
_charset("cp1251_base64", "text/plain windows-1251 base64 (Outlook Express)", P6, P6_ADDR, P6_NAME, "windows-1251", "base64",
         subject="Нет прав на операцию", subject_how="b-1251", mailer="Microsoft Outlook Express 6.00.2900.5931", safe=cp1251_safe)
_charset("koi8r_8bit", "The Bat! KOI8-R 8bit, KOI8-R B-encoded subject (no «» or № in KOI8-R: plain quotes and N)", P3, P3_ADDR, P3_NAME,
         "KOI8-R", "8bit", "bat", subject="Не подписывается протокол осмотра", subject_how="b-koi8", safe=KOI_SAFE)
_charset("koi8r_qp", "KOI8-R quoted-printable", P7, P7_ADDR, P7_NAME, "KOI8-R", "quoted-printable", "bat",
         subject="Нет слотов для записи", subject_how="b-koi8", safe=KOI_SAFE)
_charset("koi8r_base64", "KOI8-R base64 single part", P8, P8_ADDR, P8_NAME, "koi8-r", "base64", subject="РЭМД недоступен",
         subject_how="b-koi8", mailer="Mutt/2.2.9", safe=KOI_SAFE)


@fx("charset", "html_only_cp1251_qp", "HTML-only text/html windows-1251 QP with <br> lines and a <meta> charset")
def _(c):
    f = P6.but(steps=cp1251_safe(P6.steps))
    s = "Нет прав на назначение роли"
    lines = ["Добрый день!", ""] + render(f).split("\n") + ["", "С уважением, Бондаренко Д.И."]
    hb = ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.0 Transitional//EN">\n<HTML><HEAD>\n'
          '<META http-equiv=Content-Type content="text/html; charset=windows-1251">\n</HEAD>\n<BODY bgColor=#ffffff>\n'
          + "".join(f"<DIV><FONT face=Arial size=2>{html_escape_text(l) or '&nbsp;'}</FONT></DIV>\n" for l in lines)
          + "</BODY></HTML>\n")
    hs = [("Received", c.received()), ("From", addr(P6_NAME, P6_ADDR, "windows-1251")), ("To", HELP),
          ("Subject", subj(s, "b-1251")), ("Date", c.date), ("Message-ID", c.msgid("outlook")), ("MIME-Version", "1.0"),
          ("X-Mailer", "Microsoft Outlook Express 6.00.2900.5931")]
    return message(hs, text_part(hb, "html", "windows-1251", "quoted-printable")), EF(f, P6_ADDR, s)


@fx("charset", "alt_mixed_charsets", "multipart/alternative: text/plain windows-1251 QP and text/html UTF-8 base64 with the same form")
def _(c):
    f = P1.but(steps=cp1251_safe(P1.steps))
    s = "Ошибка в расписании логопеда"
    t = body_with_form(render(f), who="Иванова Т.А.")
    hb = "<html><body>" + "".join(f"<p>{html_escape_text(l, True) or '&nbsp;'}</p>" for l in t.split("\n")) + "</body></html>"
    alt = multipart("multipart/alternative", c.boundary(), [text_part(t, "plain", "windows-1251", "quoted-printable"),
                                                            text_part(hb, "html", "utf-8", "base64")])
    hs = [("From", addr(P1_NAME, P1_ADDR)), ("To", HELP), ("Subject", subj(s, "b-utf8")), ("Date", c.date),
          ("Message-ID", c.msgid("tb")), ("MIME-Version", "1.0")]
    return message(hs, alt), EF(f, P1_ADDR, s)


@fx("charset", "subject_many_words_mixed", "a long subject folded over several UTF-8 B encoded-words: decoded and joined without gaps")
def _(c):
    s = "Ошибка ЕГИСЗ: код 0x80070005 при выгрузке СЭМД «Протокол консультации» в РЭМД (повторно, третий день)"
    m = Mail(c, P3_NAME, P3_ADDR, None, body_with_form(render(P3), who="Кравченко Е.Н."),
             subject_raw="\r\n ".join(ew_words(s, "UTF-8", "B")))
    return thunderbird(m), EF(P3, P3_ADDR, s, fields=None)


@fx("charset", "subject_q_utf8", "=?UTF-8?Q?…?= subject with underscores for spaces")
def _(c):
    s = "Не работает печать направлений"
    m = Mail(c, P8_NAME, P8_ADDR, None, body_with_form(render(P8), who="Коваленко С.А."), subject_raw=subj(s, "q-utf8"))
    return thunderbird(m), EF(P8, P8_ADDR, s, fields=None)


@fx("charset", "subject_padded_trimmed", "an encoded subject with blanks around the text: trimmed")
def _(c):
    s = "  Не работает печать  "
    m = Mail(c, P8_NAME, P8_ADDR, None, body_with_form(render(P8), who="Коваленко С.А."),
             subject_raw="=?UTF-8?B?" + base64.b64encode(s.encode()).decode() + "?=")
    return thunderbird(m), EF(P8, P8_ADDR, s.strip(), fields=None)


@fx("charset", "from_name_q_cp1251", "display name as a windows-1251 Q encoded-word, quoted-printable body")
def _(c):
    f = fmap(P5, cp1251_safe)
    s = "Не закрывается талон"
    hs = [("From", f"{_ew_one(P5_NAME, 'windows-1251', 'Q')} <{P5_ADDR}>"), ("To", HELP),
          ("Subject", subj(s, "q-1251")), ("Date", c.date), ("Message-ID", c.msgid("bat")), ("MIME-Version", "1.0")]
    t = body_with_form(render(f), who="Мельник И.П.")
    return message(hs, text_part(t, "plain", "windows-1251", "quoted-printable")), EF(f, P5_ADDR, s, fields=None)


# =============================================================================================
# layout
# =============================================================================================

def _layout(name, what, person, paddr, pname, layout="colon", client="tb", fields="all", subject="Ошибка в МИС",
            text_fn=None, form_fn=None):
    @fx("layout", name, what)
    def _(c):
        f = form_fn(person) if form_fn else person
        text = text_fn(f) if text_fn else body_with_form(render(f, layout), who=short_name(pname))
        m = Mail(c, pname, paddr, subject, text)
        if client == "tb":
            eml = thunderbird(m, flowed=False)
        elif client == "outlook":
            eml = outlook(m, "utf-8")
        elif client == "bat":
            eml = thebat(m)
        else:
            eml = mailru(m)
        return eml, EF(f, paddr, subject, fields=fields)


_layout("blocks_multiline_steps", "labels alone on a line, values below, numbered multi-line steps joined with \\n", P1, P1_ADDR, P1_NAME,
        "blocks", form_fn=lambda f: f.but(steps=STEPS_MULTI), subject="Не записывается пациент к логопеду")


def _blocks_tight(f: Form) -> str:
    return ("Здравствуйте!\n\nДанные о заявителе:\n" + _join(f.fn, f.pos, f.org, f.phone) + "\nФИО пользователя, логин:\n"
            + _join(f.user, f.login) + "\nДанные пациента:\n" + _join(f.patient, f.card)
            + "\nПоследовательность выполняемых действий:\n" + f.steps + "\nОписание ошибки:\n" + f.error
            + "\n\nСпасибо.\n")


_layout("blocks_no_blank_lines", "label-alone layout with no blank lines: the next label ends the multi-line steps", P2, P2_ADDR, P2_NAME,
        text_fn=_blocks_tight, form_fn=lambda f: f.but(steps="1. Отчеты\n2. Счета-реестры\n3. Сформировать за октябрь 2023"),
        subject="Не формируется реестр")
_layout("sublabels_applicant", "'Данные о заявителе:' heading with ФИО:/Должность:/МО:/Телефон: sub-labels", P2, P2_ADDR, P2_NAME, "sub",
        subject="Не формируется счет-реестр")
_layout("caps_labels", "labels in capitals (ДАННЫЕ О ЗАЯВИТЕЛЕ: …)", P3, P3_ADDR, P3_NAME, "caps", subject="Ошибка подписи ЭМД")
_layout("emdash_separator", "'Label — value' with an em dash", P5, P5_ADDR, P5_NAME, "emdash", subject="Не закрывается талон")
_layout("tab_separator", "'Label<TAB>value'", P7, P7_ADDR, P7_NAME, "tab", subject="Нет слотов для записи")


def _hyphen(f: Form) -> str:
    return ("Добрый день!\n\n" + f"Заявитель - {_join(f.fn, f.pos, f.org, f.phone)}\nПользователь - {f.user}\nЛогин - {f.login}\n"
            f"Пациент - {f.patient}\n№ карты - {f.card}\nПоследовательность действий - {f.steps}\nОшибка - {f.error}\n\nСпасибо.\n")


_layout("hyphen_separator_synonyms", "'Label - value' with the short synonyms Заявитель/Пользователь/Логин/Пациент/№ карты/Ошибка",
        P6, P6_ADDR, P6_NAME, text_fn=_hyphen, subject="Нет прав на назначение роли")


def _syn1(f: Form) -> str:
    return ("Здравствуйте.\n\n" + f"Заявитель: {_join(f.fn, f.pos, f.org, f.phone)}\nПользователь: {f.user}\nЛогин: {f.login}\n"
            f"Пациент: {f.patient}\n№ карты: {f.card}\nШаги воспроизведения: {f.steps}\nТекст ошибки: {f.error}\n\n"
            "С уважением,\nКоваленко С.А.\n")


_layout("synonyms_steps_text", "Шаги воспроизведения / Текст ошибки; the error text itself contains a colon", P8, P8_ADDR, P8_NAME,
        text_fn=_syn1, form_fn=lambda f: f.but(error="Ошибка сохранения: Object reference not set to an instance of an object."),
        subject="Ошибка при сохранении направления")


def _syn2(f: Form) -> str:
    return ("Добрый день.\n\n" + f"Заявитель: {_join(f.fn, f.pos, f.org, f.phone)}\nФИО пользователя: {f.user}\nЛогин: {f.login}\n"
            f"Данные пациента: {_join(f.patient, f.card)}\nПоследовательность действий: {f.steps}\nОшибка: {f.error}\n\nСпасибо!\n")


_layout("synonyms_short", "Последовательность действий / Ошибка", P4, P4_ADDR, P4_NAME, text_fn=_syn2, subject="Не печатается обменная карта")
def _reg_wording(f: Form) -> str:
    return body_with_form("\n".join([
        "Данные о заявителе:", f"ФИО: {f.fn}", f"Должность обратившегося: {f.pos}", f"Наименование МО пользователя: {f.org}",
        f"Контактный номер телефона: {f.phone}", f"ФИО пользователя: {f.user}", f"Логин, под которым воспроизводится ошибка: {f.login}",
        f"Фамилия, инициалы пациента: {f.patient}", f"№ карты: {f.card}", f"Последовательность выполняемых действий: {f.steps}",
        f"Описание ошибки: {f.error}"]), who="Шевченко Н.В.")


_layout("sublabels_regulation_wording", "WORDING: sub-labels in the regulation's own words (Должность обратившегося, Наименование МО пользователя, "
        "Контактный номер телефона, Логин, под которым…, Фамилия, инициалы пациента)", P7, P7_ADDR, P7_NAME, text_fn=_reg_wording,
        subject="Нет слотов для записи")
_layout("applicant_split_canonical", "the SPEC's example applicant line splits into name/position/MO/+78692551234", P1, P1_ADDR, P1_NAME,
        fields=["applicant.full_name", "applicant.position", "applicant.organization", "applicant.phone"],
        subject="Не открывается расписание")
_layout("unbalanced_quotes_combined", "MO «Городская больница №5 – «Центр …» (unbalanced quotes) in the comma line comes out whole", P4, P4_ADDR,
        P4_NAME, fields=["applicant.full_name", "applicant.position", "applicant.organization", "applicant.phone"],
        subject="Не печатается обменная карта")
_layout("unbalanced_quotes_sublabel", "the unbalanced-quotes MO under the МО: sub-label", P4, P4_ADDR, P4_NAME, "sub",
        fields=["applicant.organization", "applicant.phone"], subject="Ошибка печати")
_layout("phone_plus7_978", "phone '+7 978 123-45-67' → +79781234567", P2, P2_ADDR, P2_NAME, "sub", fields=["applicant.phone"],
        subject="Реестр")
_layout("phone_8_8692", "phone '8 (8692) 54-32-10' → +78692543210", P3, P3_ADDR, P3_NAME, "sub", fields=["applicant.phone"],
        subject="ЭМД")
_layout("phone_paren_8692", "phone '(8692) 48-11-02' (no trunk prefix) → +78692481102", P4, P4_ADDR, P4_NAME, "sub",
        fields=["applicant.phone"], subject="Печать")
_layout("phone_tel_prefix", "phone 'тел. 8-978-700-11-22' at the end of the comma line → +79787001122", P5, P5_ADDR, P5_NAME,
        fields=["applicant.phone", "applicant.organization"], subject="Талон")
_layout("phone_plus7_paren_978", "phone '+7 (978) 555-66-77' → +79785556677", P6, P6_ADDR, P6_NAME, fields=["applicant.phone"],
        subject="Роль")
_layout("applicant_no_position_heuristic", "HEURISTIC: comma line name, MO, phone (no position): position absent → one field_recommended",
        P8, P8_ADDR, P8_NAME, form_fn=lambda f: f.but(pos=None),
        fields=["applicant.full_name", "applicant.position", "applicant.organization", "applicant.phone"], subject="РЭМД")


def _card_label(f: Form) -> str:
    return body_with_form("\n".join([f"Данные о заявителе: {_join(f.fn, f.pos, f.org, f.phone)}",
                                     f"ФИО пользователя, логин: {f.user}, {f.login}",
                                     f"Данные пациента: {f.patient}, № карты {f.card}",
                                     f"Последовательность выполняемых действий: {f.steps}", f"Описание ошибки: {f.error}"]),
                          who="Шевченко Н.В.")


_layout("patient_card_inline_label", "AMBIGUOUS: 'Данные пациента: Андреева М.К., № карты 98114' → name 'Андреева М.К.', card '98114'",
        P7, P7_ADDR, P7_NAME, text_fn=_card_label, fields=["patient.name", "patient.card", "user.full_name", "user.login"],
        subject="Запись")


def _card_alnum(f: Form) -> str:
    return body_with_form(render(f), who="Кравченко Е.Н.")


_layout("patient_card_alphanumeric", "AMBIGUOUS: a card number with letters and a hyphen ('Лысенко Г.Н., ЦГБ-017734') is still the card",
        P3, P3_ADDR, P3_NAME, text_fn=_card_alnum, form_fn=lambda f: f.but(card="ЦГБ-017734"),
        fields=["patient.name", "patient.card"], subject="Не подписывается протокол")


def _para_after(f: Form) -> str:
    return ("Добрый день\n\n" + render(f) + "\n\nВидео с экрана пришлю отдельным письмом.\n\n--\n"
            "Отправлено из мобильной Почты Mail.ru\n")


_layout("paragraph_after_last_field", "AMBIGUOUS: a blank line ends the last value; the sentence after it is not part of error_text",
        P6, P6_ADDR, P6_NAME, client="mailru", text_fn=_para_after, fields=["error_text", "steps"], subject="Нет прав на роль")


def _word_table(plain_style: str):
    def make(c, f, s, pname, paddr, cs):
        rows = table_rows(f)
        intro = "Добрый день!\n\nЗаявка по форме:"
        outro = "\nС уважением,\n" + short_name(pname)
        if plain_style == "tab":
            plain = intro + "\n\n" + "\n".join(f"{lab}\t{' '.join(v)}" for lab, v in rows) + "\n" + outro + "\n"
        else:
            plain = intro + "\n\n" + "\n\n".join(lab + "\n" + "\n".join(v) for lab, v in rows) + "\n" + outro + "\n"
        m = Mail(c, pname, paddr, s, plain)
        html_text = intro + "\n\n" + outro
        return outlook(m, cs, html_text=html_text, table=rows, table_after=len(intro.split("\n")) + 1, entities=(cs != "utf-8"))
    return make


@fx("layout", "outlook_word_table_tab", "Outlook/Word two-column table in HTML; the text/plain alternative has one row per line, TAB between cells")
def _(c):
    f = P2
    s = "Не формируется счет-реестр"
    return _word_table("tab")(c, f, s, P2_NAME, P2_ADDR, "utf-8"), EF(f, P2_ADDR, s)


@fx("layout", "outlook_word_table_cp1251", "Outlook/Word table, windows-1251, &laquo; entities in HTML; plain part has label line then value lines; multi-line steps cell")
def _(c):
    f = P1.but(steps="1. Регистратура\n2. Расписание стандартное\n3. Запись пациента к врачу-логопеду")
    s = "Не записывается пациент"
    return _word_table("blocks")(c, f, s, P1_NAME, P1_ADDR, "windows-1251"), EF(f, P1_ADDR, s, fields="single")


@fx("layout", "html_table_only", "HTML-only mail (Mail.ru web) with a bordered two-column table, &laquo;/&raquo; entities, no text/plain")
def _(c):
    f = P1
    s = "Не открывается расписание"
    rows = "".join(f'<tr><td style="width:220px">{html_escape_text(lab, True)}</td><td>{"<br>".join(html_escape_text(x, True) for x in v)}</td></tr>'
                   for lab, v in table_rows(f))
    hb = ("<HTML><BODY><div>Добрый день!</div><div>&nbsp;</div><div>Направляю заявку.</div><div>&nbsp;</div>"
          '<table border="1" cellpadding="4" cellspacing="0" style="border-collapse:collapse"><tbody>' + rows + "</tbody></table>"
          "<div>&nbsp;</div><div>С уважением, Иванова Т.А.</div></BODY></HTML>")
    m = Mail(c, P1_NAME, P1_ADDR, s, "")
    return yandex(m, hb), EF(f, P1_ADDR, s)


@fx("layout", "html_only_paragraphs_styles", "HTML-only with <style>, <p>/<br>, <b> labels and nbsp: the markup is not part of the values")
def _(c):
    f = P5
    s = "Не закрывается талон"
    def ln(lab, val):
        return f"<b>{html_escape_text(lab)}:</b>&nbsp;{html_escape_text(val, True)}<br>\n"
    hb = ("<html><head><style>body{font-family:Arial} b{color:#003366}</style></head><body><p>Добрый день!</p><p>"
          + ln("Данные о заявителе", _join(f.fn, f.pos, f.org, f.phone)) + ln("ФИО пользователя, логин", _join(f.user, f.login))
          + ln("Данные пациента", _join(f.patient, f.card)) + ln("Последовательность выполняемых действий", f.steps)
          + ln("Описание ошибки", f.error) + "</p><p>С уважением,<br>Мельник И.П.</p></body></html>")
    m = Mail(c, P5_NAME, P5_ADDR, s, "")
    return yandex(m, hb), EF(f, P5_ADDR, s)


@fx("layout", "quoted_original_message", "Outlook reply: the form above '-----Original Message-----' counts, the quoted older form does not")
def _(c):
    f = P1.but(steps=cp1251_safe(P1.steps))
    old = P2.but(fn="Старый Заявитель Иванович", phone="+7 978 999-99-99", login="old_login")
    s = "RE: Заявка не принята: не заполнены поля"
    text = (body_with_form(render(f), "Добрый день!", "Исправленная заявка.", who="Иванова Т.А.")
            + "\n-----Original Message-----\nFrom: help@sevmiac.ru <help@sevmiac.ru>\nSent: Monday, November 13, 2023 4:12 PM\n"
              f"To: {P1_ADDR}\nSubject: Заявка не принята: не заполнены поля\n\nВаша заявка не принята.\n\n"
            + cp1251_safe(render(old)) + "\n")
    m = Mail(c, P1_NAME, P1_ADDR, "Заявка не принята: не заполнены поля", text)
    return outlook(m, "windows-1251", subject_prefix="RE: "), EF(f, P1_ADDR, s)


@fx("layout", "quoted_forwarded_tb", "Thunderbird forward (format=flowed): '-------- Пересылаемое сообщение --------' and below is ignored (login stays absent)")
def _(c):
    f = P5.but(login=None)
    s = "Fwd: не работает талон"
    text = (body_with_form(render(f, "sub"), "Добрый день!", "Пересылаю обращение регистратуры, данные заполнил.", who="Мельник И.П.")
            + "\n-------- Пересылаемое сообщение --------\nТема: \tне работает талон\nДата: \tMon, 13 Nov 2023 15:02:11 +0300\n"
              "От: \tРегистратура ГБ4 <reg.gb4@sev.gov.ru>\nКому: \tmelnik.ip@sev.gov.ru\n\n"
              "Логин: reg_gb4_01\nОшибка: при закрытии пишет не заполнен диагноз\n")
    m = Mail(c, P5_NAME, P5_ADDR, s, text)
    eml = thunderbird(m, flowed=True)
    assert b" \r\n" in eml  # soft-wrapped lines: unflow them too
    return eml, EF(f, P5_ADDR, s)


@fx("layout", "quoted_outlook_ot_otpravleno", "Outlook (Russian UI) quote header 'От: … Отправлено: … Кому: … Тема:': patient data below it is ignored")
def _(c):
    f = P4.but(patient=None, card=None)
    s = "FW: Ошибка печати обменной карты"
    text = (body_with_form(render(f), "Добрый день!", "Пересылаю, данные ниже.", who="Ткаченко А.С.")
            + "\nОт: Регистратура ГБ5 <reg.gb5@sev.gov.ru>\nОтправлено: 13 ноября 2023 г. 15:40\nКому: it.gb5@sev.gov.ru\n"
              "Тема: Ошибка печати\n\nДанные пациента: Мартыненко Е.С., 2023/0815\nНе печатается обменная карта.\n")
    m = Mail(c, P4_NAME, P4_ADDR, s, text)
    return outlook(m, "utf-8"), EF(f, P4_ADDR, s)


@fx("layout", "quoted_on_wrote", "'On … wrote:' + '>' lines: quoted steps and error text do not count → missing steps, error_text")
def _(c):
    f = P3.but(steps=None, error=None)
    s = "Re: Уточнение по заявке"
    text = (render(f) + "\n\nOn 13.11.2023 16:05, Help Desk wrote:\n> Добрый день!\n> Заполните форму:\n"
            "> Последовательность выполняемых действий: ЭМК пациента -> Протокол осмотра\n"
            "> Описание ошибки: сертификат не найден\n")
    m = Mail(c, P3_NAME, P3_ADDR, s, text)
    return thunderbird(m), EF(f, P3_ADDR, s)


@fx("layout", "quoted_pishet", "'… пишет:' + '>' lines: a quoted phone does not count → missing applicant.phone")
def _(c):
    f = P7.but(phone=None)
    s = "Re: Нет слотов"
    text = (render(f, "sub") + "\n\n13.11.2023 16:05, Служба технической поддержки пишет:\n> Укажите контактный телефон.\n"
            "> Контактный телефон: +7 (8692) 53-00-17\n")
    m = Mail(c, P7_NAME, P7_ADDR, s, text)
    return thunderbird(m), EF(f, P7_ADDR, s)


@fx("layout", "signature_phone_ignored", "a phone only in the signature after '-- ' does not count → missing applicant.phone")
def _(c):
    f = P4.but(phone=None)
    s = "Не печатается карта"
    text = (render(f, "sub") + "\n\n-- \nС уважением,\nТкаченко Андрей Сергеевич\nсистемный администратор\n"
            "Телефон: (8692) 48-11-02\n")
    m = Mail(c, P4_NAME, P4_ADDR, s, text)
    return thunderbird(m), EF(f, P4_ADDR, s)


# =============================================================================================
# attachments
# =============================================================================================

@fx("attachments", "size_exact_10mib", "one PDF of exactly 10,485,760 decoded bytes (~14 MB of base64): not too_large → accept")
def _(c):
    eml, f, s, exp = big_pdf_mail(c, TEN_MIB)
    return eml, EF(f, P2_ADDR, s, fields=None, attachments=exp)


@fx("attachments", "five_images_inline_and_attached", "2 pasted + 3 attached images (PNG, JPEG, GIF) = exactly 5: accept")
def _(c):
    f = P2
    s = "Скриншоты ошибки реестра"
    inl = [("image001.png", png(700), "image/png"), ("image002.png", png(701), "image/png")]
    att = [("Шаг 3.jpg", jpeg(702), CT["jpg"]), ("Шаг 4.png", png(703), CT["png"]), ("анимация.gif", gif(704), CT["gif"])]
    m = Mail(c, P2_NAME, P2_ADDR, s, body_with_form(render(f), who="Петренко О.В."), attachments=att)
    exp = [A(n, "image", d, inline=True) for n, d, _ in inl] + [A(n, "image", d, inline=False) for n, d, _ in att]
    return outlook(m, "utf-8", inline=inl), EF(f, P2_ADDR, s, fields=None, attachments=exp)


@fx("attachments", "signature_logo_plus_4", "an Outlook signature logo (inline) + 4 attached screenshots = 5 images: accept")
def _(c):
    f = P6.but(steps=cp1251_safe(P6.steps))
    s = "Ошибка назначения роли"
    logo = png(710, 60, 20)
    att = imgs(4, 711, "screen_")
    m = Mail(c, P6_NAME, P6_ADDR, s, body_with_form(render(f), who="Бондаренко Д.И."), attachments=att)
    exp = [A("image001.png", "image", logo, inline=True)] + [A(n, "image", d, inline=False) for n, d, _ in att]
    return outlook(m, "windows-1251", inline=[("image001.png", logo, "image/png")]), EF(f, P6_ADDR, s, fields=None, attachments=exp)


@fx("attachments", "png_named_jpg", "a PNG named screenshot.jpg: still an image, warning extension_mismatch")
def _(c):
    f = P3
    s = "Скриншот ошибки подписи"
    img = png(720)
    m = Mail(c, P3_NAME, P3_ADDR, s, body_with_form(render(f), who="Кравченко Е.Н."), attachments=[("screenshot.jpg", img, CT["jpg"])])
    return thunderbird(m), EF(f, P3_ADDR, s, warnings_extra=["extension_mismatch"], fields=None,
                              attachments=[A("screenshot.jpg", "image", img, inline=False)])


@fx("attachments", "jpeg_named_png", "a JPEG named фото.png (phone upload): image, extension_mismatch")
def _(c):
    f = P8
    s = "Фото экрана"
    img = jpeg(721)
    text = "Добрый день\n\n" + render(f) + "\n\n--\nОтправлено из мобильной Почты Mail.ru\n"
    m = Mail(c, P8_NAME, P8_ADDR, s, text, attachments=[("фото.png", img, CT["png"])])
    return mailru(m), EF(f, P8_ADDR, s, warnings_extra=["extension_mismatch"], fields=None,
                         attachments=[A("фото.png", "image", img)])


@fx("attachments", "cyrillic_rfc2231", "Thunderbird: Cyrillic names as RFC 2231 filename*=UTF-8''%D0… (+ RFC 2047 name=)")
def _(c):
    f = P3
    s = "Ошибка подписи протокола"
    files = [("Скриншот ошибки.png", png(730), CT["png"]), ("Протокол осмотра.pdf", pdf("Protokol"), CT["pdf"])]
    m = Mail(c, P3_NAME, P3_ADDR, s, body_with_form(render(f), who="Кравченко Е.Н."), attachments=files)
    eml = thunderbird(m)
    assert b"filename*=UTF-8''%D0%A1" in eml
    return eml, EF(f, P3_ADDR, s, fields=None, attachments=[A(files[0][0], "image", files[0][1], inline=False),
                                                            A(files[1][0], "document", files[1][1], inline=False)])


@fx("attachments", "cyrillic_rfc2047_outlook", "Outlook: Cyrillic names as RFC 2047 encoded-words in name= and filename=")
def _(c):
    f = P2
    s = "Выгрузка реестра с ошибкой"
    files = [("Ошибка при выгрузке.png", png(731), CT["png"]), ("Выгрузка.xlsx", xlsx([["Счет", "Сумма"], ["1", "100"]]), CT["xlsx"])]
    m = Mail(c, P2_NAME, P2_ADDR, s, body_with_form(render(f), who="Петренко О.В."), attachments=files)
    return outlook(m, "utf-8"), EF(f, P2_ADDR, s, fields=None, attachments=[A(files[0][0], "image", files[0][1], inline=False),
                                                                           A(files[1][0], "document", files[1][1], inline=False)])


@fx("attachments", "cyrillic_rfc2047_cp1251", "The Bat!: names as windows-1251 B encoded-words")
def _(c):
    f = fmap(P5, cp1251_safe)
    s = "Скрин талона"
    files = [("Скрин ошибки.jpg", jpeg(732), CT["jpg"])]
    m = Mail(c, P5_NAME, P5_ADDR, s, body_with_form(render(f), who="Мельник И.П."), attachments=files)
    eml = thebat(m)
    assert b"=?windows-1251?B?" in eml
    return eml, EF(f, P5_ADDR, s, fields=None, attachments=[A(files[0][0], "image", files[0][1], inline=False)])


@fx("attachments", "rfc2231_continuations", "a long Cyrillic name split over filename*0*= / filename*1*= … continuations")
def _(c):
    f = P2
    s = "Скриншот ошибки реестра"
    fn = "Скриншот ошибки при формировании счета-реестра за октябрь 2023 года.png"
    img = png(733)
    m = Mail(c, P2_NAME, P2_ADDR, s, body_with_form(render(f), who="Петренко О.В."), attachments=[(fn, img, CT["png"])])
    eml = thunderbird(m, att_style="tb2231cont")
    assert b"filename*2*=" in eml
    return eml, EF(f, P2_ADDR, s, fields=None, attachments=[A(fn, "image", img, inline=False)])


@fx("attachments", "octet_stream_png", "a PNG declared application/octet-stream: an image by content")
def _(c):
    f = P7
    s = "Скриншот"
    img = png(734)
    m = Mail(c, P7_NAME, P7_ADDR, s, body_with_form(render(f), who="Шевченко Н.В."), attachments=[("screen.png", img, CT["bin"])])
    return thunderbird(m), EF(f, P7_ADDR, s, fields=None, attachments=[A("screen.png", "image", img, inline=False)])


@fx("attachments", "uppercase_extensions", "SCREEN01.PNG and PHOTO.JPG: extensions are case-insensitive, no mismatch")
def _(c):
    f = P4
    s = "Скриншоты"
    files = [("SCREEN01.PNG", png(735), CT["png"]), ("PHOTO.JPG", jpeg(736), CT["jpg"])]
    m = Mail(c, P4_NAME, P4_ADDR, s, body_with_form(render(f), who="Ткаченко А.С."), attachments=files)
    return thunderbird(m), EF(f, P4_ADDR, s, fields=None, attachments=[A(n, "image", d, inline=False) for n, d, _ in files])


@fx("attachments", "html_part_with_content_id", "multipart/related whose text/html part has a Content-ID, + 5 inline images: the HTML is body, 5 images → accept")
def _(c):
    f = P1
    s = "Скриншоты по шагам"
    inl = [(f"image00{i + 1}.png", png(740 + i), "image/png") for i in range(5)]
    m = Mail(c, P1_NAME, P1_ADDR, s, body_with_form(render(f), who="Иванова Т.А."))
    exp = [A(n, "image", d, inline=True) for n, d, _ in inl]
    return outlook(m, "utf-8", inline=inl, related_html_cid=True), EF(f, P1_ADDR, s, fields=None, attachments=exp)


@fx("attachments", "nameless_inline_image", "an inline image part without any name (only Content-ID): an image, name generated (not pinned)")
def _(c):
    f = P7
    s = "Ошибка записи"
    img = png(750)
    m = Mail(c, P7_NAME, P7_ADDR, s, body_with_form(render(f), who="Шевченко Н.В."))
    return (outlook(m, "utf-8", inline=[(None, img, "image/png")]),
            EF(f, P7_ADDR, s, fields=None, attachments=[{"kind": "image", "bytes": len(img), "inline": True}]))


@fx("attachments", "name_only_in_content_type", "an attachment named only by Content-Type name= (no Content-Disposition)")
def _(c):
    f = P5
    s = "Скриншот талона"
    img = png(751)
    m = Mail(c, P5_NAME, P5_ADDR, s, body_with_form(render(f), who="Мельник И.П."))
    eml = thunderbird(m)
    # rebuild as multipart with a 'bare' part
    tp = text_part(m.text, "plain", "UTF-8", "8bit", quote_cs=False)
    body = multipart("multipart/mixed", c.boundary("tb"), [tp, att_part(img, "талон.png", CT["png"], "bare")])
    hdr_end = eml.index(b"Content-Type:")
    eml = eml[:hdr_end] + body
    return eml, EF(f, P5_ADDR, s, fields=None, attachments=[A("талон.png", "image", img)])


# =============================================================================================
# archives
# =============================================================================================

def screens(n: int, base: int, fmt="screen{:02d}.png"):
    return [(fmt.format(i + 1), png(base + i, 120, 80)) for i in range(n)]


def _arch_mail(c, person, paddr, pname, s, fn, data, ct, client="tb", text=None):
    f = person if client != "bat" else fmap(person, cp1251_safe)
    m = Mail(c, pname, paddr, s, text or body_with_form(render(f), intro="Скриншоты в архиве.", who=short_name(pname)),
             attachments=[(fn, data, ct)])
    eml = {"tb": thunderbird, "bat": thebat, "mailru": mailru}[client](m) if client != "outlook" else outlook(m, "utf-8")
    return eml, f


@fx("archives", "zip_7_screens", "a zip with 7 screenshots (images in archives are not limited): accept, entries listed")
def _(c):
    files = screens(7, 800)
    z = zip_build([{"name": n, "data": d} for n, d in files])
    eml, f = _arch_mail(c, P1, P1_ADDR, P1_NAME, "Скриншоты ошибки", "Скриншоты.zip", z, CT["zip"], "outlook")
    return eml, EF(f, P1_ADDR, "Скриншоты ошибки", fields=None,
                   attachments=[A("Скриншоты.zip", "archive", z, inline=False, entries=[(n, "image") for n, _ in files])])


@fx("archives", "7z_7_screens", "a 7z (LZMA2, py7zr) with 7 screenshots: accept")
def _(c):
    files = screens(7, 810)
    z = sevenzip(files, seed=c.seed)
    eml, f = _arch_mail(c, P2, P2_ADDR, P2_NAME, "Скриншоты реестра", "screens.7z", z, CT["7z"])
    return eml, EF(f, P2_ADDR, "Скриншоты реестра", fields=None,
                   attachments=[A("screens.7z", "archive", z, inline=False, entries=[(n, "image") for n, _ in files])])


@fx("archives", "rar_7_screens", "a RAR 4.x (stored) with 7 screenshots: accept")
def _(c):
    files = screens(7, 820)
    r = rar_build(files, seed=c.seed)
    eml, f = _arch_mail(c, P5, P5_ADDR, P5_NAME, "Скрины талона", "screens.rar", r, CT["rar"], "bat")
    return eml, EF(f, P5_ADDR, "Скрины талона", fields=None,
                   attachments=[A("screens.rar", "archive", r, inline=False, entries=[(n, "image") for n, _ in files])])


@fx("archives", "zip_cyrillic_utf8_names", "zip entries with Cyrillic names (UTF-8 flag) and a .txt: entries decoded")
def _(c):
    files = screens(3, 830, "Ошибка {}.png") + [("описание.txt", "Шаги: открыть ЭМК".encode("utf-8"))]
    z = zip_build([{"name": n, "data": d} for n, d in files])
    eml, f = _arch_mail(c, P3, P3_ADDR, P3_NAME, "Архив со скриншотами", "скрины.zip", z, CT["zip"])
    return eml, EF(f, P3_ADDR, "Архив со скриншотами", fields=None,
                   attachments=[A("скрины.zip", "archive", z, entries=[(n, "image") for n, _ in files[:3]] + [("описание.txt", "document")])])


@fx("archives", "zip_cp866_names", "a zip from Windows Explorer: Cyrillic names in CP866 without the UTF-8 flag (names not pinned)")
def _(c):
    files = screens(3, 840, "Снимок{}.png")
    z = zip_build([{"name": n.encode("cp866"), "data": d, "utf8": False} for n, d in files])
    eml, f = _arch_mail(c, P7, P7_ADDR, P7_NAME, "Снимки", "Снимки.zip", z, CT["zip"])
    return eml, EF(f, P7_ADDR, "Снимки", fields=None,
                   attachments=[{"name": "Снимки.zip", "kind": "archive", "entries": [{"kind": "image"}] * 3}])


@fx("archives", "rar_cyrillic_names", "RAR with LHD_UNICODE Cyrillic entry names (RAR 2.9 name encoding)")
def _(c):
    files = screens(2, 850, "Скрин {}.png") + [("Пояснение.txt", "Пояснение".encode("cp1251"))]
    r = rar_build(files, seed=c.seed)
    eml, f = _arch_mail(c, P6, P6_ADDR, P6_NAME, "Скрины", "скрины.rar", r, CT["rar"])
    return eml, EF(f, P6_ADDR, "Скрины", fields=None,
                   attachments=[A("скрины.rar", "archive", r, entries=[(n, "image") for n, _ in files[:2]] + [("Пояснение.txt", "document")])])


@fx("archives", "zip_plus_5_loose_images", "a zip with 7 screenshots + 5 loose images: 5 outside archives → accept")
def _(c):
    f = P8
    s = "Скриншоты и архив"
    files = screens(7, 860)
    z = zip_build([{"name": n, "data": d} for n, d in files])
    loose = imgs(5, 870, "loose_")
    m = Mail(c, P8_NAME, P8_ADDR, s, body_with_form(render(f), who="Коваленко С.А."), attachments=loose + [("screens.zip", z, CT["zip"])])
    return thunderbird(m), EF(f, P8_ADDR, s, fields=None,
                              attachments=[A(n, "image", d) for n, d, _ in loose] + [A("screens.zip", "archive", z, entries=[(n, "image") for n, _ in files])])


@fx("archives", "zip_mixed_content", "a zip with a screenshot, a PDF and a log: accept, entry kinds image/document/document")
def _(c):
    files = [("screen.png", png(880)), ("акт.pdf", pdf("akt")), ("client.log.txt", b"ERROR\r\n" * 40)]
    z = zip_build([{"name": n, "data": d} for n, d in files])
    eml, f = _arch_mail(c, P4, P4_ADDR, P4_NAME, "Материалы по ошибке", "материалы.zip", z, CT["zip"])
    return eml, EF(f, P4_ADDR, "Материалы по ошибке", fields=None,
                   attachments=[A("материалы.zip", "archive", z, entries=[("screen.png", "image"), ("акт.pdf", "document"),
                                                                         ("client.log.txt", "document")])])


def _unreadable(name, what, make, fn, ct, person=P1, paddr=P1_ADDR, pname=P1_NAME, client="tb"):
    @fx("archives", name, what)
    def _(c):
        data = make(c)
        s = "Архив со скриншотами"
        eml, f = _arch_mail(c, person, paddr, pname, s, fn, data, ct, client)
        return eml, EF(f, paddr, s, reasons_extra=["archive_unreadable"], fields=None, attachments=[A(fn, "archive", data)])


_unreadable("zip_encrypted", "ZipCrypto-encrypted zip (entry names visible, data not): archive_unreadable",
            lambda c: zip_build([{"name": n, "data": d, "password": b"12345"} for n, d in screens(3, 900)], c.seed), "скрины.zip", CT["zip"])
_unreadable("7z_encrypted", "AES-encrypted 7z (names visible): archive_unreadable",
            lambda c: sevenzip(screens(3, 910), password="12345", seed=c.seed), "скрины.7z", CT["7z"], P2, P2_ADDR, P2_NAME)
_unreadable("7z_encrypted_headers", "7z with encrypted headers (even names hidden): archive_unreadable",
            lambda c: sevenzip(screens(3, 920), password="12345", header_encryption=True, seed=c.seed), "скрины.7z", CT["7z"],
            P3, P3_ADDR, P3_NAME)
_unreadable("rar_encrypted", "RAR whose file headers carry LHD_PASSWORD|LHD_SALT: archive_unreadable",
            lambda c: rar_build(screens(3, 930), encrypted=True, seed=c.seed), "скрины.rar", CT["rar"], P4, P4_ADDR, P4_NAME)
_unreadable("rar_encrypted_headers", "RAR with MHD_PASSWORD (headers encrypted): archive_unreadable",
            lambda c: rar_build(screens(3, 935), header_encrypted=True, seed=c.seed), "скрины.rar", CT["rar"], P5, P5_ADDR, P5_NAME, "bat")
_unreadable("zip_truncated", "a zip cut in half (no central directory): archive_unreadable",
            lambda c: (lambda z: z[:len(z) // 2])(zip_build([{"name": n, "data": d} for n, d in screens(4, 940)])), "скрины.zip", CT["zip"],
            P6, P6_ADDR, P6_NAME)
_unreadable("7z_truncated", "a 7z cut in half: archive_unreadable",
            lambda c: (lambda z: z[:len(z) // 2])(sevenzip(screens(4, 950), seed=c.seed)), "скрины.7z", CT["7z"], P7, P7_ADDR, P7_NAME)
_unreadable("rar_truncated", "a RAR cut inside the third file's data (headers of 3 files still list; the CRC test of the 3rd fails): archive_unreadable",
            lambda c: (lambda r: r[:len(r) * 2 // 3])(rar_build(screens(4, 960), seed=c.seed)), "скрины.rar", CT["rar"], P8, P8_ADDR, P8_NAME)


def _rar_cut_in_header(c):
    files = screens(4, 965)
    r = rar_build(files, seed=c.seed)
    # offset of the 3rd file header: marker 7 + main 13 + two (header 32+name, data)
    off = 7 + 13 + sum(32 + len(n) + len(d) for n, d in files[:2])
    assert r[off + 2] == 0x74
    return r[:off + 20]


_unreadable("rar_truncated_in_header", "a RAR cut in the middle of the third file header (unrar: 'File header damaged'): archive_unreadable",
            _rar_cut_in_header, "скрины.rar", CT["rar"], P1, P1_ADDR, P1_NAME)


def _dangerous_arch(name, what, make, fn, ct, person=P2, paddr=P2_ADDR, pname=P2_NAME):
    @fx("archives", name, what)
    def _(c):
        data = make(c)
        s = "Архив с материалами"
        eml, f = _arch_mail(c, person, paddr, pname, s, fn, data, ct)
        return eml, E("reject", ["attachment_dangerous"], None, [], None, paddr, s, attachments=[A(fn, "archive", data)])


def _bomb(total: int):
    chunk = bytes(MIB)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    comp, crc = bytearray(), 0
    for _ in range(total // MIB):
        comp += co.compress(chunk)
        crc = zlib.crc32(chunk, crc)
    comp += co.flush()
    return zip_build([{"name": "report.txt", "comp": (bytes(comp), crc & 0xFFFFFFFF, total)}])


_dangerous_arch("zip_bomb_101mib", "101 MiB of zeros deflated to ~100 KB: decompressed size > 100 MiB → attachment_dangerous",
                lambda c: _bomb(101 * MIB), "report.zip", CT["zip"])
_dangerous_arch("zip_ratio_bomb_2mib", "2 MiB of zeros → ~2 KB (ratio ~1000:1 past 1 MiB): attachment_dangerous",
                lambda c: _bomb(2 * MIB), "logs.zip", CT["zip"], P3, P3_ADDR, P3_NAME)
_dangerous_arch("zip_slip_dotdot", "an entry '../../etc/passwd' escapes the extraction dir: attachment_dangerous",
                lambda c: zip_build([{"name": "screen.png", "data": png(970)}, {"name": "../../etc/passwd", "data": b"root:x:0:0::/root:/bin/sh\n"}]),
                "скрины.zip", CT["zip"], P4, P4_ADDR, P4_NAME)
_dangerous_arch("zip_absolute_path", "an entry '/etc/cron.d/job' (absolute path): attachment_dangerous",
                lambda c: zip_build([{"name": "screen.png", "data": png(971)}, {"name": "/etc/cron.d/job", "data": b"* * * * * root /tmp/x\n"}]),
                "скрины.zip", CT["zip"], P5, P5_ADDR, P5_NAME)
_dangerous_arch("zip_drive_letter", "an entry 'C:/Windows/Temp/readme.txt' (drive letter): attachment_dangerous",
                lambda c: zip_build([{"name": "screen.png", "data": png(972)}, {"name": "C:/Windows/Temp/readme.txt", "data": b"hello\r\n"}]),
                "скрины.zip", CT["zip"], P6, P6_ADDR, P6_NAME)
_dangerous_arch("zip_symlink", "a Unix symlink entry (mode 0120777) pointing to /etc/passwd: attachment_dangerous",
                lambda c: zip_build([{"name": "screen.png", "data": png(973)},
                                     {"name": "passwd", "data": b"/etc/passwd", "method": 0, "unix": True, "external_attr": 0o120777 << 16}]),
                "скрины.zip", CT["zip"], P7, P7_ADDR, P7_NAME)
_dangerous_arch("zip_1001_entries", "1001 tiny entries (> 1000): attachment_dangerous",
                lambda c: zip_build([{"name": f"log{i:04d}.txt", "data": f"{i}\n".encode(), "method": 0} for i in range(1001)]),
                "logs.zip", CT["zip"], P8, P8_ADDR, P8_NAME)
_dangerous_arch("zip_with_exe", "INTERPRETATION: a zip holding setup.exe (MZ) next to a screenshot: attachment_dangerous",
                lambda c: zip_build([{"name": "screen.png", "data": png(974)}, {"name": "setup.exe", "data": exe_pe()}]),
                "files.zip", CT["zip"], P1, P1_ADDR, P1_NAME)
_dangerous_arch("rar_path_escape", "a RAR entry '..\\..\\Windows\\evil.txt': attachment_dangerous",
                lambda c: rar_build([("screen.png", png(975)), ("..\\..\\Windows\\evil.txt", b"x\r\n")], seed=c.seed),
                "скрины.rar", CT["rar"], P3, P3_ADDR, P3_NAME)
_dangerous_arch("7z_path_escape", "a 7z entry '../evil.txt': attachment_dangerous",
                lambda c: sevenzip([("screen.png", png(976)), ("../evil.txt", b"x\n")], seed=c.seed, raw_names=True),
                "скрины.7z", CT["7z"], P4, P4_ADDR, P4_NAME)


@fx("archives", "zip_1000_entries", "exactly 1000 tiny entries (the limit is > 1000): accept")
def _(c):
    z = zip_build([{"name": f"log{i:04d}.txt", "data": f"{i}\n".encode(), "method": 0} for i in range(1000)])
    eml, f = _arch_mail(c, P8, P8_ADDR, P8_NAME, "Логи", "logs.zip", z, CT["zip"])
    return eml, EF(f, P8_ADDR, "Логи", fields=None, attachments=[A("logs.zip", "archive", z)])


@fx("archives", "zip_nested_zip", "a zip inside a zip: attachment_type (entries of the outer archive only)")
def _(c):
    inner = zip_build([{"name": n, "data": d} for n, d in screens(2, 980)])
    z = zip_build([{"name": "screen.png", "data": png(982)}, {"name": "old_screens.zip", "data": inner, "method": 0}])
    eml, f = _arch_mail(c, P2, P2_ADDR, P2_NAME, "Скрины", "скрины.zip", z, CT["zip"])
    return eml, EF(f, P2_ADDR, "Скрины", reasons_extra=["attachment_type"], fields=None,
                   attachments=[A("скрины.zip", "archive", z, entries=[("screen.png", "image"), ("old_screens.zip", "archive")])])


@fx("archives", "rar_nested_7z", "a 7z inside a RAR: attachment_type")
def _(c):
    inner = sevenzip(screens(2, 985), seed=c.seed)
    r = rar_build([("screen.png", png(987)), ("old.7z", inner)], seed=c.seed)
    eml, f = _arch_mail(c, P6, P6_ADDR, P6_NAME, "Скрины", "скрины.rar", r, CT["rar"])
    return eml, EF(f, P6_ADDR, "Скрины", reasons_extra=["attachment_type"], fields=None,
                   attachments=[A("скрины.rar", "archive", r, entries=[("screen.png", "image"), ("old.7z", "archive")])])


# =============================================================================================
# broken
# =============================================================================================

def B(decision, sender, **kw):
    d = {"decision": decision, "sender": sender}
    d.update(kw)
    return d


@fx("broken", "truncated_mid_base64", "the mail ends in the middle of a base64 screenshot (no closing boundary): the form is read → accept")
def _(c):
    f = P1
    s = "Не открывается расписание"
    m = Mail(c, P1_NAME, P1_ADDR, s, body_with_form(render(f), who="Иванова Т.А."),
             attachments=[("screen.png", png(990, 200, 150), CT["png"])])
    eml = thunderbird(m)
    i = eml.index(b"filename=\"screen.png\"")
    j = eml.index(CRLF + CRLF, i) + 4
    cut = j + (len(eml) - j) // 2 + 37
    return eml[:cut], B("accept", P1_ADDR, subject=s)


@fx("broken", "multipart_without_boundary", "Content-Type: multipart/mixed with no boundary parameter, one-line text: incomplete with all required fields missing (reasons not pinned: the unparsed body may surface as a nameless part)")
def _(c):
    s = "Не печатается направление"
    hs = [("From", addr(P7_NAME, P7_ADDR)), ("To", HELP), ("Subject", subj(s)), ("Date", c.date), ("Message-ID", c.msgid("tb")),
          ("MIME-Version", "1.0"), ("Content-Type", "multipart/mixed")]
    body = ("--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nНе печатается направление, помогите.\r\n--XYZ--\r\n").encode()
    return message(hs, CRLF + body), B("incomplete", P7_ADDR, subject=s, missing=REQUIRED + ["steps", "error_text"])


@fx("broken", "boundary_mismatch", "declared boundary differs from the one used: no readable form either way → incomplete, all required fields missing (reasons not pinned)")
def _(c):
    s = "Ошибка"
    hs = [("From", addr(P8_NAME, P8_ADDR)), ("To", HELP), ("Subject", subj(s)), ("Date", c.date), ("Message-ID", c.msgid("tb")),
          ("MIME-Version", "1.0"), ("Content-Type", 'multipart/mixed; boundary="=_AAAAAAAA"')]
    body = multipart_body("=_BBBBBBBB", [text_part("Ошибка при входе, помогите.\n", "plain", "utf-8", "8bit"),
                                         att_part(png(991), "screen.png", CT["png"], "tb")])
    return message(hs, CRLF + body), B("incomplete", P8_ADDR, subject=s, missing=REQUIRED + ["steps", "error_text"])


@fx("broken", "header_only", "headers and nothing else (no blank line, no body): fields_missing")
def _(c):
    s = "Не работает МИС"
    hs = [("From", addr(P6_NAME, P6_ADDR)), ("To", HELP), ("Subject", subj(s)), ("Date", c.date), ("Message-ID", c.msgid("tb")),
          ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8")]
    return message(hs, b""), B("incomplete", P6_ADDR, subject=s, reasons=[{"code": "fields_missing"}],
                               missing=REQUIRED + ["steps", "error_text"], attachments=[])


@fx("broken", "bare_lf", "the whole mail (multipart, base64 image) with bare LF line endings: accept, fields read")
def _(c):
    f = P2
    s = "Не формируется реестр"
    img = png(992)
    m = Mail(c, P2_NAME, P2_ADDR, s, body_with_form(render(f), who="Петренко О.В."), attachments=[("screen.png", img, CT["png"])])
    eml = thunderbird(m, flowed=False, lf_only=True)
    assert b"\r" not in eml
    return eml, B("accept", P2_ADDR, subject=s, fields=f.fields(only=["applicant.full_name", "applicant.phone", "error_text"]),
                  attachments=[A("screen.png", "image", img)])


@fx("broken", "no_charset_8bit_cp1251", "8bit windows-1251 body with no charset declared (not valid UTF-8): decoded as windows-1251 → accept")
def _(c):
    f = fmap(P5, cp1251_safe)
    s = "Не закрывается талон"
    hs = [("From", P5_ADDR), ("To", HELP), ("Subject", subj(s, "q-1251")), ("Date", c.date), ("Message-ID", c.msgid("bat")),
          ("MIME-Version", "1.0"), ("Content-Type", "text/plain"), ("Content-Transfer-Encoding", "8bit")]
    return message(hs, CRLF + body_with_form(render(f), who="Мельник И.П.").replace("\n", "\r\n").encode("cp1251")), B("accept", P5_ADDR)


@fx("broken", "long_header_lines", "a 3,000-char unfolded Subject of encoded-words, a 12,000-char References line, a 20,000-char X- header: accept")
def _(c):
    f = P3
    s = ("Ошибка при подписании ЭМД: " + "сертификат не найден в хранилище, повторная попытка не помогла; " * 12).strip()
    refs = " ".join(f"<ref{i:04d}.{hx(c.key + str(i), 6)}@sev.gov.ru>" for i in range(300))
    m = Mail(c, P3_NAME, P3_ADDR, None, body_with_form(render(f), who="Кравченко Е.Н."),
             subject_raw=" ".join(ew_words(s, "UTF-8", "B")),
             headers_extra=[("References", refs), ("X-Trace", "A" * 20000)])
    eml = thunderbird(m)
    assert max(len(l) for l in eml.split(CRLF)) > 12000
    return eml, B("accept", P3_ADDR, subject=s)


@fx("broken", "nested_60_levels", "multipart nested 60 levels deep, the form in the first text part: accept (mime_limit warning allowed, warnings not pinned)")
def _(c):
    f = P4
    s = "Печать обменной карты"
    inner = text_part("конец\n", "plain", "utf-8", "8bit")
    for lvl in range(59, 0, -1):
        inner = multipart("multipart/mixed", f"=_lvl{lvl:02d}_{hx(c.key, 4)}", [inner])
    top = multipart("multipart/mixed", f"=_lvl00_{hx(c.key, 4)}",
                    [text_part(body_with_form(render(f), who="Ткаченко А.С."), "plain", "utf-8", "8bit"), inner])
    hs = [("From", addr(P4_NAME, P4_ADDR)), ("To", HELP), ("Subject", subj(s)), ("Date", c.date), ("Message-ID", c.msgid("tb")),
          ("MIME-Version", "1.0")]
    return message(hs, top), B("accept", P4_ADDR, subject=s)


@fx("broken", "parts_2000", "a form part followed by 2000 one-byte .txt attachments: accept (mime_limit allowed, warnings not pinned)")
def _(c):
    f = P7
    s = "Нет слотов"
    parts_ = [text_part(body_with_form(render(f), who="Шевченко Н.В."), "plain", "utf-8", "8bit")]
    parts_ += [part([("Content-Type", f'text/plain; name="p{i:04d}.txt"'), ("Content-Disposition", f'attachment; filename="p{i:04d}.txt"')],
                    b"x") for i in range(2000)]
    hs = [("From", addr(P7_NAME, P7_ADDR)), ("To", HELP), ("Subject", subj(s)), ("Date", c.date), ("Message-ID", c.msgid("tb")),
          ("MIME-Version", "1.0")]
    return message(hs, multipart("multipart/mixed", c.boundary("tb"), parts_)), B("accept", P7_ADDR, subject=s)


@fx("broken", "garbage_header_line", "a line without a colon among the trailing headers: accept")
def _(c):
    f = P8
    s = "РЭМД недоступен"
    m = Mail(c, P8_NAME, P8_ADDR, s, body_with_form(render(f), who="Коваленко С.А."))
    eml = thunderbird(m, flowed=False)
    i = eml.index(b"\r\n\r\n")
    return eml[:i] + b"\r\nThis line is not a header\r\nX-Spam-Score: 0.1" + eml[i:], B("accept", P8_ADDR, subject=s)


@fx("broken", "unterminated_multipart", "the closing boundary is missing, the last part is complete: accept, image listed")
def _(c):
    f = P1
    s = "Ошибка в расписании"
    img = png(993)
    m = Mail(c, P1_NAME, P1_ADDR, s, body_with_form(render(f), who="Иванова Т.А."), attachments=[("screen.png", img, CT["png"])])
    eml = thunderbird(m)
    k = eml.rindex(b"--" + eml.split(b'boundary="')[1].split(b'"')[0] + b"--")
    return eml[:k], B("accept", P1_ADDR, subject=s, attachments=[A("screen.png", "image", img)])


@fx("broken", "base64_text_with_junk_whitespace", "a base64 text part with trailing blanks and an empty line inside the base64: accept")
def _(c):
    f = P6
    s = "Нет прав"
    raw = b64_lines(body_with_form(render(f), who="Бондаренко Д.И.").encode("utf-8")).split(CRLF)
    raw = [l + b"  " if i % 3 == 0 and l else l for i, l in enumerate(raw)]
    raw.insert(len(raw) // 2, b"")
    hs = [("From", addr(P6_NAME, P6_ADDR)), ("To", HELP), ("Subject", subj(s)), ("Date", c.date), ("Message-ID", c.msgid("mailru")),
          ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "base64")]
    return message(hs, CRLF + CRLF.join(raw)), B("accept", P6_ADDR, subject=s)


@fx("broken", "empty_file", "a 0-byte file: no From → filter, sender \"\"")
def _(c):
    return b"", B("filter", "", reasons=[{"code": "sender_domain"}])


@fx("broken", "raw_utf8_headers", "unencoded UTF-8 in Subject and the From display name (RFC 6532 style): accept, subject decoded")
def _(c):
    f = P2
    s = "Не формируется счет-реестр"
    hs = [("From", f"{P2_NAME} <{P2_ADDR}>".encode("utf-8")), ("To", HELP), ("Subject", s.encode("utf-8")), ("Date", c.date),
          ("Message-ID", c.msgid("tb")), ("MIME-Version", "1.0")]
    return message(hs, text_part(body_with_form(render(f), who="Петренко О.В."), "plain", "utf-8", "8bit")), B("accept", P2_ADDR, subject=s)


# =============================================================================================
# Driver
# =============================================================================================

README_HEAD = """# Golden fixtures

Generated by `scripts/make_fixtures.py` (do not edit by hand): `python3 scripts/make_fixtures.py`
rewrites every `fixtures/<group>/<name>.eml` + `<name>.expected.json` and this README;
`python3 scripts/make_fixtures.py --check` regenerates in memory and fails if anything on disk differs.

The generator needs **py7zr** from PyPI (`pip install py7zr`; only for the `.7z` archives). Everything else is
the Python 3.11 standard library. Output is deterministic (fixed dates, Message-IDs and boundaries derived
from the fixture name, `random.Random` seeded with the fixture name, py7zr's clock and AES IV patched);
byte-identical regeneration assumes the same zlib and py7zr versions. CI never runs the generator: the
generated files are committed.

## Layout

`fixtures/<group>/<name>.eml` is one raw RFC 5322 message (CRLF line endings, except where `broken/`
says otherwise), `fixtures/<group>/<name>.expected.json` the part of the verdict (`src/verdict/mod.rs`) it pins.
Groups: `accept`, `incomplete`, `reject`, `filter`, `ignore`, `followup` (one per decision, by what the
fixture is mainly about), `charset`, `layout` (form parsing), `attachments`, `archives`, `broken`.
The group is not the decision: read `decision` in the expected file.

## Subset semantics

The golden test compares expected ⊆ actual:

* object: every key present in the expected file must be present in the actual JSON and match
  recursively; keys left out are not checked (e.g. `detail` texts, `content_type`, `message_id`);
* array: the SAME LENGTH, matched as a multiset (each expected element subset-matches a distinct
  actual element; order ignored). So `reasons`, `warnings` (when present), `missing`, `attachments`
  and `entries` list everything;
* scalar: equal (`null` included).

Conventions used in the expected files:

* `decision`, `reasons` (`[{"code": …}]`, one element per code — `field_recommended` is one per absent
  recommended field), `missing`, `followup_of`, `sender`, `subject` are always given (except in
  `broken/`, which pins what a reasonable engine must do: usually `decision` and `sender`);
* `warnings` is given for accept / incomplete / followup; omitted on filter / ignore / reject and on the
  few incomplete fixtures without any form (whether those get `field_recommended` is left open; one
  fixture, `incomplete/see_attachment_png`, pins five);
* two deliberate gaps: `accept/trailing_dot_domain` leaves `sender` open (trailing dot kept or
  stripped), `ignore/ooo_to_ticket_reply` leaves `followup_of` open (an ignored mail carrying a tag);
* `missing` is `[]` whenever `fields_missing` is not among the reasons (filter, ignore, reject,
  followup, and accept of course);
* `fields` pins parsed values where the fixture is about parsing (`null` = absent); multi-line
  `steps` (lines joined with `\\n`) only in a few fixtures; `priority`/`impact` pinned on all accept and
  incomplete fixtures of `accept/` `incomplete/` `layout/` `charset/` `attachments/` `archives/`
  (no form lines → `normal`/`null`);
* `attachments` give `name`, `kind`, `bytes` (decoded size), `inline` (true for pasted screenshots,
  false for `Content-Disposition: attachment`), `entries` `[{name, kind}]` for readable archives.

## Binary payloads

All generated by the script, never pasted: PNG (zlib + struct), baseline JPEG (8×8 grey, one-code
Huffman tables), GIF89a 1×1, BMP, TIFF, HEIC/MP4 (ISO-BMFF `ftyp`), AVI (RIFF), OLE2 header for
.doc/.xls, docx/xlsx/odt/ods (real zip containers), PDF (valid xref; the 10 MiB ones padded with a
comment block to the exact byte count), PE/ELF/Mach-O headers, tar.gz (fixed mtime).

* ZIP: own writer (fixed DOS time, deflate via zlib, ZipCrypto = PKWARE traditional encryption with a
  12-byte header whose last byte is the CRC's high byte, UTF-8 flag 0x800, Unix symlink mode
  0120777 in the external attributes, precomputed streams for the bombs).
* 7z: py7zr (LZMA2; AES-256 with `password=`; `header_encryption=True` for hidden names).
* RAR 4.x writer: marker `Rar!\\x1a\\x07\\x00`; main header HEAD_TYPE 0x73 (flags 0, or 0x0080
  MHD_PASSWORD followed by opaque bytes for the header-encrypted one); one file header HEAD_TYPE 0x74 per
  file with flags 0x8000 (LONG_BLOCK), PACK_SIZE, UNP_SIZE, HOST_OS 2, FILE_CRC = crc32(data), DOS
  FTIME, UNP_VER 20, METHOD 0x30 (stored), NAME_SIZE, ATTR 0x20, name; Cyrillic names set
  LHD_UNICODE 0x0200 and use the RAR 2.9 encoding (cp866 name, NUL, HighByte + 2-bit op flags);
  encrypted files set LHD_PASSWORD 0x0004 | LHD_SALT 0x0400 with an 8-byte salt and opaque 16-byte-padded
  data; end-of-archive block HEAD_TYPE 0x7B flags 0x4000. Every HEAD_CRC = crc32(header bytes from
  HEAD_TYPE on) & 0xFFFF.

## Notes for engine authors (seen while cross-checking the fixture bytes with the crates in Cargo.toml)

* mail-parser converts `text/*` parts to UTF-8. `bytes`, the 10 MiB limit and the magic-byte checks need
  the transfer-decoded file bytes instead: `accept/documents_all_kinds` has a windows-1251 `выгрузка.csv`
  of 54 bytes that `contents()` returns as 110; `reject/macho_named_txt` is a Mach-O binary declared
  `text/plain` whose `CF FA ED FE` magic does not survive the conversion.
* mail-parser returns the still-encoded base64 text of a last part whose multipart has no closing
  delimiter (`broken/unterminated_multipart`: 200 bytes instead of the 144-byte PNG), and likewise for
  `broken/truncated_mid_base64`: a screenshot must not turn into "random bytes named .png".
* mail-parser exposes an unparseable multipart body (`broken/boundary_mismatch`,
  `broken/multipart_without_boundary`) as one nameless `multipart/mixed` "attachment"; those two pin
  only decision, sender, subject and `missing`.
* Thunderbird sends `format=flowed` by default (RFC 3676: a line ending in a space continues on the next
  one). `accept/thunderbird_flowed` and `layout/quoted_forwarded_tb` need that decoding; the other
  Thunderbird-style fixtures that pin parsed values are sent non-flowed so that they test one thing.
* unrar lists `archives/rar_truncated` (cut inside file data) without error; only testing the entries
  (CRC) shows the damage. `archives/rar_truncated_in_header` fails while listing; the half-read third
  header is damage, not a file of an unaccepted type.
* `archives/zip_cp866_names` (Windows Explorer style, no UTF-8 flag) decodes as CP437 mojibake in the
  zip crate; its entry names are not pinned.
* `reasons` hold one element per code (`field_recommended`, a warning, is one per field). Fixtures where
  one mail has several findings of the same code: `ignore/outlook_out_of_office` and
  `ignore/ooo_to_ticket_reply` (Auto-Submitted + X-Auto-Response-Suppress), `ignore/dsn_postfix_full`
  (four triggers), `archives/zip_bomb_101mib` (size and ratio). If the engine lists one reason per
  finding instead, these four change.
* Fixtures whose description starts with HEURISTIC, AMBIGUOUS, INTERPRETATION or WORDING pin a choice
  the SPEC does not spell out; drop or adjust them if the engine decides otherwise.

## Fixtures

| fixture | decision | what it tests |
| --- | --- | --- |
"""


def build_all() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    seen = set()
    for group, name, what, fn in FIXTURES:
        assert (group, name) not in seen, (group, name)
        seen.add((group, name))
        c = Ctx(group, name)
        eml, exp = fn(c)
        files[f"{group}/{name}.eml"] = eml
        files[f"{group}/{name}.expected.json"] = (json.dumps(exp, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    rows = []
    for group, name, what, fn in FIXTURES:
        exp = json.loads(files[f"{group}/{name}.expected.json"])
        rows.append(f"| `{group}/{name}` | {exp.get('decision', '')} | {what.replace('|', '/')} |")
    counts = {g: sum(1 for x in FIXTURES if x[0] == g) for g in GROUPS}
    summary = "\n\nCount per group: " + ", ".join(f"{g} {n}" for g, n in counts.items()) + f"; total {len(FIXTURES)}.\n"
    files["README.md"] = (README_HEAD + "\n".join(rows) + summary).encode("utf-8")
    return files


def self_check(files: dict[str, bytes]) -> list[str]:
    """Parse every mail with Python's email package and compare what it can see with the expectation."""
    problems = []
    for key, data in files.items():
        if not key.endswith(".eml") or key.startswith("broken/"):
            continue
        exp = json.loads(files[key[:-4] + ".expected.json"])
        msg = email.message_from_bytes(data, policy=email.policy.default)
        frm = msg.get("From")
        try:
            got = frm.addresses[0].addr_spec.lower() if frm is not None and frm.addresses else ""
        except Exception:
            got = ""
        if "sender" in exp and exp["decision"] != "filter" and got != exp["sender"]:
            problems.append(f"{key}: From parses as {got!r}, expected sender {exp['sender']!r}")
        sj = str(msg.get("Subject", "") or "").strip()
        if "subject" in exp and sj != exp["subject"] and not key.startswith("charset/subject_padded"):
            problems.append(f"{key}: subject parses as {sj!r}")
        if "attachments" in exp:
            seen = []
            for p in msg.walk():
                if p.is_multipart() or p.get_content_maintype() == "text" and not p.get_filename():
                    continue
                seen.append((p.get_filename(), len(p.get_payload(decode=True) or b"")))
            for a in exp["attachments"]:
                if "name" in a and "bytes" in a and (a["name"], a["bytes"]) not in seen:
                    problems.append(f"{key}: attachment {a['name']!r} with {a['bytes']} bytes not found in {seen[:8]}")
            if len(seen) != len(exp["attachments"]):
                problems.append(f"{key}: {len(seen)} file parts, expected {len(exp['attachments'])}")
        if not key.startswith("broken/"):
            body = data.split(b"\r\n\r\n", 1)[0]
            if b"\n" in body.replace(b"\r\n", b""):
                problems.append(f"{key}: bare LF in the header block")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare a fresh generation with fixtures/ on disk")
    ap.add_argument("--out", default=str(OUT), help="output directory (default: fixtures/)")
    args = ap.parse_args()
    files = build_all()
    problems = self_check(files)
    for p in problems:
        print("self-check:", p, file=sys.stderr)
    out = Path(args.out)
    if args.check:
        bad = [k for k, v in files.items() if not (out / k).is_file() or (out / k).read_bytes() != v]
        extra = [str(p.relative_to(out)) for g in GROUPS if (out / g).is_dir() for p in (out / g).iterdir()
                 if str(p.relative_to(out)) not in files and not p.name.endswith(".actual.json")]
        for k in bad + extra:
            print("differs:", k, file=sys.stderr)
        return 1 if bad or extra or problems else 0
    for g in GROUPS:
        if (out / g).is_dir():
            shutil.rmtree(out / g)
    for k, v in files.items():
        p = out / k
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(v)
    n = sum(1 for k in files if k.endswith(".eml"))
    print(f"wrote {n} fixtures to {out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
