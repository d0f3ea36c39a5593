"""Bad input, one clear line each: every key's range, the user's files, resume folders (dlrun/config/validate.py).

The table runs `dlrun train` in-process (dlrun.cli.main.main, Hydra included) in an
empty folder and checks, for each case: exit code 2, one line on stderr that
names the key or file, no traceback, and nothing left behind: no outputs/,
not even an empty date folder, and the resumed folder untouched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import shutil
from pathlib import Path

import pytest

from dlrun.cli.main import main
from dlrun.config import choices, validate
from dlrun.config import schema as config
from dlrun.config.compose import compose
from dlrun.folders import runs

QUICK = ["data=moons", "data.n_samples=400", "model.width=8", "trainer.epochs=2"]
QUICK += ["device=cpu", "trainer.progress=false", "trainer.threads=1"]


def schema_keys(cls: type, prefix: str = "") -> set[str]:
    keys = set()
    for f in dataclasses.fields(cls):
        if f.name == "defaults":
            continue
        kind = choices.SCHEMAS.get(f.name) or (
            f.default_factory if f.default_factory is not dataclasses.MISSING else None
        )
        if prefix == "data." and f.name == "augment":
            kind = config.AugmentConfig
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            keys |= schema_keys(kind, f"{prefix}{f.name}.")
        else:
            keys.add(f"{prefix}{f.name}")
    return keys


def test_every_schema_key_has_a_rule():
    # A key added to dlrun/config/schema.py needs its line in validate.RULES (None: its type is its range).
    assert set(validate.RULES) == schema_keys(config.TrainConfig)


def test_the_default_config_and_every_choice_pass():
    # Without Hydra: each choice's node (dlrun.config.schema) in the config of the defaults.
    from synthetic_runs import base_config

    assert validate.problems(compose([])) == []
    for group, names in choices.CHOICES.items():
        for choice in names:
            if (group, choice) in choices.OPEN:
                continue  # the user's own: a _target_ is needed
            cfg = base_config()
            node = choices.choice_node(group, choice)
            if group == "data":
                node |= {"path": __file__, "augment": cfg["data"]["augment"]}  # table, npz
            *parents, leaf = group.split("/")
            target = cfg
            for parent in parents:
                target = target[parent]
            target[leaf] = node
            assert validate.problems(cfg) == [], (group, choice)


def test_problems_name_the_key_and_value_and_count_the_rest():
    cfg = compose(["optimizer.lr=-1", "model.width=0"])
    assert validate.problems(cfg) == [
        "model.width=0 must be at least 1",
        "optimizer.lr=-1.0 must be positive",
    ]
    with pytest.raises(
        validate.ConfigError, match=r"^model.width=0 must be at least 1 \(and 1 more\)$"
    ):
        validate.check(cfg)


# --- files the cases read -------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A folder of hostile files and one real, resumable run folder."""
    import numpy as np

    d = tmp_path_factory.mktemp("files")
    rows = "\n".join(f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(60))
    (d / "good.csv").write_text("a,b,label\n" + rows + "\n")
    (d / "header.csv").write_text("a,b,label\n")
    (d / "inf.csv").write_text("a,b,label\n" + rows + "\n1,inf,0\n")
    (d / "nan_label.csv").write_text("a,b,label\n" + rows + "\n1,2,\n")
    (d / "nan_input.csv").write_text("a,b,label\n" + rows + "\n1,,0\n")
    (d / "one_class.csv").write_text(
        "a,b,label\n" + "\n".join(f"{i},{i * 2 % 7},1" for i in range(40))
    )
    (d / "constant.csv").write_text("a,c,label\n" + "\n".join(f"{i},5,{i % 2}" for i in range(40)))
    (d / "junk.parquet").write_bytes(b"PAR1 not really")
    (d / "binary.csv").write_bytes(b"\xff\xfe\x00\x01" * 50)
    np.savez(d / "no_y.npz", x=np.zeros((10, 2)))
    (d / "junk.npz").write_bytes(b"not a zip file")
    np.savez(d / "inf.npz", x=np.array([[1.0, np.inf]] * 20), y=np.arange(20) % 2)

    from dlrun.run.runner import run

    folder = d / "run"
    run(compose(QUICK), folder)
    for name in ("truncated", "crafted", "no_last"):
        copy = d / name
        shutil.copytree(folder, copy)
        target = runs.last_checkpoint(copy)
        if name == "truncated":
            target.write_bytes(target.read_bytes()[:500])
        elif name == "crafted":
            target.write_bytes(pickle.dumps(Exploit()))
        else:
            target.unlink()
    broken = d / "list_config"
    shutil.copytree(folder, broken)
    (broken / runs.CONFIG).write_text("- 1\n- 2\n")
    sneaky = d / "interpolation"
    shutil.copytree(folder, sneaky)
    text = (sneaky / runs.CONFIG).read_text().replace("name: moons", "name: ${oc.env:HOME}")
    (sneaky / runs.CONFIG).write_text(text)
    coded = d / "target"
    shutil.copytree(folder, coded)
    text = (coded / runs.CONFIG).read_text().replace("model:\n", "model:\n  _target_: os.system\n")
    (coded / runs.CONFIG).write_text(text)
    return d


class Exploit:
    """A pickle that would run a command when loaded without weights_only."""

    def __reduce__(self):
        return (print, ("this ran",))


# (overrides, a word the one line must hold). {f} is the files folder.
CASES = [
    # the items 6-8
    ("trainer.max_grad_norm=-1", "trainer.max_grad_norm"),
    ("trainer.divergence_loss=-1", "trainer.divergence_loss"),
    ("optimizer.lr=inf", "optimizer.lr"),
    ("optimizer.lr=nan", "optimizer.lr"),
    ("data.classes=[0]", "data.classes"),
    ("data.n_samples=0", "data.n_samples"),
    ("data.n_samples=-5", "data.n_samples"),
    ("seed=-1", "seed"),
    ("trainer.eval_batch_size=0", "trainer.eval_batch_size"),
    ("model=cnn1d data=mnist1d model.kernel_size=0", "model.kernel_size"),
    ("init.std=nan", "init.std"),
    ("=3", "=3"),
    # every other range
    ("init=normal init.std=-0.1", "init.std"),
    ("init.gain=0", "init.gain"),
    ("init.value=inf", "init.value"),
    ("model.width=0", "model.width"),
    ("model.depth=-1", "model.depth"),
    ("model.dropout=1.0", "model.dropout"),
    ("model.dropout=-0.1", "model.dropout"),
    ("model.bottleneck=0", "model.bottleneck"),
    ("model.activation=swish", "model.activation"),
    ("model.name=resnet", "model.name"),
    ("optimizer.lr=0", "optimizer.lr"),
    ("optimizer.lr=-1", "optimizer.lr"),
    ("optimizer.weight_decay=-0.01", "optimizer.weight_decay"),
    ("optimizer=momentum optimizer.momentum=1.0", "optimizer.momentum"),
    ("optimizer.momentum=-0.5", "optimizer.momentum"),
    ("optimizer.betas=[0.9,1.0]", "optimizer.betas"),
    ("optimizer.betas=[0.9]", "optimizer.betas"),
    ("optimizer.eps=0", "optimizer.eps"),
    ("optimizer.alpha=1.5", "optimizer.alpha"),
    ("optimizer.rho=1", "optimizer.rho"),
    ("optimizer.dampening=2", "optimizer.dampening"),
    ("optimizer=sgd optimizer.nesterov=true", "optimizer.nesterov"),
    ("schedule.warmup_epochs=-1", "schedule.warmup_epochs"),
    ("schedule.warmup_epochs=5", "schedule.warmup_epochs"),  # the run has 2 epochs
    ("schedule=step schedule.step_size=0", "schedule.step_size"),
    ("schedule.gamma=0", "schedule.gamma"),
    ("schedule.gamma=1.5", "schedule.gamma"),
    ("schedule.min_lr=-1", "schedule.min_lr"),
    ("schedule=cosine schedule.min_lr=1", "schedule.min_lr"),
    ("data.test_fraction=0", "data.test_fraction"),
    ("data.test_fraction=1", "data.test_fraction"),
    ("data.val_fraction=1.5", "data.val_fraction"),
    ("data.n_train=0", "data.n_train"),
    ("data.n_train=100000", "data.n_train"),
    ("data.label_noise=1.5", "data.label_noise"),
    ("data.noise=-1", "data.noise"),
    ("data.data_seed=-3", "data.data_seed"),
    ("data=quadratic data.condition=0.5", "data.condition"),
    ("data=quadratic data.dim=0", "data.dim"),
    ("data.task=clustering", "data.task"),
    ("data.classes=[0,7]", "data.classes"),
    ("data/augment=signal data.augment.shift=-1", "data.augment.shift"),
    ("data.augment.scale=1", "data.augment.scale"),
    ("data.augment.rotate=500", "data.augment.rotate"),
    ("data.augment.noise=inf", "data.augment.noise"),
    ("trainer.epochs=0", "trainer.epochs"),
    ("trainer.batch_size=0", "trainer.batch_size"),
    ("trainer.threads=0", "trainer.threads"),
    ("trainer.target_loss=-1", "trainer.target_loss"),
    ("trainer.checkpoint_every_s=-5", "trainer.checkpoint_every_s"),
    ("trainer.early_stopping.patience=0", "trainer.early_stopping.patience"),
    ("trainer.early_stopping.min_delta=-1", "trainer.early_stopping.min_delta"),
    ("trainer.early_stopping.monitor=test_acc", "trainer.early_stopping.monitor"),
    ("trainer.early_stopping.monitor=val_rmse", "trainer.early_stopping.monitor"),
    ("device.name=tpu", "device.name"),
    ("trainer.precision=fp8", "trainer.precision"),
    ("trainer.compile_mode=fast", "trainer.compile_mode"),
    ("name=../../../../x", "name"),
    ("name=a/b/c", "name"),
    ("name=..", "name"),
    # types, choices and keys (Hydra's own checks)
    ("optimizer=adamm", "adamm"),
    ("trainer.epochs=abc", "trainer.epochs"),
    ("model.widht=3", "widht"),
    ("model=cnn2d", "cnn2d"),
    # the user's files
    ("data=table data.path={f}/missing.csv data.target=label", "missing.csv"),
    ("data=table", "data.path"),
    ("data=table data.path={f}/good.csv", "data.target"),
    ("data=table data.path={f}/good.csv data.target=nope", "data.target"),
    ("data=table data.path={f}/header.csv data.target=label", "header.csv"),
    ("data=table data.path={f}/inf.csv data.target=label", "'b'"),
    ("data=table data.path={f}/nan_input.csv data.target=label", "'b'"),
    ("data=table data.path={f}/nan_label.csv data.target=label", "data.target=label"),
    ("data=table data.path={f}/one_class.csv data.target=label", "data.target=label"),
    ("data=table data.path={f}/constant.csv data.target=label", "'c'"),
    ("data=table data.path={f}/junk.parquet data.target=label", "junk.parquet"),
    ("data=table data.path={f}/binary.csv data.target=label", "binary.csv"),
    ("data=npz data.path={f}/no_y.npz", "no_y.npz"),
    ("data=npz data.path={f}/junk.npz", "junk.npz"),
    ("data=npz data.path={f}/inf.npz", "inf.npz"),
    ("transfer.source={f}/missing_run", "transfer.source"),
    # run folders handed over
    ("resume={f}/nowhere", "nowhere"),
    ("resume={f}/no_last", "last.pt"),
    ("resume={f}/truncated", "last.pt"),
    ("resume={f}/crafted", "last.pt"),
    ("resume={f}/list_config", "config.yaml"),
    ("resume={f}/interpolation", "interpolation"),
    ("resume={f}/target", "_target_"),
    ("resume={f}/run data=circles", "data.name"),
    ("resume={f}/run model.width=512", "model.width"),
    ("resume={f}/run trainer.epochs=abc", "trainer.epochs"),
    ("resume={f}/run hydra.run.dir=/tmp/elsewhere", "hydra.run.dir"),
]


# A sample of every kind runs in the default suite; `pytest -m slow` runs the whole table
# (each case composes through Hydra, about a second on a quiet core).
DEFAULT_SUITE = {
    "trainer.max_grad_norm=-1",
    "optimizer.lr=inf",
    "data.classes=[0]",
    "=3",
    "schedule.warmup_epochs=5",
    "name=../../../../x",
    "optimizer=adamm",
    "data=table data.path={f}/inf.csv data.target=label",
    "data=table data.path={f}/one_class.csv data.target=label",
    "resume={f}/crafted",
    "resume={f}/target",
    "resume={f}/run data=circles",
}


def test_the_table_holds_at_least_60_cases():
    assert len(CASES) >= 60
    assert DEFAULT_SUITE <= {overrides for overrides, _ in CASES}


def params():
    return [
        pytest.param(o, w, id=o, marks=() if o in DEFAULT_SUITE else pytest.mark.slow)
        for o, w in CASES
    ]


def fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != runs.LOCK
    }


@pytest.mark.parametrize(("overrides", "word"), params())
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    files, tmp_path, monkeypatch, capsys, overrides, word
):
    monkeypatch.chdir(tmp_path)
    args = overrides.format(f=files).split()
    before = {d.name: fingerprint(d) for d in files.iterdir() if d.is_dir()}
    code = main(["train", *QUICK, *args])
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert code == 2, out.err
    assert len(lines) == 1 and lines[0].startswith("dlrun: error:"), out.err
    assert word in lines[0], lines[0]
    assert "Traceback" not in out.out + out.err and "this ran" not in out.out
    assert list(tmp_path.iterdir()) == []  # no outputs/, not even an empty date folder
    assert {d.name: fingerprint(d) for d in files.iterdir() if d.is_dir()} == before
