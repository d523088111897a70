"""The recipe of synthspot's shipped default model (``efficientnet_lite0_d11.synthspot_v1``).

Reproduce it (CPU, seeded; about 90 minutes on two cores):

    apt-get install lomiri-wallpapers-16.04 mate-backgrounds plasma-workspace-wallpapers
    pip install 'synthspot[train]'
    python -m synthspot.detector.fakes --data ../shared/data --out cache/simfakes --threads 2
    python -m synthspot.detector.default_model --data ../shared/data --simfakes cache/simfakes \
        --out runs/default --threads 1

What it does, and why (docs/model-card.md has the figures):

* Each training sample is real (p = 0.5) or fake; a fake is a generated image of the 13 training
  families or, with probability ``--p-sim``, a simulated fake (``fakes.py``: real photos passed
  through small up-sampling generators). Real photos are first brought to a web-like scale
  (shorter side 256-1024 px, never up-sampled).
* Both classes then get the *same* processing history (``degrade``): a random resize by
  x0.67-2 (p 0.3), Gaussian blur (p 0.1), JPEG at quality 30-95 with Pillow or OpenCV
  (p 0.6), then a random 128 px crop and a flip. Generated images are mostly PNG at 256-1024 px
  while photos went through cameras and JPEG: without a shared history a model learns
  "PNG of 256 px = fake" (the known format shortcut) instead of generator traces.
* The model: EfficientNet-Lite0's first 11 blocks from ImageNet weights, a fresh head (the
  paper found ImageNet pretraining essential for generalisation), trained with AdamW (3e-4,
  weight decay 0.01, 100 warm-up steps, cosine decay), batch 32, 8 epochs of 150 steps.
* The threshold is the 1 % false-positive point, the review threshold the 5 % point, of
  held-out real photos (the validation split, 6 processed variants each) scored with the
  product's inference policy (tiles, mean logit). No test set is involved.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image, ImageFilter

from . import train_sources
from .checkpoint import sha256_file
from .effnet import EfficientNetLiteTrunk, load_imagenet_weights
from .evaluate import average_precision, recall_at_fpr
from .fakes import resize_short
from .infer import sigmoid
from .preprocess import EvalPreset, jpeg_roundtrip
from .weights import WeightsCfg

MAX_SIDE = 1024  # shorter side cap of in-memory real photos
RESAMPLE = [Image.BILINEAR, Image.BICUBIC, Image.LANCZOS, Image.BOX]
_PRESET = EvalPreset()  # ImageNet mean and std, as the shipped weights entry declares
_HAVE_CV2 = importlib.util.find_spec("cv2") is not None


# --- the shared processing history -----------------------------------------------------------------

def jpeg(im: Image.Image, quality: int, rng: random.Random) -> Image.Image:
    """JPEG round trip with OpenCV's or Pillow's encoder, drawn at random (Pillow alone without OpenCV)."""
    lib = "cv2" if _HAVE_CV2 and rng.random() < 0.5 else "pil"
    return jpeg_roundtrip(im, quality, lib)


def degrade(im: Image.Image, out: int, rng: random.Random, base_scale: float = 1.0, p_resize: float = 0.3,
            resize_range: tuple[float, float] = (0.67, 2.0), p_blur: float = 0.1, blur_max: float = 2.0,
            p_jpeg: float = 0.6, jpeg_range: tuple[int, int] = (30, 95), crop: bool = True) -> Image.Image:
    """A random region of ``im`` scaled by ``base_scale`` x (a random resize), blurred, JPEG-compressed,
    then a random ``out`` x ``out`` crop (or, with ``crop=False``, the whole processed region, ``out``
    being its side before processing, clipped to the image)."""
    scale = base_scale
    if rng.random() < p_resize:
        lo, hi = resize_range
        scale *= math.exp(rng.uniform(math.log(lo), math.log(hi)))
    w, h = im.size
    margin = 16 if crop else 0
    rw = min(w, math.ceil((out + margin) / scale))  # the source region that becomes out + margin pixels
    rh = min(h, math.ceil((out + margin) / scale))
    x, y = rng.randint(0, w - rw), rng.randint(0, h - rh)
    im = im.crop((x, y, x + rw, y + rh))
    if abs(scale - 1.0) > 1e-3:
        im = im.resize((max(1, round(rw * scale)), max(1, round(rh * scale))), rng.choice(RESAMPLE),
                       reducing_gap=None)
    if rng.random() < p_blur:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.1, blur_max)))
    if rng.random() < p_jpeg:
        im = jpeg(im, rng.randint(*jpeg_range), rng)
    if crop:
        w, h = im.size
        if w < out or h < out:  # a small image is up-sized so the crop fits, as inference does
            s = out / min(w, h)
            im = im.resize((math.ceil(w * s), math.ceil(h * s)), Image.BILINEAR)
            w, h = im.size
        x, y = rng.randint(0, w - out), rng.randint(0, h - out)
        im = im.crop((x, y, x + out, y + out))
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return im


def to_input(im: Image.Image) -> torch.Tensor:
    """A crop as the network's input, normalised by the same code as inference."""
    return _PRESET.normalize(TF.pil_to_tensor(im))


def real_base_scale(im: Image.Image, rng: random.Random, lo: int = 256, hi: int = MAX_SIDE) -> float:
    """Web-like scale for a real photo: shorter side ~U[lo, hi], never up-sampled."""
    return min(1.0, rng.uniform(lo, hi) / min(im.size))


# --- data ------------------------------------------------------------------------------------------

def load_pool(items: list[dict[str, Any]], cap_short: int | None = None) -> list[dict[str, Any]]:
    out = []
    for item in items:
        im = train_sources.load_rgb(item["path"])
        if cap_short and min(im.size) > cap_short:
            im = resize_short(im, cap_short, Image.LANCZOS)
        im.load()
        out.append(dict(item, image=im))
    return out


class TrainSet(torch.utils.data.Dataset):
    """Sample i is drawn with ``random.Random(seed * 1_000_003 + i)``: reproducible for any worker count."""

    def __init__(self, reals: list, gens: list, sims: list, args: argparse.Namespace) -> None:
        self.reals, self.gens, self.sims, self.args = reals, gens, sims, args

    def __len__(self) -> int:
        return 10 ** 9

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.args
        rng = random.Random(a.seed * 1_000_003 + i)
        if rng.random() < 0.5:
            src, y = rng.choice(self.reals), 0
            base = real_base_scale(src["image"], rng)
        else:
            y = 1
            pool = self.sims if (self.sims and rng.random() < a.p_sim) else self.gens
            src, base = rng.choice(pool), 1.0
        im = degrade(src["image"], a.crop, rng, base_scale=base, p_resize=a.p_resize, p_blur=a.p_blur,
                     p_jpeg=a.p_jpeg)
        return to_input(im), torch.tensor(float(y))


class IndexSampler(torch.utils.data.Sampler):
    def __init__(self, start: int, n: int) -> None:
        self.start, self.n = start, n

    def __iter__(self):  # noqa: ANN204
        return iter(range(self.start, self.start + self.n))

    def __len__(self) -> int:
        return self.n


def build_val(reals: list, gens: list, sims: list, seed: int, variants_real: int = 6,
              variants_gen: int = 3) -> tuple[list[Image.Image], np.ndarray, np.ndarray]:
    """Fixed validation images, processed like training (whole regions of at most 256 px)."""
    rng = random.Random(seed + 7)
    ims, labels, groups = [], [], []
    for src in reals:
        for _ in range(variants_real):
            ims.append(degrade(src["image"], 256, rng, base_scale=real_base_scale(src["image"], rng), crop=False))
            labels.append(0)
            groups.append("real")
    for src in gens:
        for _ in range(variants_gen):
            ims.append(degrade(src["image"], min(256, min(src["image"].size)), rng, crop=False))
            labels.append(1)
            groups.append("generated")
    for src in sims:
        ims.append(degrade(src["image"], min(256, min(src["image"].size)), rng, crop=False))
        labels.append(1)
        groups.append("simulated")
    return ims, np.array(labels), np.array(groups)


def val_metrics(logits: np.ndarray, labels: np.ndarray, groups: np.ndarray, target_fpr: float,
                review_fpr: float) -> dict[str, float]:
    real = logits[labels == 0]
    threshold = recall_at_fpr(list(real), [], target_fpr)[1]
    out = {"threshold": float(threshold), "review_threshold": float(recall_at_fpr(list(real), [], review_fpr)[1])}
    for g in ("generated", "simulated"):
        if (groups == g).any():
            m = (groups == "real") | (groups == g)
            out[f"ap_{g}"] = average_precision(list(labels[m]), list(logits[m]))
            out[f"recall_{g}"] = float((logits[groups == g] > threshold).mean())
    out["ap_all"] = average_precision(list(labels), list(logits))
    return out


@torch.no_grad()
def score_logits(model: EfficientNetLiteTrunk, images: list[Image.Image], crop: int, batch: int = 64) -> np.ndarray:
    """Mean tile logit per image under the product's tiles policy (``EvalPreset``)."""
    preset = EvalPreset(crop_size=crop, policy="tiles")
    model.eval()
    views = [preset(im) for im in images]
    owner = torch.cat([torch.full((len(v),), i) for i, v in enumerate(views)])
    x = torch.cat(views)
    logits = torch.cat([model(x[j:j + batch]) for j in range(0, len(x), batch)])
    return np.array([logits[owner == i].mean().item() for i in range(len(images))])


# --- command line ----------------------------------------------------------------------------------

def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=train_sources.default_data_dir())
    p.add_argument("--out", type=Path, default=Path("runs/default"))
    p.add_argument("--simfakes", type=Path, default=Path("cache/simfakes"), help="fakes.py output ('' = none)")
    p.add_argument("--exclude-families", default="", help="comma-separated generated families to leave out")
    p.add_argument("--p-sim", type=float, default=0.5, help="share of simulated among fakes")
    p.add_argument("--no-pretrained", action="store_true")
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--steps-per-epoch", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--p-resize", type=float, default=0.3)
    p.add_argument("--p-blur", type=float, default=0.1)
    p.add_argument("--p-jpeg", type=float, default=0.6)
    p.add_argument("--target-fpr", type=float, default=0.01, help="threshold: this FPR on held-out real photos")
    p.add_argument("--review-fpr", type=float, default=0.05, help="review threshold: this FPR on them")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p


def main(args: argparse.Namespace) -> dict[str, Any]:
    started = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    exclude = tuple(f for f in args.exclude_families.split(",") if f)
    reals = load_pool(train_sources.real_sources(args.data), cap_short=MAX_SIDE)
    gens = load_pool(train_sources.generated_sources(args.data, exclude))
    sims: list[dict[str, Any]] = []
    if str(args.simfakes):
        with open(args.simfakes / "index.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        sims = load_pool([dict(r, path=str(args.simfakes / r["file"])) for r in rows])

    def split(pool: list, name: str) -> list:
        return [x for x in pool if x["split"] == name]

    print(f"real {len(split(reals, 'train'))}/{len(split(reals, 'val'))} generated {len(split(gens, 'train'))}/"
          f"{len(split(gens, 'val'))} simulated {len(split(sims, 'train'))}/{len(split(sims, 'val'))} (train/val)",
          file=sys.stderr, flush=True)
    val_ims, val_y, val_g = build_val(split(reals, "val"), split(gens, "val"), split(sims, "val"), args.seed)
    if not (val_y == 0).any() or not (val_y == 1).any():
        raise ValueError("the validation split needs real and fake images: the thresholds are set on it")

    model = EfficientNetLiteTrunk(11, dropout=args.dropout)
    if not args.no_pretrained:
        load_imagenet_weights(model)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    total = args.epochs * args.steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / args.warmup_steps)
                                              * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    dataset = TrainSet(split(reals, "train"), split(gens, "train"), split(sims, "train"), args)
    history = []
    for epoch in range(args.epochs):
        n = args.steps_per_epoch * args.batch_size
        loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, sampler=IndexSampler(epoch * n, n))
        model.train()
        t0, losses = time.time(), []
        for x, y in loader:
            loss = F.binary_cross_entropy_with_logits(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        metrics = val_metrics(score_logits(model, val_ims, args.crop), val_y, val_g, args.target_fpr, args.review_fpr)
        metrics.update(epoch=epoch + 1, train_loss=float(np.mean(losses)), epoch_s=round(time.time() - t0))
        history.append(metrics)
        print(json.dumps(metrics), file=sys.stderr, flush=True)

    final = history[-1]
    state = {k: v.detach().cpu().float().contiguous() if v.is_floating_point() else v.cpu()
             for k, v in model.state_dict().items()}
    cfg = WeightsCfg(name="efficientnet_lite0_d11.synthspot_v1", arch="efficientnet_lite0_d11", crop_size=args.crop,
                     policy="tiles", threshold=sigmoid(final["threshold"]),
                     review_threshold=sigmoid(final["review_threshold"]), license="Apache-2.0",
                     threshold_source=f"{args.target_fpr:.0%} false positives on held-out real photos",
                     notes="synthspot.detector.default_model")
    path = args.out / "weights.pth"
    # plain Python values only (a json round trip drops NumPy scalars), so the file loads with weights_only=True
    torch.save({"model": state, "synthspot": {"weights_cfg": cfg.as_dict(), "history": json.loads(json.dumps(history)),
                                              "args": {k: str(v) for k, v in vars(args).items()}}}, path)
    summary = {"weights": str(path), "sha256": sha256_file(path), "threshold": cfg.threshold,
               "review_threshold": cfg.review_threshold, "params": sum(p.numel() for p in model.parameters()),
               "final": final, "wall_s": round(time.time() - started)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(get_args_parser().parse_args())
