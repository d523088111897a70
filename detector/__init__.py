"""synthspot's detector library: the CNNDetection model, its weights, preprocessing and scoring.

Public API::

    from synthspot.detector import Detector
    det = Detector.load("blur_jpg_prob0.5", device="auto")   # or a path / URL / None for the default
    for result in det.score_sources(["a.png", "b.jpg"]):
        print(result.source, result.score, result.label, result.error)

This package is a library: it takes explicit arguments and reads no service configuration.
"""
from .decode import DecodeLimits, decode_image
from .errors import ImageError, SynthspotError, WeightsError
from .infer import Detector, ScoreResult, label_for, sigmoid
from .preprocess import EvalPreset
from .weights import DEFAULT_WEIGHTS, WeightsCfg, get_weights_cfg, list_weights

__all__ = [
    "DEFAULT_WEIGHTS", "DecodeLimits", "Detector", "EvalPreset", "ImageError", "ScoreResult",
    "SynthspotError", "WeightsCfg", "WeightsError", "decode_image", "get_weights_cfg", "label_for",
    "list_weights", "sigmoid",
]
