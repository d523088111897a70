"""Small real servers and image makers used by several tests."""
from __future__ import annotations

import contextlib
import http.server
import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """A real HTTP server on loopback serving ``root``; yields its base URL."""
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def photo(width: int = 256, height: int = 192, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth, photo-like test image (gradients plus noise), deterministic per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 / max(width - 1, 1)), (y * 255 / max(height - 1, 1)),
                     ((x + y) * 127 / max(width + height - 2, 1))], axis=-1)
    arr = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    return img if mode == "RGB" else img.convert(mode)


def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def run_on_terminal(cmd: list[str], timeout: float = 300) -> tuple[int, str, str]:
    """Run ``cmd`` with its stderr on a pseudo-terminal (what a user at a shell sees) and its
    stdout on a pipe; returns (exit status, stdout, terminal output)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    master, slave = pty.openpty()
    # a fresh pty is 0 x 0, and tqdm draws nothing in zero columns: give it a real terminal's size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:  # a full pty buffer would block the child
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=slave, text=True, timeout=timeout)
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)
    return proc.returncode, proc.stdout, b"".join(chunks).decode(errors="replace")
