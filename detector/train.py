"""Train a detector with the paper's recipe (Wang et al., CVPR 2020, ``train.py``).

Data: ``<root>/{train,val}/[<class>/]{0_real,1_fake}/*`` (CNNDetection's layout; class
subfolders are found automatically). Recipe: an ImageNet-pretrained backbone when a weights
file is given (``--pretrained``), else from scratch; a fresh one-logit head ~ N(0, 0.02);
``BCEWithLogitsLoss``; Adam (lr 1e-4, betas 0.9/0.999), batch 64; the training transform resizes
the shorter side to 256, applies Gaussian blur (sigma ~ U[0, 3]) and JPEG (quality ~ U{30..100},
OpenCV or Pillow at random) each with probability p, random-crops 224 and flips; validation every
epoch with a fixed blur (1.5) and JPEG (65); on a validation plateau of ``--patience`` epochs the
learning rate is divided by 10, and training stops once it falls below ``--min-lr`` (1e-6); the
best epoch is kept.

Outputs in ``--out``: ``checkpoint.pth`` (everything needed to resume: model, optimizer, epoch,
learning-rate state, RNG states, arguments), ``best.pth`` (the best epoch, same format) and
``weights.pth``: the released file, ``{'model': state_dict, 'synthspot': {...}}`` whose
metadata carries the weights entry (architecture, preprocessing, threshold and how it was
chosen) so that ``synthspot score --weights weights.pth`` needs nothing else, plus its sha256 in
``weights.pth.sha256``.

    synthspot train DATA --arch resnet50 --pretrained resnet50-imagenet.pth --out runs/bj05
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .checkpoint import sha256_file
from .decode import decode_image
from .errors import ImageError
from .evaluate import IMAGE_SUFFIXES, average_precision, recall_at_fpr
from .models import create_model, init_head, list_models
from .preprocess import JPEG_LIBS, TrainPreset
from .weights import WeightsCfg

log = logging.getLogger(__name__)


# --- data ------------------------------------------------------------------------------------------

def list_samples(split_dir: Path) -> list[tuple[Path, int]]:
    """``(path, label)`` pairs of ``[<class>/]{0_real,1_fake}`` under one split; label 1 = fake."""
    samples: list[tuple[Path, int]] = []
    for label, name in ((0, "0_real"), (1, "1_fake")):
        for folder in sorted(split_dir.rglob(name)):
            if folder.is_dir():
                samples += [(p, label) for p in sorted(folder.rglob("*"))
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not samples:
        raise ValueError(f"{split_dir}: no images under [<class>/]{{0_real,1_fake}}")
    return samples


class BinaryFolder(Dataset):
    """Real (0) and fake (1) images; the augmentation of sample i in epoch e is seeded by (seed, e, i)."""

    def __init__(self, samples: list[tuple[Path, int]], preset: TrainPreset, seed: int) -> None:
        self.samples = samples
        self.preset = preset
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        rng = random.Random((self.seed * 1_000_003 + self.epoch) * 10_000_019 + index)
        try:
            img = decode_image(path)
        except ImageError as exc:
            raise RuntimeError(f"{path}: {exc}") from None
        return self.preset(img, rng), label


# --- one epoch, one validation -------------------------------------------------------------------

def train_one_epoch(model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader,
                    device: torch.device, *, max_steps: int | None = None, progress: bool = False) -> float:
    from tqdm import tqdm

    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, desc="train", unit="batch", disable=not progress, leave=False, file=sys.stderr)
    for step, (images, labels) in enumerate(bar):
        if max_steps is not None and step >= max_steps:
            break
        images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        labels = labels.float().to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(images).reshape(-1)
        loss = criterion(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
        count += len(labels)
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / max(1, count)


@torch.inference_mode()
def validate(model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, Any]:
    """AP, accuracy at 0.5, real/fake accuracy, and the scores themselves."""
    model.eval()
    labels, scores = [], []
    for images, batch_labels in loader:
        images = images.to(device).contiguous(memory_format=torch.channels_last)
        scores += torch.sigmoid(model(images).reshape(-1).float()).cpu().tolist()
        labels += batch_labels.tolist()
    if len(scores) < len(loader.dataset):  # type: ignore[arg-type]
        log.warning("validated %d of %d samples", len(scores), len(loader.dataset))  # type: ignore[arg-type]
    reals = [s for s, y in zip(scores, labels) if y == 0]
    fakes = [s for s, y in zip(scores, labels) if y == 1]
    real_acc = sum(s < 0.5 for s in reals) / max(1, len(reals))
    fake_acc = sum(s >= 0.5 for s in fakes) / max(1, len(fakes))
    return {"ap": average_precision(labels, scores), "accuracy": (real_acc * len(reals) + fake_acc * len(fakes))
            / max(1, len(scores)), "real_accuracy": real_acc, "fake_accuracy": fake_acc,
            "real_scores": reals, "fake_scores": fakes}


# --- checkpoints ------------------------------------------------------------------------------------

def git_revision() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def export_weights(out: Path, model: nn.Module, cfg: WeightsCfg, extra: dict[str, Any]) -> Path:
    """The released file: plain tensors plus the weights entry, readable with ``weights_only=True``."""
    path = out / "weights.pth"
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save({"model": state, "synthspot": {"weights_cfg": cfg.as_dict(), **extra}}, path)
    digest = sha256_file(path)
    (out / "weights.pth.sha256").write_text(json.dumps({"sha256": digest, "source": "synthspot train"}) + "\n")
    return path


def load_pretrained(model: nn.Module, path: Path) -> None:
    """Backbone weights from an ImageNet checkpoint; the classifier head stays fresh."""
    from .checkpoint import read_checkpoint

    ckpt = read_checkpoint(path)
    own = model.state_dict()
    usable = {k: v for k, v in ckpt.state_dict.items() if k in own and own[k].shape == v.shape}
    missing = sorted(set(own) - set(usable))
    model.load_state_dict(usable, strict=False)
    head_like = [k for k in missing if k.startswith(("fc.", "classifier.", "head."))]
    if len(missing) > len(head_like):
        log.warning("pretrained file %s left %d non-head tensors untouched (e.g. %s)", path,
                    len(missing) - len(head_like), [k for k in missing if k not in head_like][:3])
    log.info("loaded %d pretrained tensors from %s", len(usable), path)


# --- command line ------------------------------------------------------------------------------------

def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path, help="data: <root>/{train,val}/[<class>/]{0_real,1_fake}")
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="output folder (default: %(default)s)")
    p.add_argument("--arch", default="resnet50", help="architecture (default: %(default)s)")
    p.add_argument("--pretrained", type=Path, default=None,
                   help="ImageNet-pretrained weights file for the backbone (default: train from scratch)")
    p.add_argument("--epochs", type=int, default=100, help="at most this many epochs (default: %(default)s)")
    p.add_argument("--max-steps-per-epoch", type=int, default=None, help="cap the batches per epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--min-lr", type=float, default=1e-6, help="stop once the learning rate falls below this")
    p.add_argument("--patience", type=int, default=5, help="epochs without improvement before lr /= 10")
    p.add_argument("--blur-prob", type=float, default=0.5, help="p of Gaussian blur (the paper: 0.5 or 0.1)")
    p.add_argument("--jpeg-prob", type=float, default=None, help="p of JPEG re-encoding (default: --blur-prob)")
    p.add_argument("--jpeg-libs", default="cv2,pil", help="JPEG encoders drawn at random (default: %(default)s)")
    p.add_argument("--load-size", type=int, default=256, help="resize the shorter side first (0: native crops)")
    p.add_argument("--crop-size", type=int, default=224)
    p.add_argument("--threshold-fpr", type=float, default=0.01,
                   help="the exported threshold keeps this false-positive rate on validation real images")
    p.add_argument("--workers", type=int, default=2, help="data-loading processes")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pth")
    p.add_argument("--name", default=None, help="weights name recorded in the exported file")
    return p


def main(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from .infer import pick_device

    if args.arch not in list_models():
        raise ValueError(f"unknown architecture {args.arch!r}; known: {', '.join(list_models())}")
    libs = tuple(x.strip() for x in args.jpeg_libs.split(",") if x.strip())
    if not libs or set(libs) - set(JPEG_LIBS):
        raise ValueError(f"--jpeg-libs takes a comma-separated subset of {JPEG_LIBS}")
    if "cv2" in libs:
        try:
            import cv2  # noqa: F401
        except ImportError:
            raise ValueError("OpenCV is not installed: pip install 'synthspot[train]', or --jpeg-libs pil") from None
    args.out.mkdir(parents=True, exist_ok=True)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    progress = sys.stderr.isatty()

    jpeg_prob = args.blur_prob if args.jpeg_prob is None else args.jpeg_prob
    common = {"crop_size": args.crop_size, "load_size": args.load_size or None, "blur_prob": args.blur_prob,
              "jpeg_prob": jpeg_prob, "jpeg_libs": libs}
    train_set = BinaryFolder(list_samples(args.root / "train"), TrainPreset(**common), args.seed)
    val_set = BinaryFolder(list_samples(args.root / "val"), TrainPreset(**common, validation=True), args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, generator=gen,
                              num_workers=args.workers, drop_last=len(train_set) > args.batch_size,
                              persistent_workers=False, pin_memory=device.type == "cuda")
    val_loader = DataLoader(val_set, batch_size=args.batch_size, num_workers=args.workers)

    model = create_model(args.arch)
    if args.pretrained:
        load_pretrained(model, args.pretrained)
    init_head(model)
    model = model.to(device, memory_format=torch.channels_last)
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999))
    state = {"epoch": 0, "lr": args.lr, "best_ap": -math.inf, "best_epoch": -1, "stall": 0, "history": []}

    ckpt_path = args.out / "checkpoint.pth"
    if args.resume:
        if not ckpt_path.is_file():
            raise ValueError(f"--resume: {ckpt_path} does not exist")
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = ckpt["state"]
        torch.set_rng_state(ckpt["torch_rng"])
        gen.set_state(ckpt["loader_rng"])
        log.info("resumed at epoch %d", state["epoch"])

    started = time.time()
    bar = tqdm(total=args.epochs, initial=state["epoch"], desc="epochs", disable=not progress, file=sys.stderr)
    while state["epoch"] < args.epochs and state["lr"] >= args.min_lr:
        epoch = state["epoch"]
        train_set.epoch = epoch
        loss = train_one_epoch(model, criterion, optimizer, train_loader, device,
                               max_steps=args.max_steps_per_epoch, progress=progress)
        val = validate(model, val_loader, device)
        improved = val["ap"] > state["best_ap"]
        state["history"].append({"epoch": epoch, "loss": loss, "lr": state["lr"],
                                 **{k: v for k, v in val.items() if not k.endswith("_scores")}})
        print(json.dumps(state["history"][-1]), file=sys.stderr)
        state["epoch"] = epoch + 1
        if improved:
            state.update(best_ap=val["ap"], best_epoch=epoch, stall=0)
            save_checkpoint(args.out / "best.pth", {"model": model.state_dict(), "epoch": epoch, "val": val})
        else:
            state["stall"] += 1
            if state["stall"] >= args.patience:  # the paper's early stopping: lr / 10, then carry on
                state.update(lr=state["lr"] / 10, stall=0)
                for group in optimizer.param_groups:
                    group["lr"] = state["lr"]
                log.info("validation plateau: lr -> %g", state["lr"])
        save_checkpoint(ckpt_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "state": state, "args": {k: str(v) for k, v in vars(args).items()},
                                    "torch_rng": torch.get_rng_state(),
                                    "loader_rng": gen.get_state()})
        bar.update(1)
    bar.close()

    best = torch.load(args.out / "best.pth", map_location="cpu", weights_only=True)
    model.load_state_dict(best["model"])
    recall, threshold = recall_at_fpr(best["val"]["real_scores"], best["val"]["fake_scores"], args.threshold_fpr)
    threshold = float(min(max(threshold, 1e-4), 1 - 1e-4)) if math.isfinite(threshold) else 0.5
    cfg = WeightsCfg(name=args.name or f"{args.arch}.{args.out.name}", arch=args.arch, crop_size=args.crop_size,
                     threshold=threshold,
                     threshold_source=f"{args.threshold_fpr:.0%} false positives on the validation real images "
                                      f"(fake recall there: {recall:.3f})",
                     license="as the training data's", notes=f"synthspot train, best epoch {best['epoch']}")
    path = export_weights(args.out, model, cfg, {"git_rev": git_revision(), "args": {k: str(v) for k, v in
                                                                                    vars(args).items()},
                                                 "val": {k: v for k, v in best["val"].items() if not k.endswith("_scores")}})
    summary = {"best_epoch": best["epoch"], "best_ap": state["best_ap"], "threshold": threshold,
               "epochs_run": state["epoch"], "weights": str(path), "seconds": round(time.time() - started, 1)}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(get_args_parser().parse_args())
