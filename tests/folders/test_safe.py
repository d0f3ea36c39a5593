"""Hostile folders: every file dlrun reads from a run or sweep folder, as untrusted input (dlrun/folders/safe.py).

The table plants one hostile file in a finished run folder, then reads it the
three ways dlrun does: `dlrun train resume=` (exit 2, one line naming the
file, the folder unchanged), `dlrun report` (that run skipped with the reason,
the others reported) and the sweep index (the job's row without its summary).
Nothing may hang (a FIFO is opened without blocking), allocate the file's
claimed size, follow a link out of the folder, or print a traceback.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from dlrun.cli.main import main
from dlrun.errors import UnusableFile, WriteError
from dlrun.folders import runs, safe
from dlrun.results.load import load_runs

from synthetic_runs import write_classification_run

SECRET = "token-9f8e7d"  # in a file outside the folder: it must never be printed or read


def link_out(path: Path) -> None:
    outside = path.parent.parent / "outside.txt"
    outside.write_text(json.dumps({"status": SECRET}) + "\n")
    path.unlink(missing_ok=True)
    path.symlink_to(outside)


def fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def huge(path: Path) -> None:
    with open(path, "wb") as f:  # sparse: the size is claimed, not written
        f.truncate(safe.TEXT_CAP + 1)


def deep_json(path: Path) -> None:
    path.write_text("[" * 100_000 + "]" * 100_000)


def laughs(path: Path) -> None:
    # the "billion laughs": 9 levels of 9 aliases, 9**9 strings once expanded
    lines = ['a0: &a0 "lol"']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path.write_text("\n".join(lines) + "\n")


def write(content: str | bytes):
    def plant(path: Path) -> None:
        path.unlink(missing_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)

    return plant


def dev_zero(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/zero")


# (file, how it is made hostile, what the one line says)
HOSTILE = [
    (runs.SUMMARY, link_out, "link to outside its folder"),
    (runs.SUMMARY, fifo, "is a FIFO, not a regular file"),
    (runs.SUMMARY, dev_zero, "link to outside its folder"),
    (runs.SUMMARY, huge, "more than dlrun reads"),
    (runs.SUMMARY, deep_json, "nests deeper than"),
    (runs.SUMMARY, write('{"status": 1' + "0" * 5000 + "}"), "not valid JSON"),
    (runs.SUMMARY, write(b'{"status": "\xff"}'), "not UTF-8"),
    (runs.CONFIG, link_out, "link to outside its folder"),
    (runs.CONFIG, fifo, "is a FIFO"),
    (runs.CONFIG, huge, "more than dlrun reads"),
    (runs.CONFIG, laughs, "anchors or aliases"),
    (runs.CONFIG, write("a: " + "[" * 100 + "]" * 100 + "\n"), "nests deeper than"),
    (runs.CONFIG, write("a: " + "[" * 50_000 + "]" * 50_000 + "\n"), "not valid YAML"),
    (runs.CONFIG, write("a: !!python/object/apply:os.system ['true']\n"), "not valid YAML"),
    (runs.CONFIG, write("? [1, 2]\n: 3\n"), "not valid YAML"),
    (runs.CONFIG, write("1: 2\n"), "key that is not text"),
    (runs.CONFIG, write("a: 2001-12-14\n"), "holds a date"),
]


def finished_run(folder: Path) -> Path:
    """A run dlrun could resume: a real config.yaml and last.pt, from a 1-epoch run."""
    code = main(
        [
            "train",
            "data=moons",
            "data.n_samples=200",
            "model.width=4",
            "trainer.epochs=1",
            "trainer.progress=false",
            "trainer.threads=1",
            "device=cpu",
            f"hydra.run.dir={folder}",
        ]
    )
    assert code == 0
    return folder


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return finished_run(tmp_path_factory.mktemp("template") / "run")


def copy_run(template: Path, to: Path) -> Path:
    shutil.copytree(template, to, symlinks=True)
    return to


def digest(folder: Path) -> dict[str, str]:
    """Every entry of the folder: a file's hash, a link's target, a FIFO's kind."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path)] = "-> " + os.readlink(path)
        elif path.is_file():
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[str(path)] = "dir" if path.is_dir() else "special"
    return found


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and SECRET not in err
    lines = [line for line in err.splitlines() if line.startswith("dlrun: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("name", "plant", "says"), HOSTILE, ids=[f"{h[0]}-{h[2]}" for h in HOSTILE]
)
def test_resume_refuses_a_hostile_file_in_one_line_and_changes_nothing(
    template, tmp_path, capsys, name, plant, says
):
    folder = copy_run(template, tmp_path / "run")
    plant(folder / name)
    before = digest(tmp_path)
    assert main(["train", f"resume={folder}", "trainer.epochs=2"]) == 2
    line = one_line_error(capsys)
    assert says in line and name in line
    assert digest(tmp_path) == before


@pytest.mark.parametrize(
    ("name", "plant", "says"), HOSTILE, ids=[f"{h[0]}-{h[2]}" for h in HOSTILE]
)
def test_the_report_skips_a_hostile_run_with_its_reason(tmp_path, name, plant, says):
    write_classification_run(tmp_path / "runs" / "0_good", {"seed": 0}, epochs=3)
    bad = write_classification_run(tmp_path / "runs" / "1_bad", {"seed": 1}, epochs=3)
    plant(bad / name)
    loaded = load_runs([tmp_path / "runs"])
    assert list(loaded.table.index) == ["0_good"]
    [(run, reason)] = loaded.skipped
    assert run == "1_bad" and says in reason and SECRET not in reason


@pytest.mark.parametrize(
    "plant", [link_out, fifo, huge, deep_json], ids=["link", "fifo", "huge", "deep"]
)
def test_a_sweep_index_reads_a_hostile_summary_as_missing(tmp_path, plant):
    from dlrun.folders import sweep_index

    sweep_index.record_sweep(tmp_path, ["seed"])
    job = write_classification_run(tmp_path / "0_seed=0", {"seed": 0}, epochs=3)
    sweep_index.record_job(tmp_path, 0, {"seed": "0"}, job)
    plant(job / runs.SUMMARY)
    _, [row] = sweep_index.index_rows(tmp_path, final=runs.KILLED)
    assert row["status"] == runs.KILLED and SECRET not in json.dumps(row, default=str)


@pytest.mark.parametrize(
    "record",
    [
        {"job": 0, "overrides": {"seed": "0"}, "run_dir": "../outside"},
        {"job": 0, "overrides": {"seed": "0"}, "run_dir": "/etc"},
        {"job": "0", "overrides": {"seed": "0"}, "run_dir": "0_seed=0"},
        {"job": 0, "overrides": ["seed=0"], "run_dir": "0_seed=0"},
        [1, 2, 3],
    ],
    ids=["dotdot", "absolute", "job-as-text", "overrides-as-list", "not-an-object"],
)
def test_a_job_record_that_dlrun_did_not_write_is_left_out(tmp_path, record):
    from dlrun.folders import sweep_index

    outside = write_classification_run(tmp_path / "outside", {"seed": 0}, epochs=3)
    (outside / runs.SUMMARY).write_text(json.dumps({"status": SECRET}))
    sweep = tmp_path / "sweep"
    sweep_index.record_sweep(sweep, ["seed"])
    jobs = safe.make_dir(sweep / runs.SWEEP_STATE / "jobs")
    runs.write_json(jobs / "0.json", record)  # type: ignore[arg-type]
    assert sweep_index.index_rows(sweep)[1] == []


def test_a_checkpoint_that_is_a_zip_bomb_or_a_fifo_is_refused(tmp_path):
    from dlrun.run.checkpoints import load_checkpoint

    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * 10_000_000)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(UnusableFile, match="compressed entries"):
        load_checkpoint(bomb)
    fifo(tmp_path / "last.pt")
    with pytest.raises(UnusableFile, match="FIFO"):
        load_checkpoint(tmp_path / "last.pt")


def test_a_link_inside_the_folder_is_read_and_one_out_of_it_is_not(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "real.json").write_text('{"a": 1}')
    (tmp_path / "run" / "inner.json").symlink_to("real.json")
    assert safe.read_json(tmp_path / "run" / "inner.json", root=tmp_path / "run") == {"a": 1}
    with pytest.raises(UnusableFile, match="link to outside"):
        safe.read_json(tmp_path / "run" / "inner.json", root=tmp_path / "run" / "sub")


# --- writing: never through a link ------------------------------------------------------


def test_make_dir_refuses_a_link_and_open_log_refuses_a_link_or_a_fifo(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "checkpoints").symlink_to(target)
    with pytest.raises(WriteError, match="symbolic link"):
        safe.make_dir(tmp_path / "checkpoints")
    (tmp_path / "run.log").symlink_to(target / "victim.txt")
    with pytest.raises(WriteError, match="symbolic link"):
        safe.open_log(tmp_path / "run.log")
    fifo(tmp_path / "metrics.csv")
    with pytest.raises(WriteError) as e:
        safe.open_log(tmp_path / "metrics.csv", append=False)
    assert e.value.cause.errno in (errno.ENXIO, errno.EINVAL)
    assert list(target.iterdir()) == []


def test_an_atomic_write_replaces_a_link_and_never_writes_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / runs.SUMMARY).symlink_to(victim)
    (tmp_path / "run" / f".{runs.SUMMARY}.{os.getpid()}.tmp").symlink_to(victim)  # planted
    runs.write_json(tmp_path / "run" / runs.SUMMARY, {"status": "completed"})
    assert victim.read_text() == "keep me\n"
    assert not (tmp_path / "run" / runs.SUMMARY).is_symlink()
    assert json.loads((tmp_path / "run" / runs.SUMMARY).read_text()) == {"status": "completed"}


@pytest.mark.parametrize(
    "name", [runs.CHECKPOINTS, runs.METRICS, runs.LAYERS, runs.RUN_LOG, runs.LOCK, runs.SUMMARY]
)
def test_a_resume_never_writes_through_a_link_in_the_folder(template, tmp_path, capsys, name):
    # reproduction 2 of issue 20: checkpoints/ as a link had last.pt and best.pt rewritten there
    folder = copy_run(template, tmp_path / "run")
    target = tmp_path / "elsewhere"
    if (folder / name).is_dir():
        (folder / name).rename(target)
    else:
        target.mkdir()
        (folder / name).rename(target / name) if (folder / name).exists() else None
        target = target / name
    (folder / name).symlink_to(target)
    before = digest(tmp_path)
    assert main(["train", f"resume={folder}", "trainer.epochs=2"]) == 2
    line = one_line_error(capsys)
    assert name in line and ("symbolic link" in line or "link to outside" in line)
    assert digest(tmp_path) == before


@pytest.mark.parametrize("name", [runs.RUN_LOG, runs.LOCK, runs.METRICS, runs.CHECKPOINTS])
def test_a_resume_refuses_a_folder_where_a_file_goes_or_a_file_where_a_folder_goes(
    template, tmp_path, capsys, name
):
    folder = copy_run(template, tmp_path / "run")
    path = folder / name
    if path.is_dir():
        shutil.rmtree(path)
        path.write_text("not a folder\n")
    else:
        path.unlink(missing_ok=True)
        path.mkdir()
    before = digest(tmp_path)
    assert main(["train", f"resume={folder}", "trainer.epochs=2"]) == 2
    line = one_line_error(capsys)
    reasons = ("not a regular file", "not a folder", "nothing to resume")
    assert name in line and any(reason in line for reason in reasons)
    assert digest(tmp_path) == before


def test_a_report_never_writes_through_a_link_named_report(template, tmp_path, capsys):
    folder = copy_run(template, tmp_path / "run")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "index.html").write_text("someone else's page\n")
    (folder / "report").symlink_to(target)
    before = digest(tmp_path)
    assert main(["report", str(folder)]) == 2
    line = one_line_error(capsys)
    assert "symbolic link" in line and "--out" in line
    assert digest(tmp_path) == before


@pytest.mark.parametrize("name", [runs.SWEEP_STATE, "0_seed=0", runs.SWEEP_INDEX])
def test_a_sweep_never_writes_through_a_link_in_its_folder(tmp_path, capsys, name):
    victim = tmp_path / "elsewhere"
    victim.mkdir()
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / name).symlink_to(victim)
    before = digest(victim)
    args = ["train", "-m", "seed=0,1", "data=moons", "data.n_samples=200", "trainer.epochs=1"]
    args += ["trainer.progress=false", "device=cpu", f"hydra.sweep.dir={sweep}"]
    assert main(args) == 2
    line = one_line_error(capsys)
    assert name in line and "symbolic link" in line
    assert digest(victim) == before
    assert [p for p in sweep.glob("[0-9]*_*") if not p.is_symlink()] == []
