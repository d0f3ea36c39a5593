"""hydra.launcher.stack without a cluster: which jobs share a SLURM task (_stack.pack), the
key's check, and how a stack's jobs end when SLURM's signal stops the task (_job.after_all)."""

from __future__ import annotations

import pytest
from omegaconf import open_dict, read_write

from dlrun.errors import Interrupted, UsageError
from dlrun.folders import runs
from dlrun.folders.sweep_index import record_job

pytest.importorskip("submitit")
from submitit.core.utils import UncompletedJobError  # noqa: E402

from hydra_plugins.dlrun_slurm import _driver, _job, _stack  # noqa: E402


@pytest.fixture(scope="module")
def composed():
    """Job configs as the driver composes them (with Hydra's node), by their overrides."""
    from hydra import compose, initialize_config_dir

    from dlrun.config.compose import setup_hydra
    from dlrun.paths import conf_dir

    setup_hydra()
    cache = {}

    def job(tmp_path, num: int, *overrides: str) -> _driver.Job:
        key = tuple(overrides)
        if key not in cache:
            with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir())):
                cache[key] = compose("train", list(overrides), return_hydra_config=True)
        cfg = cache[key].copy()
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.sweep.dir, cfg.hydra.sweep.subdir = str(tmp_path), f"{num}_job"
            cfg.hydra.runtime.output_dir = str(tmp_path / f"{num}_job")
        return _driver.Job(num, list(overrides), cfg)

    return job


def numbers(tasks) -> list[list[int]]:
    return [[job.num for job in task] for task in tasks]


def test_jobs_are_packed_as_the_batched_launcher_groups_them(tmp_path, composed, capsys):
    jobs = [
        composed(tmp_path, 0, "seed=0"),
        composed(tmp_path, 1, "seed=1", "optimizer=adam"),  # a value: stacks with job 0
        composed(tmp_path, 2, "seed=2", "model.batch_norm=true"),
        composed(tmp_path, 3, "seed=3"),
        composed(tmp_path, 4, "seed=4", "model.width=8"),  # another shape
        composed(tmp_path, 5, "seed=5"),
    ]
    assert numbers(_stack.pack(jobs, 2)) == [[0, 1], [2], [3, 5], [4]]
    notes = capsys.readouterr().out.splitlines()
    assert notes == [
        "dlrun: job 2 runs alone: model.batch_norm=true: batch statistics are not stacked",
        "dlrun: job 4 runs alone: no other job shares its shapes",
    ]
    assert numbers(_stack.pack(jobs, 3)) == [[0, 1, 3], [2], [4], [5]]  # 5: a remainder, no note
    assert capsys.readouterr().out.count("runs alone") == 2
    assert numbers(_stack.pack(jobs, 1)) == [[0], [1], [2], [3], [4], [5]]  # today's arrays
    assert capsys.readouterr().out == ""


def test_a_job_with_its_own_last_pt_still_joins_a_stack(tmp_path, composed, capsys):
    """A re-run sweep: job 1 continues from its last.pt inside a stack (the task resumes it);
    the batched launcher on one machine runs such a job alone instead."""
    from hydra_plugins.dlrun_batched._core import alone_reason, task_configs

    jobs = [composed(tmp_path, n, f"seed={n}") for n in range(3)]
    (jobs[1].run_dir / runs.CHECKPOINTS).mkdir(parents=True)
    (jobs[1].run_dir / runs.CHECKPOINTS / runs.LAST).write_bytes(b"saved")
    runs.write_json(jobs[1].run_dir / runs.SUMMARY, {"status": runs.CANCELLED})
    assert numbers(_stack.pack(jobs, 8)) == [[0, 1, 2]]
    assert capsys.readouterr().out == ""
    cfg = task_configs(jobs[1].cfg.copy())[2]
    local = alone_reason(jobs[1].cfg, cfg, jobs[1].run_dir)
    assert local == "continues from its checkpoints/last.pt"


@pytest.mark.parametrize("stack", [0, -2, True, "2", 1.5])
def test_a_stack_below_one_or_not_a_whole_number_is_refused(stack):
    with pytest.raises(UsageError, match=r"hydra.launcher.stack=.* at least 1"):
        _stack.check_stack(stack)
    assert _stack.check_stack(1) == 1 and _stack.check_stack(8) == 8


def test_stack_zero_on_the_command_line_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    from dlrun.cli.main import main

    code = main(["train", "-m", "hydra/launcher=slurm", "hydra.launcher.stack=0", "seed=0,1",
                 f"hydra.sweep.dir={tmp_path / 'sw'}"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "hydra.launcher.stack=0" in err[0]
    assert not (tmp_path / "sw").exists()


def stopped_stack(tmp_path, composed, statuses):
    """A task's jobs as the stack leaves them when a signal stopped it: each with its status."""
    ended = []
    for num, status in enumerate(statuses):
        job = composed(tmp_path, num, f"seed={num}")
        job.run_dir.mkdir(parents=True)
        record_job(tmp_path, num, {"seed": str(num)}, job.run_dir)
        summary = {"status": status, "epochs_run": 4 + num, "seed": num, "monitor": "val_loss"}
        if status == runs.COMPLETED:
            summary["best_val_loss"] = 0.25
        runs.write_json(job.run_dir / runs.SUMMARY, summary)
        ended.append((job.cfg, num))
    return ended


def status_of(tmp_path, num):
    return runs.read_summary(tmp_path / f"{num}_job")


def test_the_warning_requeues_every_unfinished_replica_and_keeps_a_finished_one(tmp_path, composed):
    stack = stopped_stack(tmp_path, composed, [runs.INTERRUPTED, runs.COMPLETED, runs.INTERRUPTED])
    seen = []

    def submitit_requeues(signum, frame):
        seen.append([status_of(tmp_path, n)["status"] for n in range(3)])
        raise SystemExit(-1)  # submitit's handler: checkpoint, scontrol requeue, exit

    with pytest.raises(SystemExit):
        _job.after_all(Interrupted("SIGUSR2", 140), stack, submitit_requeues, 3)
    assert seen == [[runs.REQUEUED, runs.COMPLETED, runs.REQUEUED]]
    assert "after epoch 6" in status_of(tmp_path, 2)["error"]


def test_after_the_last_requeue_every_unfinished_replica_ends_timeout(tmp_path, composed):
    stack = stopped_stack(tmp_path, composed, [runs.INTERRUPTED, runs.COMPLETED, runs.INTERRUPTED])

    def submitit_gives_up(signum, frame):
        raise UncompletedJobError("Job not requeued because: timed-out too many times.")

    rets = _job.after_all(Interrupted("SIGUSR2", 140), stack, submitit_gives_up, 2)
    assert [r.return_value for r in rets] == [float("inf"), 0.25, float("inf")]
    assert [status_of(tmp_path, n)["status"] for n in range(3)] == [
        runs.TIMEOUT, runs.COMPLETED, runs.TIMEOUT,
    ]  # fmt: skip
    assert "max_num_timeout=2" in status_of(tmp_path, 0)["error"]


def test_sigterm_ends_the_task_without_a_result_each_replica_saved_as_it_stopped(
    tmp_path, composed, capsys
):
    stack = stopped_stack(tmp_path, composed, [runs.INTERRUPTED, runs.INTERRUPTED])
    with pytest.raises(SystemExit) as stop:  # the driver reads from squeue how it ended
        _job.after_all(Interrupted("SIGTERM", 143), stack, None, 3)
    assert stop.value.code == 143
    out = capsys.readouterr().out
    assert "job 0 stopped by SIGTERM after epoch 4" in out
    assert "job 1 stopped by SIGTERM after epoch 5" in out
    assert [status_of(tmp_path, n)["status"] for n in range(2)] == [runs.INTERRUPTED] * 2


def test_the_launcher_pickled_for_a_task_carries_no_composed_jobs():
    """The driver composes every job once (_compose.ComposingLoader); each SLURM task gets the
    loader without that cache, so a task's pickle does not grow with the sweep."""
    import pickle

    import cloudpickle
    from omegaconf import OmegaConf

    from hydra_plugins.dlrun_batched._compose import ComposingLoader

    class HydrasLoader:
        calls = 0

        def load_sweep_config(self, master, overrides):
            HydrasLoader.calls += 1
            return OmegaConf.create({"overrides": list(overrides), "big": "x" * 100_000})

    loader = ComposingLoader(HydrasLoader())
    master = OmegaConf.create({})
    assert loader.load_sweep_config(master, ["seed=0"]).overrides == ["seed=0"]
    assert loader.load_sweep_config(master, ["seed=0"]).overrides == ["seed=0"]  # kept
    assert HydrasLoader.calls == 1
    payload = cloudpickle.dumps(loader)
    assert len(payload) < 10_000  # not the 100 kB config it holds
    in_task = pickle.loads(payload)
    assert in_task.load_sweep_config(master, ["seed=1"]).overrides == ["seed=1"]
