"""Simulated CNN-generated images (AutoGAN-style, Zhang et al. 2019) made from real photos.

Generated images share the traces of their up-sampling layers (Wang et al. 2020; NPR, CVPR
2024). This module makes such traces without a GAN: small encoder-decoder generators (CycleGAN /
pix2pix layouts: stride-2 down-sampling, residual blocks, optional U-Net skips, and one of four
up-sampling layers: transposed convolution, nearest + conv, bilinear + conv, sub-pixel conv) are
trained briefly on CPU to reconstruct real-photo crops (L1), then run on whole real photos. The
output has the photo's content and a CNN decoder's up-sampling fingerprint. Each fake inherits
the train/validation split of its source photo, so a real photo and its fake twin never sit on
opposite sides of the split.

Writes ``<out>/<generator>/<n>.png`` and ``<out>/index.csv`` (file, source_id, generator, split).

    python -m synthspot.detector.fakes --data ../shared/data --out cache/simfakes
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from . import train_sources

UPSAMPLERS = ("deconv", "nearest", "bilinear", "pixelshuffle")


def norm_layer(kind: str, c: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(c, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(c)
    return nn.Identity()


class Up(nn.Module):
    """x2 up-sampling of one of the four kinds generators use."""

    def __init__(self, kind: str, cin: int, cout: int, deconv_k: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "deconv":
            if deconv_k == 3:
                self.conv = nn.ConvTranspose2d(cin, cout, 3, 2, padding=1, output_padding=1)
            else:
                self.conv = nn.ConvTranspose2d(cin, cout, 4, 2, padding=1)
        elif kind == "pixelshuffle":
            self.conv = nn.Sequential(nn.Conv2d(cin, cout * 4, 3, padding=1), nn.PixelShuffle(2))
        else:
            self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind in ("nearest", "bilinear"):
            x = F.interpolate(x, scale_factor=2, mode=self.kind,
                              align_corners=False if self.kind == "bilinear" else None)
        return self.conv(x)


class Generator(nn.Module):
    """A small image-to-image generator: conv in, stride-2 downs, residual blocks, ups, conv out."""

    def __init__(self, width: int = 32, n_down: int = 2, n_res: int = 2, up: str = "deconv",
                 norm: str = "instance", unet: bool = False, deconv_k: int = 3, act: str = "relu") -> None:
        super().__init__()

        def activation() -> nn.Module:
            return nn.ReLU(True) if act == "relu" else nn.LeakyReLU(0.2, True)

        self.unet = unet
        ch = [min(width * 2 ** i, 128) for i in range(n_down + 1)]
        self.inp = nn.Sequential(nn.Conv2d(3, ch[0], 7, padding=3), norm_layer(norm, ch[0]), activation())
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ch[i], ch[i + 1], 3, 2, padding=1), norm_layer(norm, ch[i + 1]), activation())
            for i in range(n_down))
        self.res = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ch[-1], ch[-1], 3, padding=1), norm_layer(norm, ch[-1]), activation(),
                          nn.Conv2d(ch[-1], ch[-1], 3, padding=1), norm_layer(norm, ch[-1]))
            for _ in range(n_res))
        self.up = nn.ModuleList()
        self.post = nn.ModuleList()
        for i in reversed(range(n_down)):
            cin = ch[i + 1] * (2 if unet and i != n_down - 1 else 1)
            self.up.append(Up(up, cin, ch[i], deconv_k))
            self.post.append(nn.Sequential(norm_layer(norm, ch[i]), activation()))
        self.out = nn.Conv2d(ch[0] * (2 if unet else 1), 3, 7, padding=3)
        self.n_down = n_down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        skips = [x]
        for d in self.down:
            x = d(x)
            skips.append(x)
        for r in self.res:
            x = x + r(x)
        for j, (u, p) in enumerate(zip(self.up, self.post)):
            if self.unet and j > 0:
                x = torch.cat([x, skips[-1 - j]], 1)
            x = p(u(x))
        if self.unet:
            x = torch.cat([x, skips[0]], 1)
        return torch.tanh(self.out(x))


def random_config(rng: random.Random, i: int) -> dict[str, Any]:
    """Generator ``i``'s architecture: the up-sampling kind cycles, the rest is drawn."""
    return dict(width=rng.choice([16, 24, 32]), n_down=rng.choice([1, 2, 2, 3]), n_res=rng.choice([0, 1, 2]),
                up=UPSAMPLERS[i % len(UPSAMPLERS)], norm=rng.choice(["instance", "batch", "none"]),
                unet=rng.random() < 0.3, deconv_k=rng.choice([3, 4]), act=rng.choice(["relu", "lrelu"]))


def resize_short(im: Image.Image, short: int, resample: int = Image.BICUBIC) -> Image.Image:
    w, h = im.size
    s = short / min(w, h)
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), resample, reducing_gap=None)


def to_tensor(im: Image.Image) -> torch.Tensor:
    """RGB to [-1, 1], the generators' range."""
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)


def to_image(y: torch.Tensor) -> Image.Image:
    arr = ((y.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def fit(gen: Generator, pool: list[Image.Image], rng: random.Random, *, steps: int, batch_size: int, crop: int,
        lr: float) -> float:
    """Train a generator to reconstruct random crops (L1); returns the last loss."""
    opt = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.5, 0.999))
    gen.train()
    loss = torch.tensor(0.0)
    for _ in range(steps):
        batch = []
        for _ in range(batch_size):
            im = rng.choice(pool)
            w, h = im.size
            x, y = rng.randint(0, w - crop), rng.randint(0, h - crop)
            c = im.crop((x, y, x + crop, y + crop))
            if rng.random() < 0.5:
                c = c.transpose(Image.FLIP_LEFT_RIGHT)
            batch.append(to_tensor(c))
        x = torch.stack(batch)
        loss = F.l1_loss(gen(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    gen.eval()
    return float(loss.item())


@torch.no_grad()
def apply(gen: Generator, im: Image.Image) -> Image.Image:
    """Run a generator on a whole photo (cropped to a multiple of its down-sampling factor)."""
    m = 2 ** gen.n_down
    w, h = im.size
    w, h = w - w % m, h - h % m
    return to_image(gen(to_tensor(im.crop((0, 0, w, h)))[None])[0])


def make_sample_fakes(photos: dict[str, Image.Image], out: Path, *, seed: int = 0, steps: int = 300,
                      short: int = 384) -> list[Path]:
    """The package's sample fakes: each photo passed through a generator of a different up-sampling kind.

    ``photos`` are public-domain photographs (scikit-image's data); their fake twins show what
    the simulated traces look like. Nothing is selected by score.
    """
    rng = random.Random(seed)
    torch.manual_seed(seed)
    pool = {name: resize_short(im, short) if min(im.size) > short else im for name, im in photos.items()}
    written = []
    for i, (name, im) in enumerate(sorted(pool.items())):
        up = UPSAMPLERS[i % len(UPSAMPLERS)]
        gen = Generator(width=24, n_down=2, n_res=1, up=up, norm="instance", deconv_k=3)
        fit(gen, list(pool.values()), rng, steps=steps, batch_size=8, crop=64, lr=1e-3)
        path = out / f"fake_{name}_{up}.png"
        apply(gen, im).save(path)
        written.append(path)
    return written


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=train_sources.default_data_dir(),
                   help="the development data folder (real-photos/, generated/, manifest.csv)")
    p.add_argument("--out", type=Path, default=Path("cache/simfakes"))
    p.add_argument("--num-generators", type=int, default=8)
    p.add_argument("--steps", type=int, default=200, help="training steps per generator")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--per-photo", type=float, default=2.5,
                   help="expected number of generators applied to each real photo")
    p.add_argument("--short-min", type=int, default=256)
    p.add_argument("--short-max", type=int, default=384)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--samples", action="store_true",
                   help="instead: write the package's sample real photos and their fake twins to --out")
    return p


def write_samples(out: Path, seed: int) -> None:
    """synthspot/samples: scikit-image's public-domain photos and fake twins made here."""
    out.mkdir(parents=True, exist_ok=True)
    photos = {name: train_sources.load_rgb(f"skimage:{name}") for name in ("astronaut", "chelsea", "coffee", "rocket")}
    for name, im in photos.items():
        im.save(out / f"real_{name}.jpg", quality=90)
    for path in make_sample_fakes(photos, out, seed=seed):
        print(path)


def main(args: argparse.Namespace) -> list[dict[str, str]]:
    torch.set_num_threads(args.threads)
    if args.samples:
        write_samples(args.out, args.seed)
        return []
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    reals = train_sources.real_sources(args.data)
    pool = {}  # photos at a web-like scale: shorter side in [short_min, 2 * short_max], never up-sampled
    for s in reals:
        im = train_sources.load_rgb(s["path"])
        short = min(im.size)
        target = min(short, rng.randint(args.short_min, 2 * args.short_max))
        pool[s["id"]] = resize_short(im, target) if target < short else im
    train_pool = [pool[s["id"]] for s in reals if s["split"] == "train"]
    rows: list[dict[str, str]] = []
    t0 = time.time()
    for gi in range(args.num_generators):
        cfg = random_config(rng, gi)
        name = f"g{gi:02d}_{cfg['up']}"
        gen = Generator(**cfg)
        loss = fit(gen, train_pool, rng, steps=args.steps, batch_size=args.batch_size, crop=args.crop, lr=args.lr)
        os.makedirs(args.out / name, exist_ok=True)
        n = 0
        for s in reals:
            if rng.random() >= args.per_photo / args.num_generators:
                continue
            im = pool[s["id"]]
            short = rng.randint(args.short_min, args.short_max)
            if min(im.size) > short:
                im = resize_short(im, short)
            f = f"{name}/{n:04d}.png"
            apply(gen, im).save(args.out / f)
            rows.append(dict(file=f, source_id=s["id"], generator=name, split=s["split"]))
            n += 1
        print(f"{name} {cfg} final L1 {loss:.4f} images {n} [{time.time() - t0:.0f}s]", flush=True)
        with open(args.out / "index.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["file", "source_id", "generator", "split"])
            writer.writeheader()
            writer.writerows(rows)
    return rows


if __name__ == "__main__":
    main(get_args_parser().parse_args())
