"""Untrusted input: every failure is a typed reason, every mode becomes upright 8-bit RGB."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from helpers import encode, photo
from synthspot.detector import DecodeLimits, ImageError, decode_image


def reason_of(data: bytes, limits: DecodeLimits = DecodeLimits()) -> str:
    with pytest.raises(ImageError) as info:
        decode_image(data, limits)
    return info.value.reason


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` and whose data is a few bytes: a bomb's shape."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_failures_have_reasons():
    good = encode(photo(), "PNG")
    jpeg = encode(photo(), "JPEG", quality=90)
    assert reason_of(b"") == "empty"
    assert reason_of(good[: len(good) // 2]) == "truncated"
    assert reason_of(jpeg[: len(jpeg) // 2]) in ("truncated", "corrupt")
    assert reason_of(b"<!doctype html><html><body>hi</body></html>") == "not_an_image"
    assert reason_of(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>') == "unsupported_format"
    assert reason_of(b"8BPS" + b"\0" * 100) == "unsupported_format"
    assert reason_of(png_header_only(30000, 30000)) == "too_many_pixels"
    assert reason_of(encode(photo(8, 8))) == "too_small"
    assert reason_of(encode(photo(2000, 1))) == "too_small"
    assert reason_of(good, DecodeLimits(max_bytes=100)) == "too_large"


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "1"])
def test_every_mode_becomes_rgb(mode):
    src = photo(64, 48, seed=3)
    if mode == "I;16":
        arr = (np.asarray(src.convert("L"), dtype=np.uint16) * 257)
        img = Image.fromarray(arr)  # uint16 -> mode I;16
    else:
        img = src.convert(mode)
    fmt = {"CMYK": "JPEG", "I": "TIFF"}.get(mode, "PNG")
    out = decode_image(encode(img, fmt))
    assert out.mode == "RGB" and out.size == (64, 48)
    if mode in ("I;16", "I"):
        # deep images are scaled, not clipped to white
        assert abs(np.asarray(out, dtype=float).mean() - np.asarray(src.convert("L"), dtype=float).mean()) < 3


def test_palette_with_transparency_decodes():
    img = photo(64, 64).convert("P")
    img.info["transparency"] = 0
    out = decode_image(encode(img, "PNG", transparency=0))
    assert out.mode == "RGB"


def test_exif_orientation_is_applied():
    img = photo(80, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise on display
    out = decode_image(encode(img, "JPEG", exif=exif.tobytes()))
    assert out.size == (40, 80)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_images_use_the_first_frame(fmt):
    frames = [Image.new("RGB", (64, 64), color) for color in ((250, 0, 0), (0, 0, 250))]
    buf = io.BytesIO()
    frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0,
                   **({"lossless": True} if fmt == "WEBP" else {}))
    out = np.asarray(decode_image(buf.getvalue()))
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 50


def test_wrong_extension_is_decoded_by_content(tmp_path):
    path = tmp_path / "photo.txt"
    path.write_bytes(encode(photo(), "JPEG"))
    assert decode_image(path).size == (256, 192)
