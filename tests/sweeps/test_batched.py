"""A stack's run folders (dlrun/sweeps/batched.py): each replica's folder is the one its run alone writes."""

from __future__ import annotations

import json
import math

import pytest
import torch

from dlrun.folders import runs
from dlrun.run.runner import run
from dlrun.sweeps import replicas
from dlrun.sweeps.batched import train_stack
from dlrun.sweeps.replicas import build_replica, replica_bytes, stack_limit
from dlrun.sweeps.stacked import StackedNet

from conftest import QUICK
from same_folders import TIMES, assert_same_csv, read_rows

SMALL = [*QUICK, "model.width=32", "model.dropout=0.3"]
EXACT = True  # dropout masks as the solo runs draw them, so their folders compare number by number


@pytest.fixture(scope="module")
def cfgs():
    from dlrun.config.compose import compose

    base = compose(SMALL)
    out = []
    for seed, lr in ((0, 1e-3), (1, 3e-3), (2, 1e-3)):
        cfg = base.copy()
        cfg.seed, cfg.optimizer.lr = seed, lr
        out.append(cfg)
    return out


@pytest.fixture(scope="module")
def solo(cfgs, tmp_path_factory):
    """Each job run alone by the runner: the folders a stack must reproduce."""
    root = tmp_path_factory.mktemp("solo")
    folders = [root / str(i) for i in range(len(cfgs))]
    for cfg, folder in zip(cfgs, folders):
        run(cfg, folder)
    return folders


def assert_same_folder(mine, theirs):
    files = sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(theirs).as_posix() for p in theirs.rglob("*") if p.is_file()
    )
    assert (mine / runs.CONFIG).read_text() == (theirs / runs.CONFIG).read_text()
    assert_same_csv(mine / runs.METRICS, theirs / runs.METRICS)
    assert_same_csv(mine / runs.LAYERS, theirs / runs.LAYERS)
    a, b = runs.read_summary(mine), runs.read_summary(theirs)
    assert list(a) == list(b)  # the same keys in the same order
    for k, v in b.items():
        if k in TIMES:
            continue
        if isinstance(v, float):
            assert a[k] == pytest.approx(v, rel=1e-5), k
        else:
            assert a[k] == v, k
    for name in (runs.LAST, runs.BEST):
        x = torch.load(mine / runs.CHECKPOINTS / name, weights_only=True)
        y = torch.load(theirs / runs.CHECKPOINTS / name, weights_only=True)
        assert x.keys() == y.keys() and x["epoch"] == y["epoch"] and x["step"] == y["step"]
        assert x["early_stopping"] == y["early_stopping"] and x["config"] == y["config"]
        for k, v in y["model"].items():
            torch.testing.assert_close(x["model"][k], v, rtol=1e-5, atol=1e-6)
        # the batch order and the dropout stream go on exactly where the solo run's would
        assert torch.equal(x["rng"]["batches"], y["rng"]["batches"])
        assert torch.equal(x["rng"]["torch"], y["rng"]["torch"])
        moments = [t for s in x["optimizer"]["state"].values() for t in s.values()]
        theirs_m = [t for s in y["optimizer"]["state"].values() for t in s.values()]
        for p, q in zip(moments, theirs_m):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_every_replica_writes_the_folder_its_run_alone_writes(cfgs, solo, tmp_path):
    replicas = [build_replica(cfg) for cfg in cfgs]
    done = {}
    dirs = [tmp_path / str(i) for i in range(3)]
    train_stack(replicas, dirs, ["a", "b", "c"], lambda i, s: done.setdefault(i, s), EXACT)
    assert sorted(done) == [0, 1, 2]
    for i in range(3):
        assert done[i] == runs.read_summary(tmp_path / str(i))
        assert_same_folder(tmp_path / str(i), solo[i])


def fail_at(replica, call: int, error: BaseException) -> None:
    """Make this replica's optimizer raise `error` at its `call`-th step."""
    step, count = replica.parts.optimizer.step, [0]

    def failing(*args, **kwargs):
        count[0] += 1
        if count[0] == call:
            raise error
        return step(*args, **kwargs)

    replica.parts.optimizer.step = failing


def signal_at(replica, call: int, signum: int) -> None:
    """Send this process `signum` at this replica's `call`-th optimizer step (mid epoch)."""
    import os

    step, count = replica.parts.optimizer.step, [0]

    def signalling(*args, **kwargs):
        count[0] += 1
        if count[0] == call:
            os.kill(os.getpid(), signum)
        return step(*args, **kwargs)

    replica.parts.optimizer.step = signalling


def steps_per_epoch(replica) -> int:
    return math.ceil(len(replica.data.train) / replica.cfg.trainer.batch_size)


def test_ctrl_c_leaves_every_replica_interrupted_at_its_last_epoch_and_resumable(
    cfgs, solo, tmp_path
):
    replicas = [build_replica(cfg) for cfg in cfgs[:2]]
    fail_at(replicas[0], steps_per_epoch(replicas[0]) + 3, KeyboardInterrupt())  # mid epoch 2
    done = {}
    dirs = [tmp_path / "0", tmp_path / "1"]
    with pytest.raises(KeyboardInterrupt):
        train_stack(replicas, dirs, ["job 0", "job 1"], lambda i, s: done.setdefault(i, s), EXACT)
    assert not done  # as with the basic launcher, Ctrl-C ends jobs without on_job_end
    for i, folder in enumerate(dirs):
        summary = runs.read_summary(folder)
        assert summary["status"] == runs.INTERRUPTED and summary["epochs_run"] == 1
        assert len(read_rows(folder / runs.METRICS)) == 1
        last = torch.load(runs.last_checkpoint(folder), weights_only=True)
        assert last["epoch"] == 1 and last["step"] == steps_per_epoch(replicas[i])
        # resumed alone, it ends exactly as the run that was never interrupted
        resumed = cfgs[i].copy()
        resumed.resume = str(folder)
        run(resumed, folder)
        assert_same_csv(folder / runs.METRICS, solo[i] / runs.METRICS)
        assert runs.read_summary(folder)["test_acc"] == pytest.approx(
            runs.read_summary(solo[i])["test_acc"], rel=1e-5
        )


def test_sigterm_ends_the_stack_after_the_epoch_it_arrived_in(cfgs, solo, tmp_path):
    """A scheduler's SIGTERM mid epoch 2: every replica logs epoch 2 whole, then stops (143)."""
    import signal

    from dlrun.errors import Interrupted

    replicas = [build_replica(cfg) for cfg in cfgs[:2]]
    signal_at(replicas[1], steps_per_epoch(replicas[1]) + 3, signal.SIGTERM)
    dirs = [tmp_path / "0", tmp_path / "1"]
    with pytest.raises(Interrupted) as stopped:
        train_stack(replicas, dirs, ["job 0", "job 1"], lambda i, s: None, EXACT)
    assert stopped.value.exit_code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone again
    for i, folder in enumerate(dirs):
        summary = runs.read_summary(folder)
        assert summary["status"] == runs.INTERRUPTED and summary["epochs_run"] == 2
        assert [r["epoch"] for r in read_rows(folder / runs.METRICS)] == ["1", "2"]
        assert_same_csv(folder / runs.METRICS, solo[i] / runs.METRICS, rows=2)


def test_a_stack_stopped_by_a_signal_resumes_as_one_stack_and_ends_as_its_solo_runs(
    cfgs, solo, tmp_path
):
    """SLURM's warning mid epoch 2 (a requeued task): both replicas stop after epoch 2, then
    resume together from their own last.pt, and end exactly as the runs never interrupted."""
    import signal

    from dlrun.errors import Interrupted
    from dlrun.sweeps.replicas import resume_replica

    replicas = [build_replica(cfg) for cfg in cfgs[:2]]
    signal_at(replicas[1], steps_per_epoch(replicas[1]) + 3, signal.SIGUSR2)
    dirs = [tmp_path / "0", tmp_path / "1"]
    with pytest.raises(Interrupted):
        train_stack(replicas, dirs, ["job 0", "job 1"], lambda i, s: None, EXACT)
    previous = [runs.read_summary(folder) for folder in dirs]
    assert [p["epochs_run"] for p in previous] == [2, 2]

    again = [build_replica(cfg) for cfg in cfgs[:2]]
    for replica, folder in zip(again, dirs):
        resume_replica(replica, folder)
    assert [r.state.epoch for r in again] == [2, 2]
    done = {}
    train_stack(again, dirs, ["job 0", "job 1"], lambda i, s: done.setdefault(i, s), EXACT,
                previous=previous)  # fmt: skip
    for i, folder in enumerate(dirs):
        assert done[i] == runs.read_summary(folder)
        assert [r["from_epoch"] for r in done[i]["resumes"]] == [2]
        assert (folder / runs.CONFIG).read_text() == (solo[i] / runs.CONFIG).read_text()
        assert_same_csv(folder / runs.METRICS, solo[i] / runs.METRICS)  # one continuous run
        assert_same_csv(folder / runs.LAYERS, solo[i] / runs.LAYERS)
        theirs = runs.read_summary(solo[i])
        assert set(done[i]) == set(theirs) | {"resumes"}
        for k, v in theirs.items():
            if k not in TIMES:
                assert done[i][k] == (pytest.approx(v, rel=1e-5) if isinstance(v, float) else v), k
        x = torch.load(runs.last_checkpoint(folder), weights_only=True)
        y = torch.load(runs.last_checkpoint(solo[i]), weights_only=True)
        assert torch.equal(x["rng"]["torch"], y["rng"]["torch"])  # the dropout stream went on
        for k, v in y["model"].items():
            torch.testing.assert_close(x["model"][k], v, rtol=1e-5, atol=1e-6)


def test_a_replica_that_raises_fails_alone_and_the_others_finish(cfgs, solo, tmp_path):
    replicas = [build_replica(cfg) for cfg in cfgs]
    fail_at(replicas[1], steps_per_epoch(replicas[1]) + 2, RuntimeError("boom"))
    done = {}
    dirs = [tmp_path / str(i) for i in range(3)]
    train_stack(replicas, dirs, ["a", "b", "c"], lambda i, s: done.setdefault(i, s), EXACT)
    failed = runs.read_summary(dirs[1])
    assert failed["status"] == runs.FAILED and failed["error"] == "RuntimeError: boom"
    assert failed["epochs_run"] == 1 and done[1] == failed
    assert torch.load(runs.last_checkpoint(dirs[1]), weights_only=True)["epoch"] == 1
    for i in (0, 2):
        assert_same_folder(dirs[i], solo[i])


def test_an_error_in_the_stacked_step_fails_every_unfinished_replica(cfgs, tmp_path, monkeypatch):
    forward, calls = StackedNet.forward, [0]
    replicas = [build_replica(cfg) for cfg in cfgs[:2]]
    n = steps_per_epoch(replicas[0])

    def failing(self, x, train=True):
        calls[0] += 1
        if calls[0] == n + 1:
            raise RuntimeError("out of memory")
        return forward(self, x, train)

    monkeypatch.setattr(StackedNet, "forward", failing)
    done = {}
    dirs = [tmp_path / "0", tmp_path / "1"]
    train_stack(replicas, dirs, ["a", "b"], lambda i, s: done.setdefault(i, s))
    for i in (0, 1):
        assert done[i]["status"] == runs.FAILED and done[i]["epochs_run"] == 1
        assert done[i]["error"] == "RuntimeError: out of memory"
        assert json.loads((dirs[i] / runs.SUMMARY).read_text()) == done[i]


def test_stack_limit_is_half_the_available_memory_over_a_replicas_share(cfgs, monkeypatch):
    replica = build_replica(cfgs[0])
    width, n_in, n_out, batch = 32, 40, 10, cfgs[0].trainer.batch_size
    params = 4 * (n_in * width + width + width * width + width + width * n_out + n_out)
    data = replica.data
    train = data.train.x.nbytes + data.train.y.nbytes
    other = data.val.x.nbytes + data.val.y.nbytes + data.test.x.nbytes + data.test.y.nbytes
    expected = 13 * params + 3 * train + other + 4 * batch * (width + width + n_out) * 4
    assert replica_bytes(replica) == expected
    monkeypatch.setattr(replicas, "available_bytes", lambda device: 7 * expected)
    assert stack_limit(replica) == 3  # half of 7 replicas' worth
    assert stack_limit(replica, max_replicas=2) == 2
    monkeypatch.setattr(replicas, "available_bytes", lambda device: expected // 10)
    assert stack_limit(replica) == 1  # never below one: a job too large still runs


def test_a_stack_killed_mid_run_leaves_every_replica_a_last_pt_to_resume_from(
    cfgs, solo, tmp_path, monkeypatch
):
    # reproduction 4 of issue 20: no replica had checkpoints/ until the stack ended, so a
    # kill -9 after epoch 3 lost every epoch. What a kill -9 leaves is the folder as it is
    # at that moment: copied here right after each replica's epoch 2.
    import shutil

    from dlrun.sweeps import batched

    logged = batched.Folder.epoch

    def epoch_then_copy(self, row, layers):
        logged(self, row, layers)
        if row is not None and row["epoch"] == 2:
            shutil.copytree(self.run_dir, tmp_path / "killed" / self.run_dir.name)

    monkeypatch.setattr(batched.Folder, "epoch", epoch_then_copy)
    # every epoch: no stretching of the interval to keep saving under 2% of the run
    monkeypatch.setattr(batched.Checkpointer, "SHARE", 1e9)
    stacked = []
    for cfg in cfgs[:2]:
        cfg = cfg.copy()
        cfg.trainer.checkpoint_every_s = 0  # every epoch, as for a solo run
        stacked.append(cfg)
    replicas = [build_replica(cfg) for cfg in stacked]
    dirs = [tmp_path / "0", tmp_path / "1"]
    train_stack(replicas, dirs, ["job 0", "job 1"], lambda i, s: None, EXACT)
    for i in range(2):
        killed = tmp_path / "killed" / str(i)
        assert runs.read_summary(killed)["status"] == runs.RUNNING  # as kill -9 leaves it
        last = torch.load(runs.last_checkpoint(killed), weights_only=True)
        assert last["epoch"] == 2 and last["step"] == 2 * steps_per_epoch(replicas[i])
        # resumed alone, it ends exactly as the run that was never stopped
        from dlrun.run.resume import resume_run

        resume_run(killed)
        assert_same_csv(killed / runs.METRICS, solo[i] / runs.METRICS)
        assert runs.read_summary(killed)["test_acc"] == pytest.approx(
            runs.read_summary(solo[i])["test_acc"], rel=1e-5
        )
