"""The paper's evaluation protocol, plus the operating points moderators care about.

Layout (CNNDetection's test sets): ``<root>/<generator>/[<class>/]{0_real,1_fake}/*``; class
subfolders are found automatically. Per generator: average precision (fake = positive, as
``sklearn.metrics.average_precision_score``), accuracy, real accuracy and fake accuracy at the
threshold, and the fake recall at the thresholds that keep the false-positive rate on that
generator's real photos at 1 % and 5 %. Then the mean over generators.

Outputs: ``eval.csv`` in the reference ``eval.py`` format (``testset,accuracy,avg precision``),
``metrics.csv`` with every column, ``metrics.md`` (a Markdown table), ``pr.png`` (precision-
recall curves) and ``scores.csv`` (every image's score), all in ``--out``.

    synthspot eval ../shared/data/dev --weights blur_jpg_prob0.5 --out runs/eval
"""
from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


# --- metrics -------------------------------------------------------------------------------

def average_precision(labels: Sequence[int], scores: Sequence[float]) -> float:
    """AP with positives = 1, computed as sklearn does: sum over thresholds of (R_n - R_n-1) * P_n."""
    pairs = sorted(zip(scores, labels), key=lambda p: -p[0])
    positives = sum(labels)
    if positives == 0:
        return float("nan")
    ap = tp = fp = 0.0
    prev_recall = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:  # one threshold per distinct score
            tp += pairs[j][1]
            fp += 1 - pairs[j][1]
            j += 1
        recall = tp / positives
        ap += (recall - prev_recall) * (tp / (tp + fp))
        prev_recall = recall
        i = j
    return ap


def recall_at_fpr(real_scores: Sequence[float], fake_scores: Sequence[float], fpr: float) -> tuple[float, float]:
    """Fake recall at the lowest threshold whose false-positive rate on the real scores is <= ``fpr``.

    Returns ``(recall, threshold)``; an image is flagged when its score is strictly above the
    threshold.
    """
    reals = sorted(real_scores, reverse=True)
    allowed = math.floor(fpr * len(reals) + 1e-9)  # real images that may be flagged
    threshold = reals[allowed] if allowed < len(reals) else -math.inf
    recall = sum(1 for s in fake_scores if s > threshold) / max(1, len(fake_scores))
    return recall, threshold


@dataclass
class GeneratorMetrics:
    generator: str
    n_real: int
    n_fake: int
    ap: float
    accuracy: float
    real_accuracy: float
    fake_accuracy: float
    recall_at_fpr1: float
    recall_at_fpr5: float


def metrics_for(name: str, real_scores: Sequence[float], fake_scores: Sequence[float],
                threshold: float) -> GeneratorMetrics:
    labels = [0] * len(real_scores) + [1] * len(fake_scores)
    scores = list(real_scores) + list(fake_scores)
    real_acc = sum(1 for s in real_scores if s < threshold) / max(1, len(real_scores))
    fake_acc = sum(1 for s in fake_scores if s >= threshold) / max(1, len(fake_scores))
    correct = real_acc * len(real_scores) + fake_acc * len(fake_scores)
    return GeneratorMetrics(
        generator=name, n_real=len(real_scores), n_fake=len(fake_scores),
        ap=average_precision(labels, scores), accuracy=correct / max(1, len(scores)),
        real_accuracy=real_acc, fake_accuracy=fake_acc,
        recall_at_fpr1=recall_at_fpr(real_scores, fake_scores, 0.01)[0],
        recall_at_fpr5=recall_at_fpr(real_scores, fake_scores, 0.05)[0])


def mean_row(rows: list[GeneratorMetrics]) -> GeneratorMetrics:
    def avg(field: str) -> float:
        return sum(getattr(r, field) for r in rows) / max(1, len(rows))

    return GeneratorMetrics("mean", sum(r.n_real for r in rows), sum(r.n_fake for r in rows), avg("ap"),
                            avg("accuracy"), avg("real_accuracy"), avg("fake_accuracy"), avg("recall_at_fpr1"),
                            avg("recall_at_fpr5"))


# --- data layout -------------------------------------------------------------------------------

def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def find_test_sets(root: Path) -> dict[str, dict[str, list[Path]]]:
    """``{generator: {"real": [...], "fake": [...]}}``; class subfolders are merged into their generator.

    ``root`` may itself be one generator (it holds ``0_real`` and ``1_fake``).
    """
    def collect(folder: Path) -> dict[str, list[Path]] | None:
        if (folder / "0_real").is_dir() and (folder / "1_fake").is_dir():
            return {"real": _images(folder / "0_real"), "fake": _images(folder / "1_fake")}
        merged: dict[str, list[Path]] = {"real": [], "fake": []}
        found = False
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            if (sub / "0_real").is_dir() and (sub / "1_fake").is_dir():
                merged["real"] += _images(sub / "0_real")
                merged["fake"] += _images(sub / "1_fake")
                found = True
        return merged if found else None

    root = Path(root)
    own = collect(root)
    if own is not None and (root / "0_real").is_dir():
        return {root.name: own}
    sets = {}
    for gen in sorted(p for p in root.iterdir() if p.is_dir()):
        layout = collect(gen)
        if layout is not None:
            sets[gen.name] = layout
    if not sets:
        raise ValueError(f"{root}: no <generator>/[<class>/]{{0_real,1_fake}} folders found")
    return sets


# --- scoring and reports ---------------------------------------------------------------------------

def evaluate(detector: Any, sets: dict[str, dict[str, list[Path]]], *, threshold: float | None = None,
             progress: bool = False) -> tuple[list[GeneratorMetrics], dict[str, dict[str, list[float]]]]:
    """Score every image of every generator; return per-generator metrics and the raw scores."""
    from tqdm import tqdm

    threshold = detector.threshold if threshold is None else threshold
    total = sum(len(v["real"]) + len(v["fake"]) for v in sets.values())
    bar = tqdm(total=total, unit="img", disable=not progress, file=sys.stderr)
    rows, scores = [], {}
    for name, layout in sets.items():
        scores[name] = {}
        for cls in ("real", "fake"):
            results = []
            for r in detector.score_sources([str(p) for p in layout[cls]]):
                bar.update(1)
                if r.error:
                    log.warning("skipped %s: %s", r.source, r.error)
                else:
                    results.append(r.score)
            if len(results) < len(layout[cls]):
                log.warning("%s/%s: scored %d of %d images", name, cls, len(results), len(layout[cls]))
            scores[name][cls] = results
        rows.append(metrics_for(name, scores[name]["real"], scores[name]["fake"], threshold))
    bar.close()
    return rows, scores


def markdown_table(rows: list[GeneratorMetrics], threshold: float) -> str:
    head = (f"| generator | real / fake | AP | acc @ {threshold:g} | real acc | fake acc | "
            "recall @ 1 % FPR | recall @ 5 % FPR |\n|---|---|---|---|---|---|---|---|\n")
    body = "".join(f"| {r.generator} | {r.n_real} / {r.n_fake} | {r.ap:.3f} | {r.accuracy:.3f} | {r.real_accuracy:.3f} "
                   f"| {r.fake_accuracy:.3f} | {r.recall_at_fpr1:.3f} | {r.recall_at_fpr5:.3f} |\n" for r in rows)
    return head + body


def pr_curve(labels: Sequence[int], scores: Sequence[float]) -> list[tuple[float, float]]:
    pairs = sorted(zip(scores, labels), key=lambda p: -p[0])
    positives = max(1, sum(labels))
    points, tp, fp = [(0.0, 1.0)], 0, 0
    for _, label in pairs:
        tp += label
        fp += 1 - label
        points.append((tp / positives, tp / (tp + fp)))
    return points


def plot_pr(scores: dict[str, dict[str, list[float]]], path: Path, size: int = 900) -> None:
    """Precision-recall curves, one per generator, drawn with Pillow (no plotting dependency)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size + 260, size), "white")
    draw = ImageDraw.Draw(img)
    m = 60
    x0, y0, x1, y1 = m, m // 2, size - m // 2, size - m

    def xy(recall: float, precision: float) -> tuple[float, float]:
        return x0 + recall * (x1 - x0), y1 - precision * (y1 - y0)

    for t in range(11):
        v = t / 10
        draw.line([xy(v, 0), xy(v, 1)], fill=(230, 230, 230))
        draw.line([xy(0, v), xy(1, v)], fill=(230, 230, 230))
        draw.text((xy(v, 0)[0] - 8, y1 + 6), f"{v:.1f}", fill="black")
        draw.text((x0 - 30, xy(0, v)[1] - 6), f"{v:.1f}", fill="black")
    draw.rectangle([x0, y0, x1, y1], outline="black")
    draw.text(((x0 + x1) // 2 - 20, y1 + 24), "recall", fill="black")
    draw.text((6, y0 - 2), "precision", fill="black")
    palette = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
               (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (0, 0, 0), (120, 0, 60)]
    for i, (name, s) in enumerate(scores.items()):
        labels = [0] * len(s["real"]) + [1] * len(s["fake"])
        color = palette[i % len(palette)]
        draw.line([xy(r, p) for r, p in pr_curve(labels, s["real"] + s["fake"])], fill=color, width=2)
        ap = average_precision(labels, s["real"] + s["fake"])
        draw.text((size + 10, 40 + 18 * i), f"{name} (AP {ap:.3f})", fill=color)
    img.save(path)


def write_reports(rows: list[GeneratorMetrics], scores: dict[str, dict[str, list[float]]], out: Path,
                  threshold: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    table = rows + [mean_row(rows)]
    with open(out / "eval.csv", "w", newline="") as fh:  # the reference eval.py format
        w = csv.writer(fh)
        w.writerow(["testset", "accuracy", "avg precision"])
        for r in table:
            w.writerow([r.generator, f"{100 * r.accuracy:.2f}", f"{100 * r.ap:.2f}"])
    with open(out / "metrics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(asdict(table[0])))
        w.writeheader()
        for r in table:
            w.writerow(asdict(r))
    with open(out / "scores.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["generator", "label", "score"])
        for name, s in scores.items():
            for cls, label in (("real", 0), ("fake", 1)):
                for score in s[cls]:
                    w.writerow([name, label, f"{score:.6f}"])
    (out / "metrics.md").write_text(markdown_table(table, threshold))
    plot_pr(scores, out / "pr.png")


# --- command line --------------------------------------------------------------------------------

def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from synthspot.commands.common import add_detector_arguments

    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path, help="test sets: <root>/<generator>/[<class>/]{0_real,1_fake}")
    p.add_argument("--out", type=Path, default=Path("eval-out"), help="report folder (default: %(default)s)")
    p.add_argument("--generators", nargs="*", default=None, help="only these generators")
    add_detector_arguments(p)
    return p


def main(args: argparse.Namespace) -> list[GeneratorMetrics]:
    from synthspot.commands.common import load_detector

    sets = find_test_sets(args.root)
    if args.generators:
        unknown = set(args.generators) - set(sets)
        if unknown:
            raise ValueError(f"unknown generators {sorted(unknown)}; found {sorted(sets)}")
        sets = {k: v for k, v in sets.items() if k in args.generators}
    det = load_detector(args)
    rows, scores = evaluate(det, sets, progress=sys.stderr.isatty())
    write_reports(rows, scores, args.out, det.threshold)
    print(markdown_table(rows + [mean_row(rows)], det.threshold), end="")
    print(f"\nweights {det.name}, policy {det.preset.policy}, threshold {det.threshold:g}; reports in {args.out}",
          file=sys.stderr)
    return rows


if __name__ == "__main__":
    main(get_args_parser().parse_args())
