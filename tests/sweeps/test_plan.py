"""What a sweep plans (dlrun/sweeps/plan.py)."""

from __future__ import annotations

from omegaconf import OmegaConf

from dlrun.sweeps.plan import planned_jobs, swept_keys

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def config(target, task, params=None, **sweeper):
    return OmegaConf.create(
        {
            "hydra": {
                "overrides": {"task": task},
                "sweeper": {"_target_": target, "params": params, **sweeper},
            }
        }
    )


def test_a_sweep_plans_the_basic_sweepers_product_and_optunas_trials():
    assert planned_jobs(config(BASIC, ["seed=0,1,2", "optimizer=sgd,adam"])) == 6
    assert planned_jobs(config(BASIC, ["trainer.epochs=3"], {"seed": "0,1"})) == 2
    # a stopped search of 3 trials counts 3 jobs, not the 1 that had started
    assert planned_jobs(config(OPTUNA, ["optimizer.lr=interval(0.001,0.1)"], n_trials=3)) == 3
    assert planned_jobs(config("some.other.Sweeper", ["seed=0,1"])) is None


def test_the_swept_keys_are_the_sweeps_of_the_command_line_and_the_params():
    assert swept_keys(["seed=0,1", "trainer.epochs=3"], {"optimizer": "sgd,adam"}) == [
        "optimizer",
        "seed",
    ]
    assert swept_keys(["optimizer=adam"], {"optimizer": "sgd,adam"}) == []  # a typed value wins
