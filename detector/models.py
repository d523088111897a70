"""Detector architectures, registered by name (timm style: tiny entrypoints, one builder).

Every architecture maps an ImageNet-normalised RGB batch ``(n, 3, h, w)`` to one logit per
image, ``(n,)`` after squeezing; ``sigmoid(logit)`` is the probability of being synthetic.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models import resnet50 as tv_resnet50

_MODELS: dict[str, Callable[[], nn.Module]] = {}


def register_model(fn: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """Register an architecture entrypoint under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"architecture {fn.__name__!r} registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(arch: str) -> nn.Module:
    """Build an untrained model of a registered architecture (unknown names raise, listing the valid ones)."""
    try:
        entry = _MODELS[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(list_models())}") from None
    return entry()


@register_model
def resnet50() -> nn.Module:
    """The paper's detector: torchvision's ResNet-50 with ``fc = Linear(2048, 1)``.

    The state-dict keys are torchvision's, so the published CNNDetection checkpoints load as is.
    """
    return tv_resnet50(num_classes=1)


@register_model
def efficientnet_lite0_d11() -> nn.Module:
    """synthspot's compact default: EfficientNet-Lite0's first 11 blocks + one logit (0.70 M parameters)."""
    from .effnet import EfficientNetLiteTrunk

    return EfficientNetLiteTrunk(depth=11)


def expected_keys(arch: str) -> set[str]:
    """State-dict keys of an architecture, used to recognise a checkpoint's architecture."""
    return set(create_model(arch).state_dict().keys())


@torch.no_grad()
def init_head(model: nn.Module, std: float = 0.02) -> None:
    """Initialise a fresh one-logit head as the paper does: weights ~ N(0, 0.02), bias 0."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else model.fc
    nn.init.normal_(head.weight, 0.0, std)
    nn.init.zeros_(head.bias)
