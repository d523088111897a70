"""Where the default model's training images come from, and the train/validation split.

Real photos: the development data's ``real-photos`` (BSD100, Urban100, Set5, Set14), the
photographs among three Debian wallpaper packages (``apt-get install lomiri-wallpapers-16.04
mate-backgrounds plasma-workspace-wallpapers``; abstract and rendered wallpapers excluded, each
kept file checked by eye; licences in /usr/share/doc/<package>/copyright) and scikit-image's
bundled photos. Generated: ``generated/<family>/`` (13 families), split by *prompt*, since
several text-to-image families rendered the same prompts. The split is a fixed hash of each
item's key: 20 % validation. Set5/Set14 stay in training (they are the inputs of the swinir and
esrgan samples), and so do those two families.
"""
from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Any

from PIL import Image

WALLPAPER_PHOTOS = [
    "/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg",
    "/usr/share/backgrounds/Dragonfly_by_Bolly.jpg",
    "/usr/share/backgrounds/Picture_0B_by_freespace.jpg",
    "/usr/share/backgrounds/Picture_1A_by_freespace.jpg",
    "/usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg",
    "/usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg",
    "/usr/share/backgrounds/analogpattern_by_Peter_Nerlich.jpg",
    "/usr/share/backgrounds/free_by_Peter_Nerlich.jpg",
    "/usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg",
    "/usr/share/backgrounds/greentock_by_Peter_Nerlich.jpg",
    "/usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg",
    "/usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg",
    "/usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg",
    "/usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg",
    "/usr/share/backgrounds/mate/nature/Aqua.jpg",
    "/usr/share/backgrounds/mate/nature/Blinds.jpg",
    "/usr/share/backgrounds/mate/nature/Dune.jpg",
    "/usr/share/backgrounds/mate/nature/FreshFlower.jpg",
    "/usr/share/backgrounds/mate/nature/Garden.jpg",
    "/usr/share/backgrounds/mate/nature/GreenMeadow.jpg",
    "/usr/share/backgrounds/mate/nature/LadyBird.jpg",
    "/usr/share/backgrounds/mate/nature/RainDrops.jpg",
    "/usr/share/backgrounds/mate/nature/Storm.jpg",
    "/usr/share/backgrounds/mate/nature/TwoWings.jpg",
    "/usr/share/backgrounds/mate/nature/Wood.jpg",
    "/usr/share/backgrounds/mate/nature/YellowFlower.jpg",
    "/usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg",
    "/usr/share/wallpapers/ColdRipple/contents/images/2560x1600.jpg",
    "/usr/share/wallpapers/DarkestHour/contents/images/2560x1600.jpg",
    "/usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg",
    "/usr/share/wallpapers/FallenLeaf/contents/images/2560x1600.jpg",
    "/usr/share/wallpapers/OneStandsOut/contents/images/2560x1600.jpg",
    "/usr/share/wallpapers/Path/contents/images/2560x1600.jpg",
    "/usr/share/wallpapers/summer_1am/contents/images/2560x1600.jpg",
]
SKIMAGE_PHOTOS = ["astronaut", "cat", "chelsea", "coffee", "rocket"]
VAL_FRACTION = 0.2


def default_data_dir() -> Path:
    """``$SYNTHSPOT_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("SYNTHSPOT_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _hash01(key: str) -> float:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2 ** 32


def split_of(key: str) -> str:
    return "val" if _hash01(key) < VAL_FRACTION else "train"


def prompt_key(path_in_repo: str) -> str:
    """Text-to-image galleries render one prompt with several models: group by the prompt folder."""
    parts = path_in_repo.split("/")
    if "renders" in parts:
        return parts[parts.index("renders") + 1]
    return path_in_repo


def real_sources(data: Path) -> list[dict[str, Any]]:
    """Dicts of id, path (or ``skimage:<name>``), group and split."""
    out = []
    with open(Path(data) / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["file"].startswith("real-photos/"):
                continue
            group = row["file"].split("/")[1]
            split = "train" if group in ("set5", "set14") else split_of("real:" + row["file"])
            out.append(dict(id=row["file"], path=str(Path(data) / row["file"]), group=group, split=split))
    for path in WALLPAPER_PHOTOS:
        if os.path.exists(path):
            out.append(dict(id=path, path=path, group="wallpaper", split=split_of("real:" + path)))
    for name in SKIMAGE_PHOTOS:
        out.append(dict(id="skimage:" + name, path="skimage:" + name, group="skimage", split="train"))
    return out


def generated_sources(data: Path, exclude: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    out = []
    with open(Path(data) / "generated" / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            family = row["file"].split("/")[1]
            if family in exclude:
                continue
            split = "train" if family in ("swinir", "esrgan") else split_of("prompt:" + prompt_key(row["path_in_repo"]))
            out.append(dict(id=row["file"], path=str(Path(data) / row["file"]), group=family, split=split))
    return out


def load_rgb(path: str) -> Image.Image:
    """Decode to RGB (``skimage:<name>`` for scikit-image's bundled photos)."""
    if path.startswith("skimage:"):
        import skimage.data

        return Image.fromarray(getattr(skimage.data, path.split(":", 1)[1])()).convert("RGB")
    with Image.open(path) as im:
        return im.convert("RGB")
