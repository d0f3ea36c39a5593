"""The command line as a user meets it: subprocesses in a fresh working directory."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from dlrun.config.choices import CHOICES

ROOT = Path(__file__).resolve().parents[2]
QUICK = [
    "device=cpu",
    "trainer.progress=false",
    "trainer.epochs=2",
    "data.n_samples=600",
    "model.width=16",
]


def dlrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "dlrun", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def run_folders(cwd: Path, kind: str = "runs") -> list[Path]:
    return sorted(p.parent for p in (cwd / "outputs" / kind).rglob("summary.json"))


def test_help_is_fast_and_does_not_import_torch():
    code = (
        "import sys, dlrun; from dlrun.cli.main import main; main(['--help']); "
        "assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "dlrun <command>" in out.stdout


def test_unknown_command_is_one_line_with_the_command_meant(tmp_path):
    out = dlrun("trian", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("dlrun: error: unknown command 'trian'; did you mean train? (")
    assert len(out.stderr.splitlines()) == 1  # no usage dump: dlrun --help has it


def test_a_target_that_cannot_be_imported_is_one_line_and_no_hydra_log(tmp_path):
    target = ["model=custom", "model._target_=nopkg_zz.nets.MyNet"]
    out = dlrun("train", *QUICK[:-1], *target, cwd=tmp_path)  # QUICK[-1] is model.width
    assert out.returncode == 2 and out.stdout == "", out.stdout
    assert out.stderr.splitlines() == [
        "dlrun: error: model._target_=nopkg_zz.nets.MyNet: cannot import it: no module named "
        "'nopkg_zz' (install it, or run dlrun from the folder that holds nopkg_zz/, or add that "
        "folder to PYTHONPATH)"
    ]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optimizer=adamm", ["adamm", "adam", "sgd"]),
        ("trainer.epochs=abc", ["trainer.epochs", "abc"]),
        ("model.widht=3", ["widht"]),
        ("optimizer.lr=-1", ["optimizer.lr", "positive"]),
        ("model=cnn2d", ["cnn2d", "digits"]),
        ("trainer.threads=0", ["trainer.threads", "at least 1"]),
        ("trainer.epoch=3", ["trainer.epoch", "did you mean trainer.epochs?"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_no_run_folder(tmp_path, override, expected):
    out = dlrun("train", *QUICK, override, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlrun: error:"), out.stderr
    for word in expected:
        assert word in lines[0]
    assert "Traceback" not in out.stdout + out.stderr
    assert run_folders(tmp_path) == [] and not list((tmp_path / "outputs" / "runs").rglob("*.yaml"))


@pytest.mark.parametrize(
    ("swept", "expected"),
    [
        ("trainer.shufle=true,false", "trainer.shufle: no such key; did you mean trainer.shuffle?"),
        ("optimizer=adm,sgd", "unknown optimizer 'adm'; did you mean adam?"),
        ("model.width=0,16", "model.width=0 must be at least 1"),
        ("trainer.epochs=abc,2", "trainer.epochs"),
    ],
)
def test_a_swept_value_no_job_can_use_is_refused_before_the_sweep_folder(tmp_path, swept, expected):
    out = dlrun("train", "-m", *QUICK, "seed=0,1", swept, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlrun: error:") and expected in lines[0]
    assert out.stdout == "" and not (tmp_path / "outputs").exists()  # no sweep folder at all


def test_train_writes_a_run_folder_under_the_working_directory(tmp_path):
    out = dlrun("train", *QUICK, "name=first", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    again = dlrun("train", *QUICK, "name=first", cwd=tmp_path)  # same second, same name
    assert again.returncode == 0, again.stderr
    folders = run_folders(tmp_path)
    assert len(folders) == 2 and folders[0] != folders[1]
    for folder in folders:
        assert folder.name.split("_")[1] == "first"
        assert json.loads((folder / "summary.json").read_text())["status"] == "completed"
        assert (folder / ".hydra" / "overrides.yaml").is_file()


def test_multirun_leaves_one_folder_per_job(tmp_path):
    # flags anywhere, as Hydra users type them: -m last
    out = dlrun("train", "optimizer=sgd,adam", *QUICK, "-m", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    folders = run_folders(tmp_path, "sweeps")
    assert len(folders) == 2
    optimizers = {json.loads((f / "summary.json").read_text())["status"]: f for f in folders}
    assert set(optimizers) == {"completed"}
    (folder,) = (tmp_path / "outputs" / "sweeps").glob("*/*")
    assert (
        out.stdout.strip().splitlines()[-1]
        == f"dlrun: next: dlrun report outputs/sweeps/{folder.parent.name}/{folder.name}"
    )
    assert {"optimizer=sgd", "optimizer=adam"} <= {
        part for f in folders for part in f.name.split(",")
    } | {f.name.split("_", 1)[1].split(",")[0] for f in folders}
    # no line of Hydra's own (`Launching 2 jobs locally`, `#0 : optimizer=sgd ...`): dlrun's,
    # with the job's swept value as typed
    assert f"dlrun: a sweep of 2 jobs in outputs/sweeps/{folder.parent.name}/{folder.name}\n" in (
        out.stdout
    )
    assert "Launching" not in out.stdout and "#0 :" not in out.stdout and "HYDRA" not in out.stdout
    assert "dlrun: job #0 (1 of 2) optimizer=sgd\n" in out.stdout  # no time left known yet
    assert "dlrun: job #1 (2 of 2) optimizer=adam, about " in out.stdout
    assert " left in the sweep" in out.stdout


def test_cfg_job_prints_the_composed_config(tmp_path):
    out = dlrun("train", "optimizer=momentum", "--cfg", "job", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "momentum: 0.9" in out.stdout and "name: momentum" in out.stdout
    assert not (tmp_path / "outputs").exists()


def test_wheel_carries_conf_and_experiments(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("dlrun-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dlrun/_data/conf/train.yaml" in names
    assert any(n.startswith("dlrun/_data/experiments/") for n in names)
    # hydra/launcher=batched: a plugin in Hydra's namespace package, found from the wheel alone
    assert "hydra_plugins/dlrun_batched/batched_launcher.py" in names
    assert "hydra_plugins/__init__.py" not in names  # the namespace is shared with other plugins
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what pip installs for a pure-Python wheel
    check = (
        "import sys; sys.path = [p for p in sys.path if p != sys.argv[1]]\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.core.config_store import ConfigStore\n"
        "from hydra.plugins.launcher import Launcher\n"
        "found = [c for c in Plugins.instance().discover(Launcher) if c.__name__ == 'BatchedLauncher']\n"
        "import hydra_plugins.dlrun_batched as plugin, dlrun\n"
        "ConfigStore.instance().load('hydra/launcher/batched.yaml')\n"
        "print(len(found), plugin.__file__, dlrun.__file__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", check, str(ROOT)], capture_output=True, text=True, env=env, cwd=site
    )
    assert out.returncode == 0, out.stderr[-2000:]
    count, plugin, package = out.stdout.split()
    assert count == "1" and plugin.startswith(str(site)) and package.startswith(str(site))


def test_dlrun_list_shows_every_choice(capsys, monkeypatch):
    from dlrun.cli.main import main

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for group in ("init", "optimizer", "schedule", "data/augment"):
        assert group in out
        for choice, (description, _) in CHOICES[group].items():
            assert choice in out and description in out, (group, choice)
            assert description and "\n" not in description


@pytest.mark.parametrize("typed", ["optimizer", "optimizers"])
def test_dlrun_list_of_a_group_shows_that_group_alone(capsys, monkeypatch, typed):
    from dlrun.cli.main import main

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["list", typed]) == 0
    out = capsys.readouterr().out
    for choice, (description, _) in CHOICES["optimizer"].items():
        assert description in out, choice
    assert not any(description in out for description, _ in CHOICES["init"].values())


def test_dlrun_list_of_a_misspelt_group_says_which_it_meant(capsys):
    from dlrun.cli.main import main

    assert main(["list", "optimzers"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean optimizer?" in err


def test_dlrun_list_shows_every_launcher_and_sweeper_hydra_offers(capsys, monkeypatch):
    from dlrun.cli.catalog import LAUNCHERS, SWEEPERS
    from dlrun.cli.main import main
    from dlrun.config.compose import compose

    offered = {}
    for group in ("hydra/launcher", "hydra/sweeper"):  # Hydra's own list, from its error
        with pytest.raises(Exception) as e:
            compose([f"{group}=none_such"])
        offered[group] = set(e.value.options)
    assert set(LAUNCHERS) == offered["hydra/launcher"]
    assert set(SWEEPERS) == offered["hydra/sweeper"]
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["list", "launchers"]) == 0
    out = capsys.readouterr().out
    for choice, description in [*LAUNCHERS.items(), *SWEEPERS.items()]:
        assert choice in out and description in out


@pytest.mark.parametrize(
    "override, names",
    [
        ("model.dropout=1.5", "model.dropout"),
        ("optimizer.lr=-1", "optimizer.lr"),
        ("init=glorious", "glorious"),
    ],
)
def test_bad_values_fail_with_one_line_and_exit_2(tmp_path, override, names):
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [
        sys.executable,
        "-m",
        "dlrun",
        "train",
        "data=moons",
        "device=cpu",
        "trainer.progress=false",
        override,
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlrun: error:") and names in lines[0], (
        proc.stderr
    )
    assert not list(tmp_path.rglob("summary.json"))  # no run folder left behind


def test_train_to_a_file_prints_one_line_per_epoch_as_it_goes(tmp_path):
    """`dlrun train > log.txt`: each epoch's line is in the file while the run still trains."""
    log = tmp_path / "log.txt"
    args = [*QUICK, "trainer.progress=true", "trainer.epochs=100000"]
    args += ["trainer.early_stopping.patience=null", "data.n_samples=300"]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dlrun", "train", *args],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        try:
            deadline = time.monotonic() + 240
            # epoch numbers are right-aligned to the width of the planned count
            while (
                not re.search(r"^epoch +3/", log.read_text(), re.M) and time.monotonic() < deadline
            ):
                assert proc.poll() is None, log.read_text()
                time.sleep(0.2)
            assert proc.poll() is None  # still training: the lines were flushed as they came
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    from dlrun.run.progress import epoch_line

    text = log.read_text()
    assert "\x1b" not in text and "\r" not in text  # no bar, no colours
    epochs = [line for line in text.splitlines() if line.startswith("epoch ")]
    (folder,) = run_folders(tmp_path)
    with open(folder / "metrics.csv", newline="") as f:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    assert len(epochs) >= 3
    for line, row in zip(epochs, rows):  # one line per metrics.csv row, with its numbers
        assert line.startswith(epoch_line(row | {"epoch": int(row["epoch"])}, 100000))
        assert " eta " in line  # the time remaining, in a log too
    kept = (folder / "run.log").read_text().splitlines()
    assert [line for line in kept if line.startswith("epoch ")][:3] == epochs[:3]
    assert json.loads((folder / "summary.json").read_text())["status"] == "interrupted"


def test_completion_offers_subcommands_then_hydra_keys_then_paths(tmp_path):
    def complete(line: str) -> list[str]:
        env = {**os.environ, "COMP_LINE": line, "COMP_POINT": str(len(line))}
        out = subprocess.run(
            [sys.executable, "-m", "dlrun", "-sc", "query=bash"],
            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0 and out.stderr == "", out.stderr
        return out.stdout.split()

    assert complete("dlrun t") == ["train"]
    assert complete("dlrun ") == ["train", "report", "runs", "export", "list", "gradcheck", "check"]
    keys = complete("dlrun train tr")
    assert "trainer." in keys and "transfer." in keys
    assert "optimizer=adam" in complete("dlrun train optimizer=")
    assert complete("dlrun report ") == []  # empty: the shell completes paths itself
    assert complete("dlrun export ") == ["tensorboard", "mlflow"]
    assert "init_symmetry" in complete("dlrun check ") and complete("dlrun check init") == [
        "init_symmetry"
    ]
    assert complete("dlrun check init_symmetry q") == ["quick=true"]
    assert complete("dlrun train experiment=init_s") == ["experiment=init_symmetry"]
    run = tmp_path / "outputs" / "runs" / "2026-12-01" / "12-00-00_mlp"
    run.mkdir(parents=True)
    assert complete("dlrun train resume=outputs/") == ["resume=outputs/runs/"]
    assert complete("dlrun train resume=outputs/runs/2026-12-01/") == [
        f"resume={run.relative_to(tmp_path)}/"
    ]


def test_completion_answers_from_the_key_list_without_composing():
    # Hydra's completion composes the config in the new process a TAB starts (seconds);
    # dlrun's reads the schema's keys: no Hydra imported, so no composition
    code = (
        "import os, sys; os.environ['COMP_LINE'] = 'dlrun train trainer.ep'; "
        "from dlrun.cli.main import main; main(['-sc', 'query=bash']); "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'hydra'], 'hydra imported'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["trainer.epochs="]


def test_train_help_describes_each_key_from_the_schema(capsys, monkeypatch):
    from dlrun.cli.main import main

    assert main(["train", "model=custom", "--help"]) == 0
    out = capsys.readouterr().out
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if "#" in line}
    assert lines["epochs"].split("#")[1].strip() == "passes over the training set, at most"
    assert "learning rate" in lines["lr"] and "0.001" in lines["lr"]
    assert "dotted path of an nn.Module class" in lines["_target_"]  # model=custom's own key
    assert "patience" in out and "logger: csv, tensorboard, mlflow" in out


def test_a_closed_pipe_ends_quietly(tmp_path):
    # `dlrun runs | head -1`: the reader leaves early; the next write fails with
    # EPIPE, which must end the command quietly (exit 141), not in a traceback.
    from synthetic_runs import write_classification_run

    write_classification_run(tmp_path / "outputs" / "runs" / "a", epochs=3)
    code = (
        "import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1); "
        "sys.stdout = open(1, 'w', buffering=1); from dlrun.cli.main import main; "
        f"code = main(['runs', {str(tmp_path / 'outputs')!r}]); "
        "os.write(2, f'exit {code}'.encode())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.stderr == "exit 141", proc.stderr


def help_examples(text: str) -> list[list[str]]:
    """The example command lines of a help text: `dlrun ...` up to two spaces (a comment)."""
    import re

    lines = (line.strip() for line in text.splitlines())
    return [re.split(r"\s{2,}", line)[0].split()[1:] for line in lines if line.startswith("dlrun ")]


def test_every_help_example_works_as_printed(capsys, monkeypatch, tmp_path):
    """`dlrun --help`'s and `dlrun train --help`'s examples: composed, checked or run."""
    from omegaconf import OmegaConf

    from dlrun.claims.check import validate
    from dlrun.cli.argv import check_fixed, train_argv
    from dlrun.cli.main import USAGE, main
    from dlrun.config.compose import compose, parse_overrides
    from dlrun.paths import conf_dir

    from synthetic_runs import write_classification_run

    footer = OmegaConf.load(conf_dir() / "train.yaml").hydra.help.footer
    assert main(["train", "--help"]) == 0
    assert footer.strip() in capsys.readouterr().out  # the footer checked here is the one shown
    examples = help_examples(USAGE) + help_examples(footer)
    assert len(examples) >= 8
    monkeypatch.chdir(tmp_path)
    write_classification_run(tmp_path / "outputs" / "runs" / "a", epochs=3)
    for command, *args in examples:
        if command == "train" and "--help" in args:
            assert main([command, *args]) == 0
        elif command == "train":
            argv = train_argv(args)  # refuses what Hydra would run in a way nobody meant
            if "-m" in args:
                check_fixed(args)
            compose(
                [
                    o.input_line
                    for o in parse_overrides(argv[argv.count("-m") :])
                    if not o.is_sweep_override() and not o.is_hydra_override()
                ]
            )
        elif command == "check":
            assert validate(args[0], args[1:])
        else:  # dlrun report: the newest run under outputs/
            assert main([command, *args]) == 0, (command, args)
    assert (tmp_path / "outputs" / "runs" / "a" / "report" / "index.html").is_file()


def test_a_new_run_never_overwrites_a_run_folder(tmp_path, capsys):
    # reproduction 3 of issue 20: hydra.run.dir=<a completed run> exited 0 and replaced it
    import hashlib

    from dlrun.cli.main import main
    from dlrun.folders import runs

    quick = ["data=moons", "data.n_samples=200", "model.width=4", "trainer.epochs=1"]
    quick += ["trainer.progress=false", "trainer.threads=1", "device=cpu"]
    folder = tmp_path / "a run"
    assert main(["train", *quick, f"hydra.run.dir={folder}"]) == 0
    capsys.readouterr()

    def digest():
        return {
            str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }

    before = digest()
    assert main(["train", *quick, f"hydra.run.dir={folder}", "seed=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds a run (completed)" in err
    assert digest() == before
    # the command it suggests, pasted into a shell, continues the run
    command = err.split("continue it with: ", 1)[1].split(" (and", 1)[0]
    words = shlex.split(command)
    assert words[:2] == ["dlrun", "train"]
    assert main([*words[1:], "trainer.epochs=2"]) == 0
    assert runs.read_summary(folder)["epochs_run"] == 2
    # a folder whose run saved no epoch holds nothing to lose: a new run may take it
    (folder / runs.CHECKPOINTS / runs.LAST).unlink()
    runs.write_json(folder / runs.SUMMARY, {"status": runs.RUNNING})
    assert main(["train", *quick, f"hydra.run.dir={folder}", "seed=5"]) == 0


def test_a_sweep_job_folder_resumes_as_dlrun_names_it(make_cfg, tmp_path, capsys):
    from dlrun.cli.main import main
    from dlrun.folders import runs
    from dlrun.run.runner import run

    folder = tmp_path / "sweep" / "3_optimizer=adam,seed=1"
    run(make_cfg("data=moons", "data.n_samples=200", "trainer.epochs=1"), folder)
    line = f"dlrun train resume={shlex.quote(str(folder))} trainer.epochs=2"
    assert main(shlex.split(line)[1:]) == 0, capsys.readouterr().err
    assert runs.read_summary(folder)["epochs_run"] == 2
