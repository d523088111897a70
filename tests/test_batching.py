"""Batched scoring equals one-at-a-time scoring; the tiling policy covers the image."""
from __future__ import annotations

import pytest

from helpers import photo
from synthspot.detector.preprocess import EvalPreset, grid_origins


def test_grid_origins_cover_both_edges():
    assert grid_origins(224, 224, 4) == [0]
    assert grid_origins(300, 224, 4) == [0, 76]
    assert grid_origins(4000, 224, 4) == [0, 1259, 2517, 3776]
    assert grid_origins(100, 224, 4) == [0]


def test_tiles_are_native_resolution_views():
    preset = EvalPreset(crop_size=224, policy="tiles", max_grid=4)
    img = photo(1000, 500)
    views = preset.views(img)
    assert views.shape == (4 * 3, 3, 224, 224)
    # the top-left tile is the image's own top-left pixels, untouched by any resize
    import torchvision.transforms.functional as TF

    assert (views[0] == TF.pil_to_tensor(img)[:, :224, :224]).all()
    small = EvalPreset(crop_size=224, policy="tiles").views(photo(120, 90))
    assert small.shape[-2:] == (224, 224)  # upsized to a 256 short side first, then tiled


@pytest.mark.parametrize("policy", ["tiles", "center", "full"])
def test_batched_equals_one_at_a_time(policy, parity_detector_factory, tmp_path):
    det = parity_detector_factory(policy=policy)
    sizes = [(256, 256), (301, 257), (180, 140), (256, 256), (400, 230), (301, 257)]
    paths = []
    for i, (w, h) in enumerate(sizes):
        path = tmp_path / f"img{i}.png"
        photo(w, h, seed=i).save(path)
        paths.append(str(path))
    batched = [r.logit for r in det.score_sources(paths)]
    single = []
    for p in paths:
        [r] = det.score_sources([p])
        single.append(r.logit)
    assert batched == pytest.approx(single, abs=1e-4)
    assert len(set(round(x, 4) for x in batched)) > 1  # not a constant model


def test_compiled_model_scores_like_eager(parity_detector_factory, tmp_path):
    """`--compile` (torch.compile, frozen weights, padded static batches) changes speed, not scores."""
    from synthspot.detector import Detector

    eager = parity_detector_factory(policy="center", crop_size=64)
    compiled = Detector(eager.model, eager.cfg, preset=eager.preset, device="cpu", batch_size=4, compile=True)
    paths = []
    for i, size in enumerate([(90, 80), (120, 100), (64, 64)]):  # 3 images: a padded, short batch
        photo(*size, seed=i).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    want = [r.logit for r in eager.score_sources(paths)]
    got = [r.logit for r in compiled.score_sources(paths)]
    assert got == pytest.approx(want, abs=1e-3)
