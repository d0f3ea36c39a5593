"""dlrun.config.resolvers: values an experiment derives from others at compose time."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from dlrun.config.resolvers import per_choice, register_resolvers


@pytest.mark.parametrize(
    ("optimizer", "lr"),
    [("sgd", 0.05), ("momentum", 0.005), ("nesterov", 0.005), ("adam", 0.001)],
)
def test_optimizers_gives_momentum_sgds_effective_step(make_cfg, optimizer, lr):
    cfg = make_cfg("experiment=optimizers", f"optimizer={optimizer}")
    assert cfg.optimizer.lr == pytest.approx(lr)
    # heavy ball moves lr / (1 - mu) a step where the gradient stays put: SGD's 0.05
    assert cfg.optimizer.lr / (1 - cfg.optimizer.momentum) == pytest.approx(
        0.05 if optimizer in ("sgd", "momentum", "nesterov") else lr
    )


def test_a_choice_the_table_lacks_is_named():
    register_resolvers()
    cfg = OmegaConf.create(
        {"name": "adamw", "lr": "${dlrun_per_choice:${name},{sgd: 0.05, adam: 0.001}}"}
    )
    with pytest.raises(Exception, match="adamw has no value in the table \\(sgd, adam\\)"):
        _ = cfg.lr
    assert per_choice("adam", {"sgd": 0.05, "adam": 0.001}) == 0.001
