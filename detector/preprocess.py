"""Preprocessing presets: how an RGB image becomes the tensors a detector scores.

One small callable class per phase, as in torchvision's classification references. The
inference preset comes from the weights entry (``WeightsCfg.eval_preset``), never from flags
scattered through the code, so training, evaluation and serving cannot drift apart.

Scoring policies (``EvalPreset.policy``):

``tiles`` (synthspot's default)
    Native-resolution ``crop x crop`` tiles on an even grid (at most ``max_grid`` per side,
    both edges included). The image is never resized, so the up-sampling traces the detector
    reads survive however large the upload is; every tile has the same shape, so tiles of any
    number of images batch together. The image's logit is the mean of its tiles' logits.
``center``
    One centre crop, zero-padded when the image is smaller: the reference ``eval.py``.
``full``
    The whole image in one pass: the reference ``demo.py``. Images of different sizes are
    bucketed by shape when batched.

Small images: the paper's maintainers advise upsizing images smaller than the crop to 256
before scoring (CNNDetection issues #2, #3); ``upsize_small_to=None`` keeps the reference
behaviour (zero padding under ``center``, the small image as is under ``full``).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torchvision.transforms.functional as TF
from PIL import Image

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

Policy = Literal["tiles", "center", "full"]
POLICIES: tuple[str, ...] = ("tiles", "center", "full")


def grid_origins(length: int, size: int, max_count: int) -> list[int]:
    """Evenly spaced tile origins covering ``[0, length)`` with tiles of ``size``, both edges included."""
    if length <= size:
        return [0]
    count = min(max_count, math.ceil(length / size))
    if count == 1:
        return [(length - size) // 2]
    step = (length - size) / (count - 1)
    return [round(i * step) for i in range(count)]


@dataclass(frozen=True)
class EvalPreset:
    """Turn one RGB image into a ``(n, 3, h, w)`` float tensor of normalised views."""

    crop_size: int = 224
    policy: Policy = "tiles"
    max_grid: int = 4
    upsize_small_to: int | None = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    size_multiple: int = 1  # models that halve the input exactly (NPR) need even sides under "full"

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose one of {', '.join(POLICIES)}")
        if self.crop_size < 1 or self.max_grid < 1 or self.size_multiple < 1:
            raise ValueError("crop_size, max_grid and size_multiple must be positive")

    def with_overrides(self, **changes: object) -> "EvalPreset":
        """A copy with the given fields replaced (``upsize_small_to=None`` turns upsizing off)."""
        return replace(self, **changes)

    def resize_small(self, img: Image.Image) -> Image.Image:
        if self.upsize_small_to is None or min(img.size) >= self.crop_size:
            return img
        width, height = img.size
        scale = self.upsize_small_to / min(width, height)
        new_size = (max(self.upsize_small_to, round(width * scale)), max(self.upsize_small_to, round(height * scale)))
        return img.resize(new_size, Image.BILINEAR)

    def views(self, img: Image.Image) -> torch.Tensor:
        """The uint8 ``(n, 3, h, w)`` views of ``img`` under this policy, before normalisation."""
        pixels = TF.pil_to_tensor(self.resize_small(img))
        _, height, width = pixels.shape
        if self.policy == "center":
            return TF.center_crop(pixels, [self.crop_size, self.crop_size]).unsqueeze(0)
        if self.policy == "full":
            m = self.size_multiple
            return pixels[:, : height - height % m, : width - width % m].unsqueeze(0)
        if height < self.crop_size or width < self.crop_size:  # only without upsizing
            return TF.center_crop(pixels, [self.crop_size, self.crop_size]).unsqueeze(0)
        s = self.crop_size
        tiles = [pixels[:, y:y + s, x:x + s]
                 for y in grid_origins(height, s, self.max_grid)
                 for x in grid_origins(width, s, self.max_grid)]
        return torch.stack(tiles)

    def normalize(self, views: torch.Tensor) -> torch.Tensor:
        """uint8 views to the float input of the network (ToTensor + Normalize, bit for bit)."""
        return TF.normalize(views.float().div(255), list(self.mean), list(self.std))

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return self.normalize(self.views(img))


# --- training ------------------------------------------------------------------------------------

JPEG_LIBS = ("cv2", "pil")


def gaussian_blur(img: Image.Image, sigma: float) -> Image.Image:
    """Gaussian blur of standard deviation ``sigma`` (the paper's ``gaussian_filter``)."""
    from PIL import ImageFilter

    return img.filter(ImageFilter.GaussianBlur(radius=sigma)) if sigma > 0 else img


def jpeg_roundtrip(img: Image.Image, quality: int, lib: str = "pil") -> Image.Image:
    """Encode and decode as JPEG with OpenCV's or Pillow's encoder (the paper draws one at random)."""
    import io

    if lib == "cv2":
        import cv2
        import numpy as np

        arr = np.asarray(img)[:, :, ::-1]
        ok, buf = cv2.imencode(".jpg", arr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
        if not ok:
            raise RuntimeError("OpenCV failed to encode a JPEG")
        return Image.fromarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


@dataclass(frozen=True)
class TrainPreset:
    """The paper's training transform: resize -> blur/JPEG augmentation -> random crop -> flip -> normalise.

    ``load_size=None`` skips the resize and trains on native-resolution crops (what the tiling
    policy scores). ``validation=True`` is the paper's validation transform: the same pipeline
    with a fixed blur (sigma 1.5) and JPEG quality (65, Pillow), each applied with probability
    ``blur_prob`` / ``jpeg_prob`` decided by the sample's own seed, and a centre crop.
    """

    crop_size: int = 224
    load_size: int | None = 256
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (30, 100)
    jpeg_libs: tuple[str, ...] = JPEG_LIBS
    flip: bool = True
    validation: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def augment(self, img: Image.Image, rng: "random.Random") -> Image.Image:
        if rng.random() < self.blur_prob:
            img = gaussian_blur(img, 1.5 if self.validation else rng.uniform(*self.blur_sigma))
        if rng.random() < self.jpeg_prob:
            if self.validation:
                img = jpeg_roundtrip(img, 65, "pil")
            else:
                img = jpeg_roundtrip(img, rng.randint(*self.jpeg_quality), rng.choice(self.jpeg_libs))
        return img

    def __call__(self, img: Image.Image, rng: "random.Random") -> torch.Tensor:
        if self.load_size:
            scale = self.load_size / min(img.size)
            img = img.resize((max(self.load_size, round(img.width * scale)),
                              max(self.load_size, round(img.height * scale))), Image.BILINEAR)
        img = self.augment(img, rng)
        pixels = TF.pil_to_tensor(img)
        _, h, w = pixels.shape
        s = self.crop_size
        if h < s or w < s or self.validation:
            pixels = TF.center_crop(pixels, [s, s])
        else:
            top, left = rng.randint(0, h - s), rng.randint(0, w - s)
            pixels = pixels[:, top:top + s, left:left + s]
        if self.flip and not self.validation and rng.random() < 0.5:
            pixels = pixels.flip(-1)
        return TF.normalize(pixels.float().div(255), list(self.mean), list(self.std))
