"""Typed errors of the detector library.

Every failure that can reach a user (a CLI line, a verdict, a log record) carries a short,
stable ``reason`` code next to its message, so that platforms can act on the code and
dashboards can count it without parsing prose.
"""
from __future__ import annotations


class SynthspotError(Exception):
    """Base class: ``reason`` is a stable machine-readable code, ``str(exc)`` the human message."""

    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": str(self)}


class ImageError(SynthspotError):
    """An input that cannot be scored: empty, not an image, corrupt, too large, too small."""

    reason = "bad_image"


class WeightsError(SynthspotError):
    """A weights file that is missing, corrupt, of the wrong architecture or fails its checksum."""

    reason = "bad_weights"


#: Reason codes an :class:`ImageError` may carry (documented in docs/verdicts.md).
IMAGE_REASONS = {
    "not_found": "the file does not exist",
    "unreadable": "the file cannot be read (permissions, I/O error)",
    "empty": "the input holds no bytes",
    "not_an_image": "the bytes are not an image in any format synthspot reads",
    "unsupported_format": "an image format synthspot does not decode (e.g. SVG, PSD, HEIC)",
    "truncated": "the image data ends early",
    "corrupt": "the image data cannot be decoded",
    "too_many_pixels": "width x height exceeds the pixel cap (decompression-bomb guard)",
    "too_small": "the image is smaller than the smallest side synthspot can analyse",
    "too_large": "the file exceeds the byte cap",
}
