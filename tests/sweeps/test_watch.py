"""The driver's lines for jobs that print elsewhere (dlrun/sweeps/watch.py)."""

from __future__ import annotations

import json

from dlrun.folders.sweep_index import record_job, record_sweep
from dlrun.sweeps.watch import Watch


def start(sweep, num, seed):
    run_dir = sweep / f"{num}_seed={seed}"
    run_dir.mkdir()
    record_job(sweep, num, {"seed": str(seed), "trainer.epochs": "2"}, run_dir)
    return run_dir


def end(run_dir, status, **extra):
    (run_dir / "summary.json").write_text(json.dumps({"status": status, **extra}))


def test_the_watch_prints_each_start_and_each_end_once(tmp_path, capsys):
    record_sweep(tmp_path, ["seed"], 3)
    watch = Watch(tmp_path, 3, ["seed"])
    assert watch.poll() == []
    first = start(tmp_path, 0, 0)
    second = start(tmp_path, 1, 1)
    assert watch.poll() == ["dlrun: job #0 (1 of 3) seed=0", "dlrun: job #1 (2 of 3) seed=1"]
    end(first, "running")
    assert watch.poll() == []  # still training: nothing new
    end(first, "completed")
    end(second, "failed", error="CUDA out of memory")
    assert watch.poll() == [
        "dlrun: job #0 completed  0_seed=0",
        "dlrun: job #1 failed: CUDA out of memory  1_seed=1",
    ]
    start(tmp_path, 2, 2)
    (line,) = watch.poll()  # two of three ended: the rate so far gives the time left
    assert line.startswith("dlrun: job #2 (3 of 3) seed=2, about ") and line.endswith(
        " left in the sweep"
    )
    assert watch.poll() == []
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "dlrun: job #0 (1 of 3) seed=0" and len(printed) == 5


def test_the_watch_thread_stops_with_the_sweep(tmp_path, capsys):
    record_sweep(tmp_path, ["seed"], 1)
    watch = Watch(tmp_path, 1, ["seed"]).start()
    end(start(tmp_path, 0, 0), "completed")
    watch.stop()  # a last look: the job that ended just before is printed
    assert not watch._thread.is_alive()
    out = capsys.readouterr().out
    assert out.count("dlrun: job #0 (1 of 1) seed=0") == 1
    assert out.count("dlrun: job #0 completed  0_seed=0") == 1
