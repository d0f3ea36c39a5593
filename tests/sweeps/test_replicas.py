"""Batched replicas: each replica of a stack trains as the same job run alone would."""

from __future__ import annotations

import copy
import csv
import inspect
import math

import pytest
import torch
from omegaconf import OmegaConf

import dlrun.run.runner
from dlrun.data.tensors import Split, batches
from dlrun.run.runner import run
from dlrun.sweeps.replica_loop import _epoch_order, fit_replicas
from dlrun.sweeps.replicas import build_replica, compatible_key, group_jobs, unbatchable_reason
from dlrun.sweeps.stacked import StackedLinear, StackedNet, clip_grad_norms, unstack_state
from dlrun.toolbox.models import build_model
from dlrun.toolbox.optim import build_optimizer, build_schedule

from conftest import QUICK

CPU = torch.device("cpu")
SMALL = ["model.width=32", "trainer.batch_size=64"]


def compose_cfg(*overrides: str):
    from dlrun.config.compose import compose

    return compose([*QUICK, *overrides])


@pytest.fixture(scope="module")
def base():
    """Composed once: Hydra takes about a second per composition on a busy machine."""
    return compose_cfg(*SMALL)


def variant(cfg, **settings):
    """A copy of cfg with dotted settings, e.g. variant(base, **{"optimizer.lr": 0.1})."""
    cfg = cfg.copy()
    for key, value in settings.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


GROUPS = ("model", "init", "optimizer", "schedule", "data", "device", "data/augment")


def cfg_with(cfg, *pairs: str):
    """variant() from "key=value" strings; a group choice sets its name only, not its preset."""
    settings = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        key = f"{key.replace('/', '.')}.name" if key in GROUPS else key
        settings[key] = OmegaConf.create(f"v: {value}").v  # parsed as YAML: 1e-3, null, true
    return variant(cfg, **settings)


METRICS = ("train_loss", "val_loss", "train_acc", "val_acc", "lr")


class _Started(Exception):
    pass


def solo_start(cfg, tmp_path, monkeypatch):
    """What a run alone holds when its epoch loop starts: data, parts, global RNG state."""
    seen = {}

    def capture(cfg, data, parts, state, *args):
        seen.update(
            data=data,
            model={k: v.clone() for k, v in parts.model.state_dict().items()},
            generator=parts.generator.get_state(),
            rng=torch.get_rng_state(),
        )
        raise _Started

    monkeypatch.setattr(dlrun.run.runner, "fit", capture)
    with pytest.raises(_Started):
        run(cfg, tmp_path / f"solo-{cfg.seed}")
    return seen


def read_csv(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if k != "layer"} for row in csv.DictReader(f)]


def solo_rows(cfg, tmp_path):
    folder = tmp_path / f"solo-{cfg.seed}-{cfg.optimizer.lr}"
    run(cfg, folder)
    return read_csv(folder / "metrics.csv"), read_csv(folder / "layers.csv"), folder


def assert_rows_close(batched, solo, rel, keys=METRICS):
    assert len(batched) == len(solo)
    for b, s in zip(batched, solo):
        assert b["epoch"] == s["epoch"] and b["step"] == s["step"]
        for k in keys:
            assert b[k] == pytest.approx(s[k], rel=rel, abs=rel), (k, b["epoch"])


# --- which jobs share a stack


def test_key_ignores_values_and_keeps_shapes(base):
    key = compatible_key(base)
    for same in (
        "seed=3",
        "optimizer.lr=0.1",
        "optimizer=sgd",
        "init=xavier",
        "model.dropout=0.5",
        "data.label_noise=0.2",
        "trainer.epochs=7",
        "trainer.early_stopping.patience=2",
        "trainer.max_grad_norm=1.0",
        "schedule=cosine",
    ):
        assert compatible_key(cfg_with(base, same)) == key, same
    for other in (
        "model.width=64",
        "model.depth=3",
        "model.activation=tanh",
        "data.n_train=500",
        "data.val_fraction=0.2",
        "trainer.batch_size=32",
        "data=digits",
        "device=auto",
    ):
        assert compatible_key(cfg_with(base, other)) != key, other


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("model=cnn1d", "model=cnn1d"),
        ("model.batch_norm=true", "batch statistics"),
        ("data/augment=signal", "augment"),
        ("transfer.source=/somewhere", "transfer"),
        ("resume=/somewhere", "resume"),
    ],
)
def test_unbatchable_jobs_say_why(base, override, words):
    assert unbatchable_reason(base) is None
    assert words in unbatchable_reason(cfg_with(base, override))


def test_group_jobs(base):
    cfgs = [
        cfg_with(base, "seed=0"),
        cfg_with(base, "model=cnn1d"),
        cfg_with(base, "seed=1"),
        cfg_with(base, "model.width=64"),
        cfg_with(base, "seed=2"),
    ]
    groups, reasons = group_jobs(cfgs)
    assert groups == [[0, 2, 4], [1], [3]] and list(reasons) == [1]
    assert group_jobs(cfgs, max_replicas=2)[0] == [[0, 2], [1], [3], [4]]


# --- each replica starts exactly where its run alone starts


@pytest.mark.parametrize(
    ("model", "init"),
    [
        ("model=mlp", "init=default"),
        ("model=mlp", "init=he_uniform"),
        ("model=deep_linear", "init=orthogonal"),
        ("model.bottleneck=8", "init=xavier"),
    ],
)
def test_initial_weights_data_and_streams_equal_the_solo_runs(
    base, tmp_path, monkeypatch, model, init
):
    for seed in (0, 1, 5):
        cfg = cfg_with(
            base, model, init, f"seed={seed}", "model.dropout=0.2", "data.label_noise=0.1"
        )
        replica = build_replica(cfg)
        solo = solo_start(cfg, tmp_path, monkeypatch)
        for k, v in replica.parts.model.state_dict().items():
            assert torch.equal(v, solo["model"][k]), (seed, k)
        for split in ("train", "val", "test"):
            mine, theirs = getattr(replica.data, split), getattr(solo["data"], split)
            assert torch.equal(mine.x, theirs.x) and torch.equal(mine.y, theirs.y), split
        assert torch.equal(replica.parts.generator.get_state(), solo["generator"])
        # the solo run's dropout draws from the global RNG in exactly this state
        assert torch.equal(replica.dropout_generator.get_state(), solo["rng"])


def test_batch_order_per_replica_equals_batches(base):
    replicas = [build_replica(cfg_with(base, f"seed={s}")) for s in (0, 1, 2)]
    x = torch.stack([r.data.train.x for r in replicas])
    y = torch.stack([r.data.train.y for r in replicas])
    solo_generators = [torch.Generator().manual_seed(s) for s in (0, 1, 2)]
    for _ in range(2):  # epochs
        x_epoch, y_epoch = _epoch_order(replicas, x, y, batch_size=64)
        for r, (replica, g) in enumerate(zip(replicas, solo_generators)):
            idx = torch.cat(batches(len(replica.data.train), 64, CPU, g))
            assert torch.equal(x_epoch[r], replica.data.train.x[idx])
            assert torch.equal(y_epoch[r], replica.data.train.y[idx])


def test_dropout_masks_equal_the_solo_nets_on_cpu(base):
    replicas = [
        build_replica(cfg_with(base, f"seed={s}", f"model.dropout={p}"))
        for s, p in ((0, 0.3), (1, 0.0), (2, 0.5))
    ]
    twins = [copy.deepcopy(r.dropout_generator) for r in replicas]
    stack = StackedNet(
        [r.parts.model for r in replicas],
        [r.dropout_generator for r in replicas],
        exact_dropout=True,
    )
    h = torch.ones(3, 16, 32)
    for _ in range(2):
        noise = stack._dropout_noise(h)
        for r, p in enumerate(stack.drop):
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(twins[r].get_state())
                expected = torch.nn.functional.dropout(h[r], p, training=True)
                twins[r].set_state(torch.get_rng_state())
            assert torch.equal(h[r] * noise[r], expected), r
    stack.release()


def test_default_dropout_masks_keep_one_minus_p_from_each_replicas_own_stream(base):
    drops = (0.3, 0.0, 0.5)
    replicas = [
        build_replica(cfg_with(base, f"seed={s}", f"model.dropout={p}"))
        for s, p in zip((0, 1, 2), drops)
    ]
    streams = [r.dropout_generator for r in replicas]
    before = [g.get_state() for g in streams]
    stack = StackedNet([r.parts.model for r in replicas], streams)
    h = torch.ones(3, 512, 1001)  # an odd width: the last 64-bit draw is used by half
    noise = stack._dropout_noise(h)
    stack.release()
    n = h[0].numel()
    for r, p in enumerate(drops):
        kept = noise[r] > 0
        assert torch.all(noise[r][kept] == torch.tensor(1 / (1 - p)))  # inverted dropout
        sigma = math.sqrt(p * (1 - p) / n)
        assert abs(kept.double().mean().item() - (1 - p)) <= 5 * sigma, r
        # the two halves of each 64-bit draw are independent units
        both = (kept[:, 0:1000:2] & kept[:, 1:1001:2]).double().mean().item()
        assert abs(both - (1 - p) ** 2) <= 5 * math.sqrt(
            (1 - p) ** 2 * (1 - (1 - p) ** 2) / (n / 2)
        )
    assert torch.equal(streams[1].get_state(), before[1])  # p = 0 draws nothing
    # A replica's mask is a function of its own stream alone, not of its stack-mates.
    own = torch.Generator().set_state(before[0])
    alone = StackedNet([replicas[0].parts.model], [own])
    assert torch.equal(alone._dropout_noise(h[:1])[0], noise[0])
    assert not torch.equal(alone._dropout_noise(h[:1])[0], noise[0])  # the stream moved on
    alone.release()


# --- trained together, each replica's curves equal its run alone


def test_three_replicas_match_three_solo_runs(base, tmp_path):
    cfgs = [
        cfg_with(base, f"seed={s}", f"optimizer.lr={lr}", "model.dropout=0.0")
        for s, lr in ((0, 1e-3), (1, 3e-3), (2, 1e-2))
    ]
    replicas = [build_replica(c) for c in cfgs]
    fit_replicas(replicas)
    for cfg, replica in zip(cfgs, replicas):
        metrics, layers, _ = solo_rows(cfg, tmp_path)
        assert replica.state.status == "completed" and replica.state.epoch == 3
        assert_rows_close(replica.metrics, metrics, rel=1e-4)
        assert [r["layer"] for r in replica.layers[:3]] == ["features.fc1", "features.fc2", "head"]
        assert_rows_close(
            [{**r, "step": 0} for r in replica.layers],
            [{**r, "step": 0} for r in layers],
            rel=1e-4,
            keys=("grad_norm", "act_mean", "act_std"),
        )


def test_mixed_optimizers_schedules_dropout_and_clipping_match_solo_runs(base, tmp_path):
    cfgs = [
        cfg_with(base, "seed=0", "model.dropout=0.3", "schedule=cosine"),
        cfg_with(
            base,
            "seed=1",
            "optimizer=nesterov",
            "optimizer.lr=0.02",
            "optimizer.momentum=0.9",
            "optimizer.nesterov=true",
            "optimizer.weight_decay=1e-3",
        ),
        cfg_with(
            base,
            "seed=2",
            "optimizer=adamw",
            "optimizer.weight_decay=0.01",
            "trainer.max_grad_norm=0.5",
        ),
        cfg_with(base, "seed=3", "optimizer=rmsprop", "model.dropout=0.1", "init=he"),
    ]
    replicas = [build_replica(c) for c in cfgs]
    fit_replicas(replicas, exact_dropout=True)
    for cfg, replica in zip(cfgs, replicas):
        metrics, _, _ = solo_rows(cfg, tmp_path)
        assert_rows_close(replica.metrics, metrics, rel=1e-4)


def _to_float64(replica):
    """The replica in float64; its optimizer rebuilt (Adagrad makes its state when built)."""
    parts, cfg = replica.parts, replica.cfg
    parts.model.double()
    parts.optimizer = build_optimizer(list(parts.model.parameters()), cfg.optimizer)
    parts.schedule = build_schedule(parts.optimizer, cfg.schedule, cfg.trainer.epochs)
    for name in ("train", "val", "test"):
        split = getattr(replica.data, name)
        setattr(replica.data, name, Split(split.x.double(), split.y))
    return replica


def test_a_replica_in_a_stack_equals_it_alone_in_float64(base):
    cfgs = [
        cfg_with(base, f"seed={s}", f"optimizer.lr={lr}", "model.dropout=0.2")
        for s, lr in ((0, 1e-3), (1, 3e-3), (2, 1e-2))
    ]
    together = [_to_float64(build_replica(c)) for c in cfgs]
    fit_replicas(together)
    for cfg, replica in zip(cfgs, together):
        alone = _to_float64(build_replica(cfg))
        fit_replicas([alone])
        assert_rows_close(
            replica.metrics, alone.metrics, rel=1e-12, keys=("train_loss", "train_acc")
        )
        assert_rows_close(replica.metrics, alone.metrics, rel=1e-6, keys=("val_loss", "val_acc"))
        for k, v in replica.parts.model.state_dict().items():
            torch.testing.assert_close(v, alone.parts.model.state_dict()[k], rtol=1e-12, atol=1e-12)


def test_stacked_linear_gradients_pass_gradcheck():
    gen = torch.Generator().manual_seed(0)
    x, w, b = (
        torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
        for shape in ((3, 5, 4), (3, 6, 4), (3, 6))
    )
    assert torch.autograd.gradcheck(StackedLinear.apply, (x, w, b))
    out = StackedLinear.apply(x, w, b)
    for r in range(3):
        torch.testing.assert_close(out[r], torch.nn.functional.linear(x[r], w[r], b[r]))


# --- optimizers: each replica's torch.optim step on views of the stack


def _reference(optimizer, params):
    """The same torch.optim class and settings, in its for-loop implementation (not fused)."""
    cls = type(optimizer)
    accepted = inspect.signature(cls).parameters
    settings = {**optimizer.defaults, "fused": None, "foreach": False}
    return cls(params, **{k: x for k, x in settings.items() if k in accepted})


@pytest.mark.parametrize(
    "settings",
    [
        ("sgd", dict(lr=0.1, weight_decay=1e-2)),
        ("momentum", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
        ("nesterov", dict(lr=0.05, momentum=0.8, nesterov=True)),
        ("adam", dict(lr=1e-2, betas=[0.8, 0.99], eps=1e-6, weight_decay=1e-2)),
        ("adamw", dict(lr=1e-2, weight_decay=0.1)),
        ("rmsprop", dict(lr=1e-2, alpha=0.9)),
        ("adagrad", dict(lr=0.1)),
    ],
)
def test_optimizer_steps_equal_torch_optim_per_replica(base, settings):
    name, values = settings
    cfgs = []
    for r, scale in enumerate((1.0, 0.5, 2.0)):  # a different value of every setting per replica
        per = {
            k: (v * scale if isinstance(v, float) and k != "eps" else v) for k, v in values.items()
        }
        per = {k: min(v, 0.95) if k in ("momentum", "alpha") else v for k, v in per.items()}
        cfg = cfg_with(base, f"seed={r}", f"optimizer={name}")
        for k, v in per.items():
            cfg.optimizer[k] = v
        cfgs.append(cfg)
    replicas = [_to_float64(build_replica(c)) for c in cfgs]
    # Reference: torch.optim itself on independent copies of each replica's net.
    solo = [copy.deepcopy(r.parts.model) for r in replicas]
    solo_opts = [
        # torch.optim's reference for-loop implementation (the replicas' are fused)
        _reference(r.parts.optimizer, s.parameters())
        for r, s in zip(replicas, solo)
    ]
    stack = StackedNet([r.parts.model for r in replicas], [r.dropout_generator for r in replicas])
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        stack.zero_grad()
        for p in stack.params.values():
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        stack.bind_grads()
        for r, replica in enumerate(replicas):
            replica.parts.optimizer.step()
            for key, p in solo[r].named_parameters():
                p.grad = stack.params[key].grad[r].clone()
            solo_opts[r].step()
    for r in range(3):
        for key, p in solo[r].named_parameters():
            torch.testing.assert_close(stack.params[key][r], p, rtol=1e-10, atol=1e-12)
    stack.release()


def test_gradient_clipping_per_replica_equals_clip_grad_norm(base):
    replicas = [_to_float64(build_replica(cfg_with(base, f"seed={s}"))) for s in (0, 1, 2)]
    stack = StackedNet([r.parts.model for r in replicas], [r.dropout_generator for r in replicas])
    for p in stack.params.values():
        p.grad = torch.randn(p.shape, dtype=torch.float64) * 3
    limits = (0.5, math.inf, 1e4)  # clipped, not clipped, below the limit
    expected = []
    for r, limit in enumerate(limits):
        solo = [torch.zeros_like(p[r]) for p in stack.params.values()]
        for q, p in zip(solo, stack.params.values()):
            q.grad = p.grad[r].clone()
        if math.isfinite(limit):
            torch.nn.utils.clip_grad_norm_(solo, limit)
        expected.append([q.grad for q in solo])
    before = [p.grad.clone() for p in stack.params.values()]
    clip_grad_norms(stack, torch.tensor(limits, dtype=torch.float64))
    for r in range(3):
        for p, g in zip(stack.params.values(), expected[r]):
            torch.testing.assert_close(p.grad[r], g, rtol=1e-12, atol=1e-12)
    assert not torch.equal(before[0][0], stack.params["features.fc1.weight"].grad[0])
    assert torch.equal(before[0][1], stack.params["features.fc1.weight"].grad[1])
    stack.release()


# --- stopping per replica


def test_early_stopping_freezes_one_replica_while_the_others_go_on(base, tmp_path):
    # min_delta this large makes every epoch after the first a bad one.
    stopping = cfg_with(
        base,
        "seed=0",
        "trainer.epochs=5",
        "trainer.early_stopping.patience=1",
        "trainer.early_stopping.min_delta=1e9",
    )
    going_on = cfg_with(base, "seed=1", "trainer.epochs=5", "trainer.early_stopping.patience=null")
    shorter = cfg_with(base, "seed=2", "trainer.epochs=3")
    replicas = [build_replica(c) for c in (stopping, going_on, shorter)]
    calls = []
    hook = lambda r, row, layers: calls.append((r, row, r.state.status))  # noqa: E731
    fit_replicas(replicas, on_epoch=hook, exact_dropout=True)
    assert [r.state.status for r in replicas] == ["early_stopped", "completed", "completed"]
    for replica in replicas:  # the hook: epoch 0 (layers only), then each epoch once
        mine = [(row, status) for r, row, status in calls if r is replica]
        assert mine[0] == (None, "running") and [row for row, _ in mine[1:]] == replica.metrics
        assert [status for _, status in mine[1:-1]] == ["running"] * (len(mine) - 2)
    assert [r.state.epoch for r in replicas] == [2, 5, 3]
    for cfg, replica in zip((stopping, going_on, shorter), replicas):
        metrics, _, folder = solo_rows(cfg, tmp_path)
        assert_rows_close(replica.metrics, metrics, rel=1e-4)
        # final weights: frozen where the solo run stopped; best: the solo run's best epoch
        last = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
        best = torch.load(folder / "checkpoints" / "best.pt", weights_only=True)
        for k, v in replica.parts.model.state_dict().items():
            torch.testing.assert_close(v, last["model"][k], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(
                replica.state.best_model[k], best["model"][k], rtol=1e-4, atol=1e-5
            )
        assert replica.parts.stopper.best_epoch == last["early_stopping"]["best_epoch"]


def test_a_diverging_replica_is_frozen_and_the_others_are_unaffected(base, tmp_path):
    cfgs = [
        cfg_with(base, "seed=0", "optimizer.lr=1e-3"),
        cfg_with(base, "seed=1", "optimizer=sgd", "optimizer.lr=1e6"),
        cfg_with(base, "seed=2", "optimizer.lr=3e-3"),
    ]
    replicas = [build_replica(c) for c in cfgs]
    fit_replicas(replicas, exact_dropout=True)
    assert [r.state.status for r in replicas] == ["completed", "diverged", "completed"]
    assert replicas[1].state.epoch == 1 and len(replicas[1].metrics) == 1
    for r in (0, 2):
        metrics, _, _ = solo_rows(cfgs[r], tmp_path)
        assert_rows_close(replicas[r].metrics, metrics, rel=1e-4)


def test_regression_with_data_per_seed_and_a_target_loss_matches_solo_runs(base, tmp_path):
    # data.data_seed=null: every seed draws its own training set (the bias-variance sweeps)
    common = ("data=regression", "data.data_seed=null", "data.noise=0.3")
    cfgs = [
        cfg_with(base, *common, "seed=0"),
        cfg_with(base, *common, "seed=1", "optimizer=sgd", "optimizer.lr=0.05"),
        cfg_with(base, *common, "seed=2", "trainer.target_loss=100.0"),
    ]
    replicas = [build_replica(c) for c in cfgs]
    assert not torch.equal(replicas[0].data.train.x, replicas[1].data.train.x)
    fit_replicas(replicas, exact_dropout=True)
    assert replicas[2].state.steps_to_target == 0 and replicas[2].state.epoch == 1
    for cfg, replica in zip(cfgs, replicas):
        metrics, _, _ = solo_rows(cfg, tmp_path)
        keys = ("train_loss", "val_loss", "train_rmse", "val_rmse", "lr")
        assert_rows_close(replica.metrics, metrics, rel=1e-4, keys=keys)


# --- out of the stack: solo key names, solo predictions, solo optimizer state


def test_unstacked_weights_load_into_the_solo_model(base):
    cfgs = [cfg_with(base, f"seed={s}", "model.bottleneck=8") for s in (0, 1)]
    replicas = [build_replica(c) for c in cfgs]
    stack = StackedNet([r.parts.model for r in replicas], [r.dropout_generator for r in replicas])
    with torch.no_grad():
        for p in stack.params.values():
            p.add_(torch.randn_like(p) * 0.01)  # moved away from the initial weights
    x = torch.stack([r.data.val.x[:50] for r in replicas])
    with torch.no_grad():
        out = stack.forward(x, train=False)
    for r, (cfg, replica) in enumerate(zip(cfgs, replicas)):
        state = unstack_state(stack.params, r)
        assert list(state) == list(replica.parts.model.state_dict())  # e.g. features.fc1.weight
        assert all(
            v.untyped_storage().nbytes() == v.numel() * v.element_size() for v in state.values()
        )
        net = build_model(cfg.model, replica.data.input_shape, replica.data.n_out)
        net.load_state_dict(state)
        net.eval()
        with torch.no_grad():
            torch.testing.assert_close(net(x[r]), out[r], rtol=1e-5, atol=1e-6)
    stack.release()


def test_a_replicas_optimizer_state_resumes_a_solo_optimizer(base, tmp_path):
    cfg = cfg_with(base, "seed=0", "trainer.epochs=2", "model.dropout=0.0")
    replicas = [build_replica(cfg), build_replica(cfg_with(base, "seed=1"))]
    fit_replicas(replicas)
    replica = replicas[0]
    path = tmp_path / "state.pt"
    torch.save(
        {
            "model": replica.parts.model.state_dict(),
            "optimizer": replica.parts.optimizer.state_dict(),
        },
        path,
    )
    saved = torch.load(path, weights_only=True)
    solo = build_model(cfg.model, replica.data.input_shape, replica.data.n_out)
    solo.load_state_dict(saved["model"])
    solo_opt = build_optimizer(list(solo.parameters()), cfg.optimizer)
    solo_opt.load_state_dict(saved["optimizer"])
    assert solo_opt.state_dict()["state"][0]["step"] == 2 * math.ceil(len(replica.data.train) / 64)
    x, y = replica.data.train.x[:64], replica.data.train.y[:64]
    for net, opt in ((replica.parts.model, replica.parts.optimizer), (solo, solo_opt)):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    for k, v in solo.state_dict().items():
        assert torch.equal(v, replica.parts.model.state_dict()[k]), k
