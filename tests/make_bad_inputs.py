"""Generate synthspot's bad-input corpus: hostile, broken, odd and valid-but-unusual uploads.

    python tests/make_bad_inputs.py OUT_DIR            # the files plus OUT_DIR/expected.json
    python tests/make_bad_inputs.py OUT_DIR --table    # also print the docs/reliability.md table

Everything is made here, deterministically, from Pillow, numpy, zlib and struct (no downloads):
the same Pillow build writes the same bytes on every run. ``expected.json`` maps each file name
to what synthspot must answer for it:

* ``{"reason": CODE}``: an error verdict with that reason code (``errors.IMAGE_REASONS``);
* ``{"scored": true}``: a valid image that must be scored; ``"size": [w, h]`` when present is
  the size of the decoded, upright RGB image (EXIF rotation, first frame, deep images);
* ``{"reasons": [...]}``: only where the answer genuinely depends on the decoder build (the
  case's comment says why).

tests/test_bad_inputs.py sends every case through ``decode_image``, ``synthspot score`` and a
real worker fed from a real S3 server.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import struct
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms

FIXED_TIME = time.struct_time((2026, 1, 1, 0, 0, 0, 3, 1, 0))  # dates written into files: fixed
SIDE = 224  # valid cases are one 224 x 224 tile where possible: cheap to score on a CPU


# --- building blocks ------------------------------------------------------------------------------

def photo(width: int = SIDE, height: int = SIDE, seed: int = 0) -> Image.Image:
    """A smooth, photo-like RGB image (gradients plus noise), the same for a given seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / max(width - 1, 1), y * 255 / max(height - 1, 1),
                     (x + y) * 127 / max(width + height - 2, 1)], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8), "RGB")


def encode(img: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def frames(fmt: str, colors: list[tuple[int, int, int]], size: int = SIDE, **params: Any) -> bytes:
    """An animated image whose frames are flat colours (the first frame is what is scored)."""
    images = [Image.new("RGB", (size, size), c) for c in colors]
    return encode(images[0], fmt, save_all=True, append_images=images[1:], duration=100, loop=0, **params)


def png_chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc & 0xFFFFFFFF)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_raw(width: int, height: int, depth: int, color_type: int, rows: bytes, *, extra: bytes = b"",
            level: int = 6) -> bytes:
    """A PNG written by hand: IHDR, optional extra chunks, one IDAT of ``rows`` (filter bytes included)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(rows, level))
            + png_chunk(b"IEND", b""))


def png16_rgb(width: int = SIDE, height: int = SIDE, alpha: bool = False) -> bytes:
    """A 16-bit-per-channel RGB(A) PNG (Pillow cannot write one): gradients over the full 0-65535 range."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    chans = [x / (width - 1), y / (height - 1), (x + y) / (width + height - 2)]
    if alpha:
        chans.append(np.full_like(x, 0.5))
    arr = (np.stack(chans, axis=-1) * 65535).round().astype(">u2")
    rows = b"".join(b"\0" + arr[r].tobytes() for r in range(height))
    return png_raw(width, height, 16, 6 if alpha else 2, rows)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` behind a few bytes of pixel data."""
    return png_raw(width, height, 8, 2, b"\0" * 64)


def png_deflate_bomb(side: int) -> bytes:
    """A real deflate bomb: ``side x side`` 1-bit pixels, all zero, a few KB compressed."""
    row = b"\0" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")


def png_ztxt_bomb(after_pixels: bool = False) -> bytes:
    """A valid 224 x 224 PNG carrying a zTXt chunk that inflates to 64 MB of text (64 KB compressed)."""
    text = zlib.compress(b"A" * (64 << 20), 9)
    ztxt = png_chunk(b"zTXt", b"Comment\0\0" + text)
    good = encode(photo(seed=11), "PNG")
    if after_pixels:
        return good[:-12] + ztxt + good[-12:]  # just before IEND
    return good[:33] + ztxt + good[33:]  # right after IHDR (8-byte signature + 25-byte IHDR chunk)


def png_bad_crc(kind: bytes) -> bytes:
    """A PNG whose ``kind`` chunk (written with pHYs and tEXt chunks) has a wrong CRC."""
    data = bytearray(encode(photo(seed=12), "PNG", dpi=(72, 72), pnginfo=png_text("Comment", "hello")))
    pos = data.find(kind) - 4
    length = struct.unpack(">I", data[pos:pos + 4])[0]
    crc_at = pos + 8 + length
    data[crc_at:crc_at + 4] = bytes(b ^ 0xFF for b in data[crc_at:crc_at + 4])
    return bytes(data)


def png_text(key: str, value: str) -> Any:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(key, value)
    return info


def tiff_tag(tag: int, value: int) -> bytes:
    """An uncompressed TIFF with the (single-valued) ``tag`` set to ``value``."""
    return tiff_patched({tag: value}, photo(32, 32, seed=63))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG whose SOF0 frame header is patched to claim ``width x height``."""
    data = bytearray(encode(photo(64, 64, seed=13), "JPEG", quality=80))
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_corrupt_scan(seed: int = 14) -> bytes:
    """A JPEG whose entropy-coded data is overwritten with random bytes (markers avoided)."""
    data = bytearray(encode(photo(seed=seed), "JPEG", quality=90))
    sos = data.find(b"\xff\xda")
    start = sos + 2 + struct.unpack(">H", data[sos + 2:sos + 4])[0]
    rng = np.random.default_rng(seed)
    end = len(data) - 2
    noise = rng.integers(0, 0xFF, end - start, dtype=np.uint8)  # 0xFF excluded: no fake markers
    data[start:end] = noise.tobytes()
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(photo(32, 32, seed=15).convert("P"), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    pos = data.find(b"\x2c")  # image descriptor: left, top, width, height
    data[pos + 5:pos + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def bmp_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(photo(32, 32, seed=16), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def tiff_patched(values: dict[int, int], img: Image.Image) -> bytes:
    """``img`` as an uncompressed little-endian TIFF whose single-valued tags are set to ``values``."""
    data = bytearray(encode(img, "TIFF"))
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd:ifd + 2])
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, typ = struct.unpack("<HH", data[entry:entry + 4])
        if tag in values:
            fmt = "<H" if typ == 3 else "<I"
            data[entry + 8:entry + 8 + struct.calcsize(fmt)] = struct.pack(fmt, values[tag])
    return bytes(data)


def tiff_claiming(width: int, height: int) -> bytes:
    """An uncompressed TIFF whose ImageWidth/ImageLength tags are patched to a huge size."""
    return tiff_patched({256: width, 257: height}, photo(32, 32, seed=17))


def webp_claiming(width: int, height: int) -> bytes:
    """A RIFF/WEBP file with a VP8X header claiming a ``width x height`` canvas (max 16384^2)."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (width - 1).to_bytes(3, "little") \
        + (height - 1).to_bytes(3, "little")
    good = encode(photo(64, 64, seed=18), "WEBP", lossless=True)
    body = b"WEBP" + vp8x + good[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


def truncated(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


def exif_jpeg(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(photo(SIDE, 160, seed=19), "JPEG", quality=90, exif=exif.tobytes())


def malformed_exif_jpeg() -> bytes:
    """A JPEG whose APP1 Exif block points its IFD far outside the block."""
    exif = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 0x7FFFFFF0) + b"\0" * 16
    return encode(photo(seed=20), "JPEG", quality=90, exif=exif)


def icc_jpeg() -> bytes:
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[24:36] = struct.pack(">6H", 2026, 1, 1, 0, 0, 0)  # the header's creation date: fixed
    return encode(photo(seed=21), "JPEG", quality=90, icc_profile=profile)


def multipage_tiff() -> bytes:
    pages = [photo(seed=22), photo(seed=23).convert("L")]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:], compression="tiff_deflate")


def mpo() -> bytes:
    """A multi-picture JPEG (stereo cameras): Pillow opens it through the JPEG decoder."""
    return encode(photo(seed=24), "MPO", save_all=True, append_images=[photo(seed=25)])


def apng() -> bytes:
    return frames("PNG", [(250, 0, 0), (0, 0, 250)])


def palette_with_transparency() -> bytes:
    img = photo(seed=26).convert("P")
    return encode(img, "PNG", transparency=0)


def gif_with_transparency() -> bytes:
    img = photo(seed=27).convert("P")
    return encode(img, "GIF", transparency=0)


def deep_tiff(mode: str) -> bytes:
    gray = np.asarray(photo(seed=28).convert("L"), dtype=np.float64)
    if mode == "I;16":
        return encode(Image.fromarray((gray * 257).astype(np.uint16)), "TIFF")
    if mode == "F":
        return encode(Image.fromarray((gray / 255).astype(np.float32), "F"), "TIFF")
    return encode(Image.fromarray((gray * 257).astype(np.int32), "I"), "TIFF")


def gray16_png() -> bytes:
    gray = np.asarray(photo(seed=29).convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(gray), "PNG")


def jpeg_zip_polyglot() -> bytes:
    """A JPEG with a ZIP archive appended: valid as both (unzip reads from the end)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("payload.html", date_time=FIXED_TIME[:6]), "<script>alert(1)</script>")
    return encode(photo(seed=30), "JPEG", quality=85) + buf.getvalue()


def png_html_polyglot() -> bytes:
    """A PNG with an HTML page in a tEXt chunk and after IEND (browsers sniffing HTML find a script)."""
    html = b"<html><body><script>alert(document.domain)</script></body></html>"
    good = encode(photo(seed=31), "PNG")
    return good[:33] + png_chunk(b"tEXt", b"Comment\0" + html) + good[33:] + html


def html_png_polyglot() -> bytes:
    """HTML first, a PNG after it: the bytes do not start like any image."""
    return b"<!doctype html><html><body><p>hi</p></body></html>\n" + encode(photo(64, 64, seed=32), "PNG")


def gifar() -> bytes:
    """A GIF header whose dimensions bytes spell a JavaScript comment, then script: the 'GIFAR' trick."""
    return b"GIF89a/*\x00\x00\x00\x00\x00*/=1;alert(document.domain);//" + b"\0" * 64 + b";"


def svg(with_prolog: bool) -> bytes:
    body = (b'<svg xmlns="http://www.w3.org/2000/svg" width="224" height="224" onload="alert(1)">'
            b'<rect width="224" height="224" fill="red"/></svg>')
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n' + body) if with_prolog else body


def random_bytes(n: int = 4096, seed: int = 33) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def container(magic: bytes, total: int = 512) -> bytes:
    return magic + b"\0" * (total - len(magic))


def isobmff(brand: bytes) -> bytes:
    """The 'ftyp' box of a HEIF-family file (HEIC, AVIF): how those files begin."""
    ftyp = b"ftyp" + brand + b"\0\0\0\0" + b"mif1" + brand
    return struct.pack(">I", len(ftyp) + 4) + ftyp + b"\0" * 256


# --- the corpus -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    name: str  # file name in the corpus (the extension is part of the test: it may lie)
    what: str  # one line for the docs table
    make: Callable[[], bytes]
    expect: dict[str, Any]


def S(**extra: Any) -> dict[str, Any]:  # noqa: N802 - reads as a table column
    return {"scored": True, **extra}


def R(reason: str) -> dict[str, Any]:  # noqa: N802
    return {"reason": reason}


CASES: list[Case] = [
    # valid images in every mode and container synthspot reads: all must be scored
    Case("valid_rgb.jpg", "baseline RGB JPEG", lambda: encode(photo(), "JPEG", quality=90), S(size=[224, 224])),
    Case("valid_rgb.png", "RGB PNG", lambda: encode(photo(seed=1), "PNG"), S(size=[224, 224])),
    Case("progressive.jpg", "progressive JPEG", lambda: encode(photo(seed=2), "JPEG", progressive=True), S()),
    Case("grayscale.jpg", "grayscale (L) JPEG", lambda: encode(photo(seed=3).convert("L"), "JPEG"), S()),
    Case("cmyk.jpg", "CMYK JPEG (Adobe, inverted)", lambda: encode(photo(seed=4).convert("CMYK"), "JPEG"), S()),
    Case("icc_profile.jpg", "JPEG with an embedded ICC profile", icc_jpeg, S()),
    Case("exif_rotated.jpg", "EXIF orientation 6 (224x160 stored, 160x224 shown)", lambda: exif_jpeg(6),
         S(size=[160, 224])),
    Case("exif_malformed.jpg", "EXIF block with an IFD offset far outside it", malformed_exif_jpeg, S()),
    Case("mpo_stereo.jpg", "MPO (multi-picture JPEG, two frames)", mpo, S(size=[224, 224])),
    Case("jpeg_as.png", "JPEG bytes named .png (wrong extension)", lambda: encode(photo(seed=5), "JPEG"), S()),
    Case("png_as.txt", "PNG bytes named .txt (wrong extension)", lambda: encode(photo(seed=6), "PNG"), S()),
    Case("gray16.png", "16-bit grayscale PNG (I;16)", gray16_png, S()),
    Case("rgb16.png", "16-bit RGB PNG, written by hand", png16_rgb, S()),
    Case("rgba16.png", "16-bit RGBA PNG, written by hand", lambda: png16_rgb(alpha=True), S()),
    Case("palette_transparency.png", "palette PNG with a tRNS transparent index",
         palette_with_transparency, S()),
    Case("palette.png", "palette (P) PNG", lambda: encode(photo(seed=7).convert("P"), "PNG"), S()),
    Case("la.png", "grayscale + alpha (LA) PNG", lambda: encode(photo(seed=8).convert("LA"), "PNG"), S()),
    Case("rgba.png", "RGBA PNG", lambda: encode(photo(seed=9).convert("RGBA"), "PNG"), S()),
    Case("bilevel.png", "1-bit PNG", lambda: encode(photo(seed=10).convert("1"), "PNG"), S()),
    Case("interlaced.png", "Adam7-interlaced PNG, written by hand",
         lambda: png_interlaced(), S(size=[224, 224])),
    Case("apng.png", "animated PNG (APNG), red then blue", apng, S(size=[224, 224], first_frame="red")),
    Case("animated.gif", "animated GIF, red then blue", lambda: frames("GIF", [(250, 0, 0), (0, 0, 250)]),
         S(first_frame="red")),
    Case("animated.webp", "animated WebP, red then blue",
         lambda: frames("WEBP", [(250, 0, 0), (0, 0, 250)], lossless=True), S(first_frame="red")),
    Case("gif_transparency.gif", "GIF with a transparent index", gif_with_transparency, S()),
    Case("lossy.webp", "lossy WebP", lambda: encode(photo(seed=34), "WEBP", quality=80), S()),
    Case("alpha.webp", "lossless WebP with alpha", lambda: encode(photo(seed=35).convert("RGBA"), "WEBP",
                                                                  lossless=True), S()),
    Case("bmp24.bmp", "24-bit BMP", lambda: encode(photo(seed=36), "BMP"), S()),
    Case("bmp32.bmp", "32-bit BMP (RGBA)", lambda: encode(photo(seed=37).convert("RGBA"), "BMP"), S()),
    Case("bmp_rle8.bmp", "8-bit RLE-compressed BMP",
         lambda: encode(photo(seed=38).convert("P"), "BMP", compression=1), S()),
    Case("tiff_deflate.tif", "deflate-compressed RGB TIFF",
         lambda: encode(photo(seed=39), "TIFF", compression="tiff_deflate"), S()),
    Case("tiff_1bit.tif", "1-bit CCITT G4 TIFF",
         lambda: encode(photo(seed=40).convert("1"), "TIFF", compression="group4"), S()),
    Case("tiff_multipage.tif", "two-page TIFF", multipage_tiff, S()),
    Case("tiff_16bit.tif", "16-bit grayscale TIFF (I;16)", lambda: deep_tiff("I;16"), S()),
    Case("tiff_int32.tif", "32-bit integer TIFF (I)", lambda: deep_tiff("I"), S()),
    Case("tiff_float.tif", "32-bit float TIFF (F)", lambda: deep_tiff("F"), S()),
    Case("smallest_16x16.png", "16 x 16, the smallest side allowed (upsized to 256)",
         lambda: encode(photo(16, 16, seed=41), "PNG"), S(size=[16, 16])),
    Case("tall_20x3000.png", "20 x 3000, a tall strip", lambda: encode(photo(20, 3000, seed=42), "PNG"),
         S(size=[20, 3000])),
    Case("polyglot_jpeg_zip.jpg", "polyglot: JPEG + ZIP archive appended (a valid JPEG)", jpeg_zip_polyglot, S()),
    Case("polyglot_png_html.png", "polyglot: PNG with HTML in tEXt and after IEND (a valid PNG)",
         png_html_polyglot, S()),
    # Pillow refuses these PNGs (text limit, ancillary checksum) while browsers show them: synthspot
    # decodes them without the offending chunks, so breaking a comment cannot dodge a verdict
    Case("ztxt_bomb.png", "zTXt comment inflating to 64 MB before the pixels", png_ztxt_bomb, S()),
    Case("ztxt_bomb_after_idat.png", "zTXt comment inflating to 64 MB after the pixels",
         lambda: png_ztxt_bomb(after_pixels=True), S()),
    Case("bad_crc_text.png", "tEXt chunk with a wrong checksum", lambda: png_bad_crc(b"tEXt"), S()),
    Case("bad_crc_phys.png", "pHYs chunk with a wrong checksum", lambda: png_bad_crc(b"pHYs"), S()),
    # Pillow does not check IDAT checksums; the pixels are intact, so the image is scored
    Case("bad_crc_idat.png", "IDAT chunk with a wrong checksum (pixels intact)", lambda: png_bad_crc(b"IDAT"),
         S()),
    # libjpeg treats bad entropy-coded data as a warning and outputs (garbled) pixels, the same
    # pixels a browser shows: scored, like any other image a viewer would see
    Case("corrupt_scan.jpg", "JPEG whose entropy-coded data is random bytes", jpeg_corrupt_scan, S()),
    # size limits
    Case("one_pixel.png", "1 x 1", lambda: encode(photo(1, 1), "PNG"), R("too_small")),
    Case("wide_100000x1.png", "100 000 x 1", lambda: encode(photo(100_000, 1), "PNG"), R("too_small")),
    Case("tall_1x100000.png", "1 x 100 000", lambda: encode(photo(1, 100_000), "PNG"), R("too_small")),
    Case("below_min_15x15.png", "15 x 15, one below the smallest side", lambda: encode(photo(15, 15), "PNG"),
         R("too_small")),
    Case("zero_size.png", "PNG header claiming 0 x 0", lambda: png_header_only(0, 0), R("corrupt")),
    Case("bomb_png_header.png", "PNG header claiming 30000 x 30000, 64 bytes of data",
         lambda: png_header_only(30_000, 30_000), R("too_many_pixels")),
    Case("bomb_png_deflate.png", "real deflate bomb: 12000 x 12000 1-bit PNG, ~20 KB",
         lambda: png_deflate_bomb(12_000), R("too_many_pixels")),
    Case("bomb_jpeg_65500.jpg", "JPEG header claiming 65500 x 65500", lambda: jpeg_claiming(65500, 65500),
         R("too_many_pixels")),
    Case("bomb_gif.gif", "GIF header claiming 65535 x 65535", lambda: gif_claiming(65535, 65535),
         R("too_many_pixels")),
    Case("bomb_bmp.bmp", "BMP header claiming 60000 x 60000", lambda: bmp_claiming(60000, 60000),
         R("too_many_pixels")),
    Case("bomb_tiff.tif", "TIFF tags claiming 100000 x 100000", lambda: tiff_claiming(100_000, 100_000),
         R("too_many_pixels")),
    Case("bomb_webp.webp", "WebP VP8X canvas claiming 16384 x 16384", lambda: webp_claiming(16384, 16384),
         R("too_many_pixels")),
    # truncated and corrupt data
    Case("empty.png", "0 bytes", lambda: b"", R("empty")),
    Case("truncated.png", "PNG cut at 50%", lambda: truncated(encode(photo(seed=43), "PNG"), 0.5), R("truncated")),
    Case("truncated_header.png", "PNG cut inside its IHDR chunk", lambda: encode(photo(seed=44), "PNG")[:20],
         R("truncated")),
    Case("truncated.jpg", "JPEG cut at 50%", lambda: truncated(encode(photo(seed=45), "JPEG"), 0.5),
         R("truncated")),
    Case("truncated_header.jpg", "JPEG cut inside its headers (before the scan)",
         lambda: encode(photo(seed=46), "JPEG")[:150], R("truncated")),
    Case("truncated.gif", "GIF cut at 50%", lambda: truncated(encode(photo(seed=47).convert("P"), "GIF"), 0.5),
         R("truncated")),
    Case("truncated.webp", "WebP cut at 50%", lambda: truncated(encode(photo(seed=48), "WEBP"), 0.5),
         R("truncated")),
    Case("truncated.tif", "TIFF cut at 50%", lambda: truncated(encode(photo(seed=49), "TIFF"), 0.5),
         R("truncated")),
    Case("truncated.bmp", "BMP cut at 50%", lambda: truncated(encode(photo(seed=50), "BMP"), 0.5),
         R("truncated")),
    Case("truncated_deflate.tif", "deflate TIFF cut at 50% (its IFD, at the end, is lost)",
         lambda: truncated(encode(photo(seed=62), "TIFF", compression="tiff_deflate"), 0.5), R("truncated")),
    Case("bad_crc_ihdr.png", "PNG with a wrong IHDR checksum", lambda: png_bad_crc(b"IHDR"), R("corrupt")),
    Case("bad_zlib.png", "PNG whose IDAT is not zlib data",
         lambda: png_raw_bad_zlib(), R("corrupt")),
    Case("tiff_bad_compression.tif", "TIFF naming compression scheme 12345", lambda: tiff_tag(259, 12345),
         R("corrupt")),
    Case("jpeg_no_frame.jpg", "JPEG markers with no frame header (SOI, APP0, EOI)",
         lambda: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9",
         R("corrupt")),
    # not images, or images synthspot does not read
    Case("page.html", "HTML page", lambda: b"<!doctype html><html><body><p>hello</p></body></html>",
         R("not_an_image")),
    Case("page_as.jpg", "HTML page named .jpg", lambda: b"<html><head><script>alert(1)</script></head></html>",
         R("not_an_image")),
    Case("text_as.png", "plain text named .png", lambda: b"just some text, certainly not a PNG\n" * 10,
         R("not_an_image")),
    Case("random.bin", "4 KB of random bytes", random_bytes, R("not_an_image")),
    Case("png.gz", "a gzip-compressed PNG", lambda: gzip.compress(encode(photo(seed=51), "PNG"), mtime=0),
         R("not_an_image")),
    Case("archive.zip", "a ZIP archive named .zip", lambda: zip_of_png(), R("not_an_image")),
    Case("polyglot_html_png.png", "polyglot: HTML first, then a PNG", html_png_polyglot, R("not_an_image")),
    Case("gifar.gif", "GIF signature followed by JavaScript (GIFAR-style)", gifar, R("corrupt")),
    Case("image.svg", "SVG with an XML prolog and an onload script", lambda: svg(True), R("unsupported_format")),
    Case("bare.svg", "SVG without an XML prolog", lambda: svg(False), R("unsupported_format")),
    Case("document.pdf", "PDF (written by Pillow)", lambda: encode(photo(64, 64, seed=52), "PDF", creationDate=FIXED_TIME, modDate=FIXED_TIME),
         R("unsupported_format")),
    Case("icon.ico", "ICO (written by Pillow)", lambda: encode(photo(64, 64, seed=53), "ICO"),
         R("unsupported_format")),
    Case("layers.psd", "PSD signature", lambda: container(b"8BPS\x00\x01"), R("unsupported_format")),
    Case("photo.jp2", "JPEG 2000 (written by Pillow)", lambda: encode(photo(64, 64, seed=54), "JPEG2000"),
         R("unsupported_format")),
    Case("photo.heic", "HEIC signature (ftyp heic)", lambda: isobmff(b"heic"), R("unsupported_format")),
    Case("photo.avif", "AVIF (written by Pillow)", lambda: encode(photo(64, 64, seed=55), "AVIF"),
         R("unsupported_format")),
    Case("photo.qoi", "QOI (written by Pillow)", lambda: encode(photo(64, 64, seed=56), "QOI"),
         R("unsupported_format")),
    Case("photo.ppm", "PPM (written by Pillow)", lambda: encode(photo(64, 64, seed=57), "PPM"),
         R("unsupported_format")),
    Case("texture.dds", "DDS (written by Pillow)", lambda: encode(photo(64, 64, seed=58), "DDS"),
         R("unsupported_format")),
]


def png_interlaced() -> bytes:
    """An Adam7-interlaced RGB PNG (Pillow writes only non-interlaced ones): seven passes by hand."""
    arr = np.asarray(photo(seed=59))
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = arr[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\0" + row.tobytes() for row in sub)
    ihdr = struct.pack(">IIBBBBB", SIDE, SIDE, 8, 2, 0, 0, 1)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))


def png_raw_bad_zlib() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", random_bytes(2048, seed=60))
            + png_chunk(b"IEND", b""))


def zip_of_png() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("photo.png", date_time=FIXED_TIME[:6])
        zf.writestr(info, encode(photo(64, 64, seed=61), "PNG"))
    return buf.getvalue()


def expectation_text(expect: dict[str, Any]) -> str:
    if "reason" in expect:
        return f"`{expect['reason']}`"
    if "reasons" in expect:
        return " or ".join(f"`{r}`" for r in expect["reasons"])
    return "scored"


def markdown_table(cases: list[Case] = CASES) -> str:
    lines = ["| file | case | synthspot answers |", "|---|---|---|"]
    for case in cases:
        lines.append(f"| `{case.name}` | {case.what} | {expectation_text(case.expect)} |")
    return "\n".join(lines) + "\n"


def write_corpus(out: Path, cases: list[Case] = CASES) -> dict[str, dict[str, Any]]:
    """Write every case into ``out`` and ``out/expected.json``; return the expectations."""
    names = [c.name for c in cases]
    if len(names) != len(set(names)) or "expected.json" in names:
        raise ValueError("case names must be unique and not expected.json")
    out.mkdir(parents=True, exist_ok=True)
    expected = {}
    for case in cases:
        (out / case.name).write_bytes(case.make())
        expected[case.name] = case.expect
    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return expected


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=add_help)
    parser.add_argument("out_dir", type=Path, help="folder to write the corpus and expected.json into")
    parser.add_argument("--table", action="store_true", help="also print the markdown table of the cases")
    return parser


def main(args: argparse.Namespace) -> int:
    expected = write_corpus(args.out_dir)
    if args.table:
        sys.stdout.write(markdown_table())
    print(f"{len(expected)} cases written to {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
