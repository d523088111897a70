"""Shared fixtures. Real parts only: real images, real files, real servers started per session."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SYNTHSPOT_SHARED_DIR", REPO.parent / "shared"))
PARITY = SHARED / "parity"


def synthspot_cmd(*args: str) -> list[str]:
    """The installed console script, so tests exercise what users run."""
    exe = Path(sys.executable).with_name("synthspot")
    return [str(exe), *args] if exe.exists() else [sys.executable, "-m", "synthspot", *args]


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    if not (PARITY / "expected.json").is_file():
        pytest.skip(f"parity kit not found at {PARITY}")
    return PARITY


@pytest.fixture(scope="session")
def parity_checkpoint(parity_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deterministic reference-format checkpoint written by the parity kit's own script."""
    out = tmp_path_factory.mktemp("parity") / "parity.pth"
    subprocess.run([sys.executable, str(parity_dir / "make_checkpoint.py"), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def parity_detector_factory(parity_checkpoint: Path):
    from synthspot.detector import Detector

    cache: dict = {}

    def make(**overrides):
        key = tuple(sorted(overrides.items()))
        if key not in cache:
            cache[key] = Detector.load(str(parity_checkpoint), device="cpu", preset_overrides=overrides or None,
                                       batch_size=8)
        return cache[key]

    return make


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server (AOF on, noeviction) on a free port, for one test."""
    from services import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def s3_server(tmp_path):
    """A real S3-compatible server (nanio, SigV4-checking) on a free port, for one test."""
    from services import S3Server

    server = S3Server(tmp_path / "s3").start()
    yield server
    server.stop()
