"""`dlrun gradcheck`: autograd agrees with finite differences, a wrong backward is caught, the graph is drawn."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import dlrun.toolbox.gradcheck as gradcheck
from dlrun.cli.main import main as dlrun_main

QUICK = ["data.n_samples=500", "model.width=8"]


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in output:\n{text}"
    return float(match.group(1).replace(",", ""))


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=mlp", "data=mnist1d", "model.dropout=0.5"],  # dropout must be off (eval mode)
        ["model=cnn1d", "data=mnist1d"],
        ["model=cnn2d", "data=digits"],
    ],
)
def test_gradcheck_passes_on_every_model_and_prints_the_cost_ratio(capsys, overrides):
    assert gradcheck.main([*QUICK, *overrides]) == 0
    out = capsys.readouterr().out
    assert _number(r"max rel error (\S+)", out) < 1e-6
    assert _number(r"max abs error (\S+)", out) < 1e-8
    checked, total = re.search(r"checked ([\d,]+) of ([\d,]+) parameters", out).groups()
    assert checked == total  # small models: every parameter
    # Two forward passes per parameter against one backward pass for all of them.
    assert _number(r"cost ratio\s+([\d,.]+)x", out) > 10
    assert "PASS" in out


class _Relu(torch.autograd.Function):
    """ReLU with a hand-written backward; `scale` != 1 plants a wrong gradient."""

    scale = 1.0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0) * _Relu.scale


class _CustomRelu(nn.Module):
    def forward(self, x):
        return _Relu.apply(x)


@pytest.mark.parametrize("scale, code", [(1.0, 0), (1.01, 1)])
def test_a_planted_wrong_backward_fails(capsys, monkeypatch, scale, code):
    build = gradcheck.build_model

    def build_with_custom_op(*args):
        model = build(*args)
        model.features.act1 = _CustomRelu()
        return model

    monkeypatch.setattr(gradcheck, "build_model", build_with_custom_op)
    monkeypatch.setattr(_Relu, "scale", scale)
    assert gradcheck.main([*QUICK, "model=mlp", "data=mnist1d"]) == code
    out = capsys.readouterr().out
    assert ("FAIL" in out) == (code == 1)
    if code:
        assert _number(r"max rel error (\S+)", out) > 1e-3


def test_graph_of_a_two_layer_mlp_lists_its_nodes_and_is_drawn(capsys, tmp_path):
    image = tmp_path / "graph.png"
    args = [*QUICK, "model=mlp", "model.depth=2", "--k", "50", "--graph", "--graph-out", str(image)]
    assert gradcheck.main(args) == 0
    out = capsys.readouterr().out
    counts = dict(re.findall(r"(\w+) (\d+)", out.split("nodes by operation:")[1].splitlines()[0]))
    # Two hidden layers and a head: three matrix products, two ReLUs, one loss.
    assert counts["AddmmBackward0"] == "3" and counts["ReluBackward0"] == "2"
    assert counts["NllLossBackward0"] == "1" and counts["LogSoftmaxBackward0"] == "1"
    assert counts["AccumulateGrad"] == "6"  # one per parameter tensor
    # The ReLU after fc2 receives and sends a (batch x width) VJP; fc1's weight gets a (8 x 40) one.
    assert re.search(r"ReluBackward0\s+\d+\s+16x8\s+16x8", out)
    assert re.search(r"AccumulateGrad \(features.fc1.weight\)\s+-\s+8x40", out)
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 10_000


def test_a_sample_of_k_extrapolates_the_full_cost(capsys):
    assert gradcheck.main(["data.n_samples=500", "model.width=32", "--k", "200"]) == 0
    out = capsys.readouterr().out
    checked, total = (
        int(n.replace(",", "")) for n in re.search(r"checked ([\d,]+) of ([\d,]+)", out).groups()
    )
    assert 150 <= checked <= 260 and total > 2000
    assert "extrapolated" in out


def test_result_extrapolates_linearly():
    r = gradcheck.Result(
        0, 0, n_checked=100, n_params=1000, forward_s=1e-4, backward_s=2e-4, sweep_s=0.02
    )
    assert r.full_sweep_s == pytest.approx(0.2) and r.ratio == pytest.approx(1000)


def test_bad_arguments_are_one_line_usage_errors(capsys):
    assert dlrun_main(["gradcheck", "--k", "zero"]) == 2
    assert dlrun_main(["gradcheck", "model.dropout=1.5", *QUICK]) == 2
    assert dlrun_main(["gradcheck", "init=glorious"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("dlrun: error:") for line in err)
    assert "--k" in err[0] and "model.dropout" in err[1] and "glorious" in err[2]


@pytest.mark.parametrize("model", ["resmlp", "logistic", "gru"])
def test_gradcheck_passes_on_the_papers_models(capsys, model):
    sample = ["--k", "60"] if model == "gru" else []  # a GRU's forward pass is 40 steps long
    assert gradcheck.main([*QUICK, f"model={model}", "model.width=2", *sample]) == 0
    out = capsys.readouterr().out
    assert _number(r"max rel error (\S+)", out) < 1e-6 and "PASS" in out
