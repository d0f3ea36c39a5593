"""GPU behaviour (skipped without CUDA): the lecture's point that work stays on the device."""

from __future__ import annotations

import warnings

import pytest
import torch

from dlrun.run.runner import run

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _sync_warnings(make_cfg, tmp_path, batch_size: int) -> int:
    cfg = make_cfg("device=cuda", f"trainer.batch_size={batch_size}", "trainer.epochs=2")
    run(cfg, tmp_path / "warmup")  # first CUDA use, caches, cuBLAS handles
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = run(cfg, tmp_path / str(batch_size))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert summary["device"].startswith("cuda") and summary["status"] == "completed"
    return sum("synchroniz" in str(w.message) for w in caught)


def test_host_syncs_do_not_grow_with_steps_per_epoch(make_cfg, tmp_path):
    # 4x the steps per epoch must not add a single host sync: the loop keeps its
    # numbers on the GPU and reads them once per epoch.
    few = _sync_warnings(make_cfg, tmp_path, batch_size=256)
    many = _sync_warnings(make_cfg, tmp_path, batch_size=64)
    assert few > 0  # the syncs are counted at all (one per epoch at least)
    assert many == few


def test_checkpoint_from_gpu_loads_on_cpu(make_cfg, tmp_path):
    run(make_cfg("device=cuda"), tmp_path)
    ckpt = torch.load(tmp_path / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)
    assert all(t.device.type == "cpu" for t in ckpt["model"].values())


def test_streamed_data_gives_the_numbers_of_data_on_the_device(make_cfg, tmp_path, monkeypatch):
    import dlrun.data.tensors

    cfg = make_cfg("device=cuda", "trainer.epochs=2", "trainer.deterministic=true")
    on_device = run(cfg, tmp_path / "on")
    monkeypatch.setattr(dlrun.data.tensors, "fits_on_device", lambda n_bytes, device: False)
    streamed = run(cfg, tmp_path / "streamed")
    for key in ("train_loss", "val_loss", "test_acc"):
        assert streamed[key] == pytest.approx(on_device[key], rel=1e-5), key


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_reduced_precision_trains_on_the_gpu(make_cfg, tmp_path, precision):
    summary = run(make_cfg("device=cuda", f"trainer.precision={precision}"), tmp_path)
    assert summary["status"] == "completed" and summary["test_acc"] > 0.2


def test_compiled_model_trains_on_the_gpu(make_cfg, tmp_path):
    eager = run(make_cfg("device=cuda", "data=moons"), tmp_path / "eager")
    compiled = run(make_cfg("device=cuda", "data=moons", "trainer.compile=true"), tmp_path / "c")
    assert compiled["test_acc"] == pytest.approx(eager["test_acc"], abs=0.02)
