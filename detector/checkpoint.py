"""Read model weights from untrusted files, safely, and fit them to an architecture.

Accepted layouts: the published CNNDetection checkpoints (``{'model': state_dict,
'optimizer': ..., 'total_steps': ...}``), synthspot's own training checkpoints (the same plus
a ``'synthspot'`` metadata dict), a bare state dict, and keys prefixed with ``module.``
(saved from ``DataParallel``). Files are always read with ``torch.load(weights_only=True)``,
which refuses pickled code; it is not a sandbox, hence the sha256 checks in ``weights.py``.
"""
from __future__ import annotations

import hashlib
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import WeightsError
from .models import create_model, expected_keys, list_models


@dataclass
class Checkpoint:
    """A state dict read from ``path`` plus whatever metadata the file carried."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load a state dict from ``path`` with ``weights_only=True``; any failure names the file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}", reason="weights_not_found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "refused by weights_only"
        raise WeightsError(f"{path}: not a plain weights file ({first})", reason="corrupt_weights") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError) as exc:
        raise WeightsError(f"{path}: not a readable PyTorch weights file ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''})", reason="corrupt_weights") from None

    meta: dict[str, Any] = {}
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        state = obj["model"]
        meta = dict(obj.get("synthspot") or {})
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        state = obj["state_dict"]
        meta = dict(obj.get("synthspot") or {})
    elif isinstance(obj, dict):
        state = obj
    else:
        raise WeightsError(f"{path}: holds a {type(obj).__name__}, not a state dict", reason="corrupt_weights")

    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors or len(tensors) != len(state):
        bad = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))[:3]
        raise WeightsError(f"{path}: not a state dict of tensors (e.g. {bad})", reason="corrupt_weights")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return Checkpoint(path=path, state_dict=tensors, meta=meta)


def infer_arch(ckpt: Checkpoint) -> str:
    """The registered architecture whose parameter names match the checkpoint's exactly."""
    keys = set(ckpt.state_dict)
    for arch in list_models():
        if expected_keys(arch) == keys:
            return arch
    raise WeightsError(f"{ckpt.path}: its {len(keys)} tensors match no known architecture "
                       f"({', '.join(list_models())})", reason="wrong_architecture")


def build_model(arch: str, ckpt: Checkpoint) -> nn.Module:
    """Instantiate ``arch`` and load the checkpoint strictly; mismatches become one clear error."""
    model = create_model(arch)
    own = model.state_dict()
    missing = sorted(set(own) - set(ckpt.state_dict))
    unexpected = sorted(set(ckpt.state_dict) - set(own))
    mismatched = sorted(k for k in set(own) & set(ckpt.state_dict) if own[k].shape != ckpt.state_dict[k].shape)
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if mismatched:
            k = mismatched[0]
            parts.append(f"{len(mismatched)} of another shape (e.g. {k}: file {tuple(ckpt.state_dict[k].shape)}, "
                         f"{arch} {tuple(own[k].shape)})")
        raise WeightsError(f"{ckpt.path}: not {arch} weights: " + "; ".join(parts), reason="wrong_architecture")
    model.load_state_dict(ckpt.state_dict, strict=True)
    return model.eval()
