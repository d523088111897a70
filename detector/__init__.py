"""synthspot's detector library: the CNNDetection model, its weights, preprocessing and scoring.

Public API::

    from synthspot.detector import Detector
    det = Detector.load("blur_jpg_prob0.5", device="auto")   # or a path / URL / None for the default
    for result in det.score_sources(["a.png", "b.jpg"]):
        print(result.source, result.score, result.label, result.error)

This package is a library: it takes explicit arguments and reads no service configuration.
Names are imported lazily, so that ``synthspot.detector.errors`` (used by light processes such
as the deliverer) does not load torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DecodeLimits": "decode", "decode_image": "decode",
    "ImageError": "errors", "SynthspotError": "errors", "WeightsError": "errors",
    "Detector": "infer", "ScoreResult": "infer", "label_for": "infer", "sigmoid": "infer",
    "EvalPreset": "preprocess",
    "DEFAULT_WEIGHTS": "weights", "WeightsCfg": "weights", "get_weights_cfg": "weights", "list_weights": "weights",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
