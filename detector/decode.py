"""Decode untrusted image bytes into an RGB Pillow image, or fail with a typed reason.

Uploads are attacker-controlled. The order of checks follows what Pillow documents: only the
decoders we allow may open the file, the pixel count is checked from the header *before*
any pixel is decoded (a decompression bomb never reaches ``load()``), decoding happens inside
``try`` so truncated and corrupt data become reasons instead of tracebacks, and every mode is
brought to RGB explicitly. Bytes that start like a supported format but do not parse are
``truncated`` or ``corrupt`` (never ``not_an_image``); a PNG that Pillow refuses only for a
text chunk or an ancillary chunk's checksum is decoded without those chunks, as browsers do.

RGB conversion matches the reference code (``Image.convert('RGB')``: alpha is dropped, not
composited), except for 16-bit and 32-bit modes, where ``convert`` would clip; those are
scaled to 8 bits first.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

#: Decoders synthspot lets Pillow use. Everything else is ``unsupported_format``.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")

# Magic numbers of image formats we recognise but do not decode, so that users get
# "unsupported_format" (a real image we refuse) rather than "not_an_image".
_KNOWN_UNSUPPORTED: tuple[tuple[bytes, int, str], ...] = (
    (b"8BPS", 0, "PSD"),
    (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"\x00\x00\x02\x00", 0, "CUR"),
    (b"ftypheic", 4, "HEIC"),
    (b"ftypheix", 4, "HEIC"),
    (b"ftypmif1", 4, "HEIF"),
    (b"ftypavif", 4, "AVIF"),
    (b"\x00\x00\x00\x0cjP  ", 0, "JPEG 2000"),
    (b"\xff\x4f\xff\x51", 0, "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL ", 0, "JPEG XL"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"qoif", 0, "QOI"),
    (b"DDS ", 0, "DDS"),
    (b"%PDF", 0, "PDF"),
    (b"\x76\x2f\x31\x01", 0, "OpenEXR"),
    (b"#?RADIANCE", 0, "HDR"),
    (b"P1", 0, "PBM"), (b"P4", 0, "PBM"), (b"P5", 0, "PGM"), (b"P6", 0, "PPM"),
)


@dataclass(frozen=True)
class DecodeLimits:
    """Caps applied to every decode. Defaults suit photo uploads; raise them for scans."""

    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 64_000_000
    min_side: int = 16
    formats: tuple[str, ...] = ALLOWED_FORMATS


DEFAULT_LIMITS = DecodeLimits()


def _sniff_unsupported(head: bytes) -> str | None:
    stripped = head.lstrip()
    if stripped[:5].lower() == b"<?xml" or b"<svg" in head[:1024].lower():
        return "SVG"
    for magic, offset, name in _KNOWN_UNSUPPORTED:
        if head[offset:offset + len(magic)] == magic:
            return name
    return None


# Signatures of the formats synthspot decodes: bytes that start like one of these but that Pillow
# cannot open are a broken image of that format ("truncated" or "corrupt"), not "not_an_image".
_SIGNATURES: tuple[tuple[str, bytes, int], ...] = (
    ("JPEG", b"\xff\xd8\xff", 0), ("PNG", b"\x89PNG\r\n\x1a\n", 0), ("GIF", b"GIF87a", 0), ("GIF", b"GIF89a", 0),
    ("WEBP", b"WEBP", 8), ("BMP", b"BM", 0), ("TIFF", b"II*\x00", 0), ("TIFF", b"MM\x00*", 0),
)
# What Pillow says when it runs out of bytes ("Truncated File Read", "image file is truncated",
# "truncated PNG file", or a struct error wrapped in a SyntaxError while parsing a header).
_TRUNCATION_HINTS = ("truncat", "requires a buffer", "incomplete checksum")


def _claimed_format(data: bytes, formats: tuple[str, ...]) -> str | None:
    for name, magic, offset in _SIGNATURES:
        if name in formats and data[offset:offset + len(magic)] == magic:
            return name
    return None


def _ends_early(data: bytes) -> bool:
    """Whether the container itself shows that bytes are missing (a declared length, a trailer)."""
    if data[:4] == b"RIFF" and len(data) >= 8:
        return int.from_bytes(data[4:8], "little") + 8 > len(data)
    if data[:4] in (b"II*\x00", b"MM\x00*") and len(data) >= 8:
        return int.from_bytes(data[4:8], "little" if data[:2] == b"II" else "big") >= len(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return not data.endswith(b"\x3b")
    if data[:3] == b"\xff\xd8\xff":
        return b"\xff\xd9" not in data
    if data[:2] == b"BM" and len(data) >= 6:
        return int.from_bytes(data[2:6], "little") > len(data)
    return False


def _failure_reason(exc: BaseException | None, data: bytes) -> str:
    """``truncated`` when the bytes end early (by Pillow's message or the container's own fields), else ``corrupt``."""
    text = str(exc).lower() if exc is not None else ""
    if isinstance(exc, (EOFError, struct.error)) or any(h in text for h in _TRUNCATION_HINTS) or _ends_early(data):
        return "truncated"
    return "corrupt"


_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def _png_without_skippable_chunks(data: bytes) -> bytes | None:
    """``data`` without its text chunks and its ancillary chunks whose CRC is wrong; None if none.

    Pillow refuses a PNG whose comment inflates past ``MAX_TEXT_CHUNK`` or whose ancillary chunk
    has a bad checksum; libpng (browsers) skips both and shows the image. Neither kind of chunk
    holds pixels, so retrying without them scores what viewers see, and breaking a comment chunk
    cannot turn a verdict into an error.
    """
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    out, pos, dropped = [data[:8]], 8, False
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        end = pos + 12 + length
        if end > len(data):
            break
        kind = data[pos + 4:pos + 8]
        bad_crc = zlib.crc32(data[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big")
        if kind in _PNG_TEXT_CHUNKS or (kind[0] & 0x20 and bad_crc):  # bit 5 of the first byte: ancillary
            dropped = True
        else:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    out.append(data[pos:])
    return b"".join(out) if dropped else None


def _to_rgb(img: Image.Image) -> Image.Image:
    """Bring any Pillow mode to 8-bit RGB without clipping deep images."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr * (255.0 / peak), 0, 255).round().astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        peak = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        arr = np.clip(arr * (255.0 / peak), 0, 255).round().astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    with warnings.catch_warnings():
        # "Palette images with Transparency expressed in bytes should be converted to RGBA":
        # harmless here, since alpha is dropped anyway, as the reference code does.
        warnings.simplefilter("ignore", UserWarning)
        return img.convert("RGB")


def decode_image(source: bytes | str | os.PathLike[str] | BinaryIO,
                 limits: DecodeLimits = DEFAULT_LIMITS) -> Image.Image:
    """Return the first frame of ``source`` as an upright 8-bit RGB image.

    Raises :class:`ImageError` with one of the reasons in ``errors.IMAGE_REASONS``.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ImageError(f"no such file: {path}", reason="not_found") from None
        except OSError as exc:
            raise ImageError(f"cannot read {path}: {exc.strerror or exc}", reason="unreadable") from None
        if size > limits.max_bytes:
            raise ImageError(f"file is {size} bytes, above the cap of {limits.max_bytes}", reason="too_large")
        data = path.read_bytes()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = source.read(limits.max_bytes + 1)
    if not data:
        raise ImageError("the input is empty (0 bytes)", reason="empty")
    if len(data) > limits.max_bytes:
        raise ImageError(f"input is above the cap of {limits.max_bytes} bytes", reason="too_large")
    try:
        return _decode_bytes(data, limits)
    except ImageError as exc:
        cleaned = _png_without_skippable_chunks(data) if exc.reason == "corrupt" else None
        if cleaned is None:
            raise
        try:
            return _decode_bytes(cleaned, limits)
        except ImageError:
            raise exc from None


def _decode_bytes(data: bytes, limits: DecodeLimits) -> Image.Image:
    Image.init()  # registers every plugin once, so that ``formats`` can name MPO, WEBP, TIFF ...
    try:
        img = Image.open(io.BytesIO(data), formats=list(limits.formats))
    except UnidentifiedImageError:
        claimed = _claimed_format(data, limits.formats)
        if claimed:
            raise ImageError(f"the bytes start like a {claimed} file but its header cannot be parsed",
                             reason=_failure_reason(None, data)) from None
        fmt = _sniff_unsupported(data[:2048])
        if fmt:
            raise ImageError(f"{fmt} images are not supported (allowed: {', '.join(limits.formats)})",
                             reason="unsupported_format") from None
        raise ImageError("the bytes are not an image in a supported format", reason="not_an_image") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(str(exc), reason="too_many_pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"cannot parse the image header: {exc}", reason=_failure_reason(exc, data)) from None

    width, height = img.size
    if width * height > limits.max_pixels:
        raise ImageError(f"{width}x{height} = {width * height} pixels, above the cap of {limits.max_pixels}",
                         reason="too_many_pixels")
    if min(width, height) < limits.min_side:
        raise ImageError(f"{width}x{height} is below the minimum side of {limits.min_side} pixels",
                         reason="too_small")

    try:
        if getattr(img, "is_animated", False):
            img.seek(0)  # first frame; later frames may differ but the first is what users see
        img.load()
    except Image.DecompressionBombError as exc:
        raise ImageError(str(exc), reason="too_many_pixels") from None
    except OSError as exc:
        raise ImageError(f"cannot decode the image: {exc}", reason=_failure_reason(exc, data)) from None
    except (SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError, ZeroDivisionError) as exc:
        raise ImageError(f"cannot decode the image: {exc!r}", reason=_failure_reason(exc, data)) from None

    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a malformed EXIF block must not reject a decodable image
        pass
    try:
        return _to_rgb(img)
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot convert mode {img.mode} to RGB: {exc}", reason="corrupt") from None

