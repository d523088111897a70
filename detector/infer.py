"""Batched, overlapped scoring with one loaded model.

``Detector`` owns a model, its weights entry and a preprocessing preset taken from that entry.
Two paths share one forward function:

* ``score_views`` scores already-prepared views of many images in as few forward passes as
  possible (the worker's cross-task batcher calls it);
* ``score_sources`` decodes and prepares files in a thread pool while the model runs on the
  previous batch, so the network never waits on Pillow (the CLI and the benchmarks call it).

Views of equal shape are concatenated and cut into chunks of ``batch_size`` views; views of
different shapes (``policy='full'``) are bucketed by shape. An image's logit is the mean of its
views' logits. Everything runs under ``torch.inference_mode`` in channels-last layout; on CUDA under float16
autocast.
"""
from __future__ import annotations

import logging
import math
import os
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import build_model, infer_arch, read_checkpoint
from .decode import DEFAULT_LIMITS, DecodeLimits, decode_image
from .errors import ImageError, SynthspotError
from .preprocess import EvalPreset
from .weights import ResolvedWeights, WeightsCfg, resolve, verify

log = logging.getLogger(__name__)

LABELS = ("synthetic", "review", "real")


def label_for(score: float, threshold: float, review_threshold: float | None = None) -> str:
    """``synthetic`` at or above ``threshold``; ``review`` at or above ``review_threshold``; else ``real``."""
    if score >= threshold:
        return "synthetic"
    if review_threshold is not None and score >= review_threshold:
        return "review"
    return "real"


def sigmoid(logit: float) -> float:
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    z = math.exp(logit)
    return z / (1.0 + z)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm into the convolution before it (one pass over memory fewer
    per layer: ~10-15 % more ResNet-50 images/s on CPU). Models that torch.fx cannot trace
    symbolically are returned unchanged; the original module is never modified."""
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(model)
    except Exception:  # noqa: BLE001 - data-dependent Python control flow: keep the model as is
        return model


def compile_for_inference(model: nn.Module) -> nn.Module:
    """``torch.compile`` with weights frozen as constants and prepacked for the CPU's kernels:
    about +30 % ResNet-50 images/s on a 2-core CPU (bench/README.md), after a one-time compile of
    tens of seconds per view shape. Needs a C++ compiler on CPU (Triton on CUDA)."""
    import torch._inductor.config as inductor

    inductor.freezing = True
    inductor.cpp.weight_prepack = True
    return torch.compile(model, dynamic=False)


def load_model(resolved: ResolvedWeights) -> tuple[WeightsCfg, nn.Module, str]:
    """Verify resolved weights and build their model: the weights' entry (its architecture read
    from the file when the entry does not name one), the plain model, and the file's sha256."""
    digest = verify(resolved)
    ckpt = read_checkpoint(resolved.path)
    cfg = resolved.cfg
    if cfg.arch == "auto":
        from .weights import custom_cfg

        cfg = custom_cfg(cfg.name, ckpt.meta)
        arch = cfg.arch if cfg.arch != "auto" else infer_arch(ckpt)
        cfg = WeightsCfg(**{**cfg.as_dict(), "arch": arch})
    return cfg, build_model(cfg.arch, ckpt), digest


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` is CUDA when present, else the CPU; an explicit device must exist."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise SynthspotError(f"invalid device {device!r}: {exc}", reason="bad_device") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise SynthspotError(f"device {device!r} is not available (CUDA devices: {torch.cuda.device_count()})",
                             reason="bad_device")
    return dev


@dataclass
class ScoreResult:
    """One scored input. ``error`` is set (and the numbers are ``None``) when it could not be scored."""

    source: str
    logit: float | None = None
    score: float | None = None
    label: str | None = None
    views: int = 0
    error: SynthspotError | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.source, "score": self.score, "logit": self.logit, "label": self.label,
                "views": self.views, "error": self.error.as_dict() if self.error else None}


class Detector:
    """A loaded detector: model + weights entry + preprocessing, on one device."""

    def __init__(self, model: nn.Module, cfg: WeightsCfg, *, weights_sha256: str | None = None,
                 device: str | torch.device | None = "auto", preset: EvalPreset | None = None,
                 batch_size: int = 32, threshold: float | None = None, autocast: bool | None = None,
                 compile: bool = False) -> None:
        self.device = pick_device(device)
        self.cfg = cfg
        self.weights_sha256 = weights_sha256
        self.preset = preset or cfg.eval_preset()
        self.batch_size = max(1, int(batch_size))
        self.threshold = cfg.threshold if threshold is None else float(threshold)
        self.autocast = (self.device.type == "cuda") if autocast is None else autocast
        # channels-last on every device: oneDNN's CPU convolutions are several times faster in
        # NHWC than in NCHW at small batch sizes, and cuDNN's tensor-core kernels want it too.
        self.model = fold_batchnorm(model.eval()).to(self.device, memory_format=torch.channels_last)
        self._compiled = compile_for_inference(self.model) if compile else None

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def load(cls, weights: str | None = None, *, device: str | torch.device | None = "auto",
             cache_dir: Path | None = None, mirror: str | None = None, download: bool = True,
             progress: bool = True, preset_overrides: dict[str, Any] | None = None, **kwargs: Any) -> "Detector":
        """Resolve ``weights`` (name, path or URL), verify its sha256, build and load the model."""
        resolved = resolve(weights, cache_dir=cache_dir, mirror=mirror, download_missing=download, progress=progress)
        return cls.from_resolved(resolved, device=device, preset_overrides=preset_overrides, **kwargs)

    @classmethod
    def from_resolved(cls, resolved: ResolvedWeights, *, preset_overrides: dict[str, Any] | None = None,
                      **kwargs: Any) -> "Detector":
        cfg, model, digest = load_model(resolved)
        preset = cfg.eval_preset(**(preset_overrides or {}))
        detector = cls(model, cfg, weights_sha256=digest, preset=preset, **kwargs)
        log.info("loaded weights %s (%s, sha256 %s) on %s", cfg.name, cfg.arch, digest[:12], detector.device)
        return detector

    @property
    def name(self) -> str:
        return self.cfg.name

    # --- preparation (CPU, thread-safe) --------------------------------------------------------
    def prepare(self, image: Any) -> torch.Tensor:
        """Normalised views of a decoded RGB image, ready for ``score_views``."""
        return self.preset(image)

    def load_and_prepare(self, source: bytes | str | os.PathLike[str],
                         limits: DecodeLimits = DEFAULT_LIMITS) -> torch.Tensor:
        return self.prepare(decode_image(source, limits))

    # --- inference ------------------------------------------------------------------------------
    @torch.inference_mode()
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits of a ``(n, 3, h, w)`` batch of equal-shape views, in chunks of ``batch_size``."""
        outputs = []
        for start in range(0, batch.shape[0], self.batch_size):
            chunk = batch[start:start + self.batch_size]
            if self.device.type == "cuda":
                chunk = chunk.pin_memory().to(self.device, non_blocking=True)
            n = chunk.shape[0]
            if self._compiled is not None and n < self.batch_size:  # one static shape: no recompilation for a short batch
                chunk = torch.cat([chunk, chunk.new_zeros((self.batch_size - n, *chunk.shape[1:]))])
            chunk = chunk.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.autocast):
                out = (self.model if self._compiled is None else self._compiled)(chunk)
            outputs.append(out.reshape(-1)[:n].float().cpu())
        return torch.cat(outputs) if outputs else torch.empty(0)

    def score_views(self, views: Sequence[torch.Tensor]) -> list[float]:
        """One logit per image from each image's ``(k, 3, h, w)`` views (mean over its views)."""
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, v in enumerate(views):
            by_shape[tuple(v.shape[1:])].append(index)
        sums = [0.0] * len(views)
        for indices in by_shape.values():
            batch = torch.cat([views[i] for i in indices])
            logits = self.forward(batch).tolist()
            offset = 0
            for i in indices:
                k = views[i].shape[0]
                sums[i] = sum(logits[offset:offset + k]) / k
                offset += k
        return sums

    def result(self, source: str, logit: float, views: int) -> ScoreResult:
        score = sigmoid(logit)
        return ScoreResult(source, logit, score, label_for(score, self.threshold), views)

    def score_images(self, images: Iterable[Any]) -> list[float]:
        """Logits of decoded RGB images (no overlap; for small in-memory lists)."""
        return self.score_views([self.prepare(img) for img in images])

    def score_sources(self, sources: Iterable[str | os.PathLike[str]], *, workers: int | None = None,
                      limits: DecodeLimits = DEFAULT_LIMITS) -> Iterator[ScoreResult]:
        """Score files in input order; decoding runs ahead in ``workers`` threads during inference.

        Errors are per input: an undecodable file yields a result with ``error`` set and scoring
        goes on.
        """
        # half the cores decode at most: on a small CPU a decode thread preempting one of torch's
        # threads stalls the whole forward pass
        workers = workers or max(1, min(8, (os.cpu_count() or 2) // 2))
        window = max(2 * self.batch_size, 2 * workers)
        pending: deque[tuple[str, Future[torch.Tensor]]] = deque()
        source_iter = iter(sources)
        exhausted = False
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synthspot-decode") as pool:
            while True:
                while not exhausted and len(pending) < window:
                    try:
                        src = os.fspath(next(source_iter))
                    except StopIteration:
                        exhausted = True
                        break
                    pending.append((src, pool.submit(self.load_and_prepare, src, limits)))
                if not pending:
                    return
                # take inputs in order until a batch worth of views is ready
                taken: list[tuple[str, torch.Tensor | SynthspotError]] = []
                n_views = 0
                while pending and n_views < self.batch_size:
                    src, fut = pending.popleft()
                    try:
                        views = fut.result()
                        n_views += views.shape[0]
                        taken.append((src, views))
                    except SynthspotError as exc:
                        taken.append((src, exc))
                    except Exception as exc:  # noqa: BLE001 - one bad input must not stop the run
                        taken.append((src, ImageError(f"cannot prepare the image: {exc!r}", reason="corrupt")))
                good = [(i, t) for i, (_, t) in enumerate(taken) if isinstance(t, torch.Tensor)]
                logits = self.score_views([t for _, t in good]) if good else []
                by_index = {i: logit for (i, _), logit in zip(good, logits)}
                for i, (src, item) in enumerate(taken):
                    if isinstance(item, torch.Tensor):
                        yield self.result(src, by_index[i], item.shape[0])
                    else:
                        yield ScoreResult(src, error=item)
