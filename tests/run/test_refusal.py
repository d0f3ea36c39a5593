"""Set-up errors are bad input: one line naming the step, exit 2, no run folder (dlrun/run/refusal.py).

Reproduction 9 of issue 20: a model too large to allocate, an initial value
that overflows float32, a custom model with no parameters and custom data of
ragged rows exited 1 and left a run folder holding only `.hydra/`.
"""

from __future__ import annotations

import textwrap

import pytest

from dlrun.cli.main import main
from dlrun.toolbox import memory

QUICK = ["data=moons", "data.n_samples=200", "trainer.epochs=1", "device=cpu"]
QUICK += ["trainer.progress=false", "trainer.threads=1"]

USER_CODE = """
import torch


class Nothing(torch.nn.Module):  # no parameters at all
    def __init__(self, input_shape, n_outputs):
        super().__init__()

    def forward(self, x):
        return x


def ragged():
    return [[1.0, 2.0], [3.0]] * 50, [0, 1] * 50
"""

CASES = [
    (["model.width=2000000000"], "model=mlp: too large to allocate"),
    (["model.width=2000000000", "model.depth=1"], "model=mlp: 10,000,000,002 parameters need"),
    (["init=constant", "init.value=1e300"], "init=constant: RuntimeError"),
    (["model=custom", "model._target_=setup_usernets.Nothing"], "empty parameter list"),
    (["data=custom", "data._target_=setup_usernets.ragged"], "data="),
]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    (tmp_path / "setup_usernets.py").write_text(textwrap.dedent(USER_CODE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    # were the memory check ever lost, a 16 GB allocation must fail here, not summon the OOM killer
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as f:
        used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (used + (4 << 30), hard))
    yield tmp_path
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize(("args", "says"), CASES, ids=[c[1] for c in CASES])
def test_a_run_that_cannot_be_set_up_is_one_line_and_leaves_nothing(in_tmp, capsys, args, says):
    before = sorted(p.name for p in in_tmp.iterdir())
    assert main(["train", *QUICK, *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert says in err
    assert sorted(p.name for p in in_tmp.iterdir() if p.name != "__pycache__") == before


def test_the_memory_check_counts_every_training_copy(monkeypatch):
    import torch

    from dlrun.errors import ModelError

    def build():
        return torch.nn.Linear(1000, 1000)  # 1,001,000 float32 parameters

    need = memory.TRAINING_COPIES * 1_001_000 * 4
    monkeypatch.setattr(memory, "available_bytes", lambda device: need)
    memory.check_fits(build, "model=x")  # exactly fits
    monkeypatch.setattr(memory, "available_bytes", lambda device: need - 1)
    with pytest.raises(ModelError, match="1,001,000 parameters"):
        memory.check_fits(build, "model=x")
