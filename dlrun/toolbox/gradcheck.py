"""`dlrun gradcheck`: autograd's gradient against central finite differences, and their costs.

The configured model is copied to float64 on the CPU and put in eval mode
(dropout off, batch norm on its running statistics), so the loss is a
deterministic function of the parameters. On a small training batch,

    g_fd[i] = (L(w + eps e_i) - L(w - eps e_i)) / (2 eps)

costs two forward passes per parameter, against one backward pass for all of
them: the lecture's case for automatic differentiation, printed as a ratio.
Errors: max |g - g_fd| (absolute) and that divided by max |g| (relative: the
infinity-norm relative error, robust to entries that are zero or tiny).
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dlrun.config.keys import check_types
from dlrun.data.tensors import build_dataset
from dlrun.errors import ConfigError, UsageError
from dlrun.toolbox.initializers import initialize
from dlrun.toolbox.models import build_model, count_parameters

SAMPLE_ABOVE = 5000  # models with more parameters check a random sample by default
DEFAULT_SAMPLE = 1000


@dataclass
class Problem:
    """A float64 model in eval mode and a closure for its loss on one fixed batch."""

    model: nn.Module
    loss: Callable[[], torch.Tensor]
    description: str


@dataclass
class Result:
    max_abs: float
    max_rel: float
    n_checked: int
    n_params: int
    forward_s: float
    backward_s: float
    sweep_s: float  # finite differences over the checked entries

    @property
    def full_sweep_s(self) -> float:
        """The sweep over every parameter, extrapolated from the checked ones."""
        return self.sweep_s * self.n_params / max(self.n_checked, 1)

    @property
    def ratio(self) -> float:
        return self.full_sweep_s / max(self.backward_s, 1e-12)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line through the CLI's UsageError, not argparse's exit
        raise UsageError(f"gradcheck: {message}")


def parse(args: list[str]) -> argparse.Namespace:
    p = _Parser(prog="dlrun gradcheck", description=__doc__.splitlines()[0])
    p.add_argument("overrides", nargs="*", help="config overrides, as for dlrun train")
    p.add_argument("--k", default=None, help="check a random sample of K parameters, or 'all'")
    p.add_argument("--eps", type=float, default=1e-6, help="finite-difference step")
    p.add_argument("--tol", type=float, default=1e-6, help="largest relative error that passes")
    p.add_argument("--batch", type=int, default=16, help="training samples in the batch")
    p.add_argument("--graph", action="store_true", help="print and draw the autograd graph")
    p.add_argument("--graph-out", default="autograd-graph.png", help="where --graph draws")
    ns = p.parse_intermixed_args(args)
    if ns.k not in (None, "all") and not (ns.k.isdigit() and int(ns.k) > 0):
        p.error(f"--k {ns.k}: expected a positive integer or 'all'")
    if not ns.eps > 0 or not ns.tol > 0 or ns.batch < 1:
        p.error("--eps and --tol must be positive and --batch at least 1")
    return ns


def prepare(cfg, batch: int) -> Problem:
    """Data and model as `dlrun train` builds them, then a float64 copy in eval mode."""
    torch.manual_seed(cfg.seed)
    check_types(cfg)
    data = build_dataset(cfg.data, cfg.seed, torch.device("cpu"))
    model = build_model(cfg.model, data.input_shape, data.n_out)
    initialize(model, cfg.init, cfg.model.get("activation"))
    model = copy.deepcopy(model).double().eval()
    x, y = data.train.x[:batch].double(), data.train.y[:batch]
    if data.task == "classification":
        loss_fn = F.cross_entropy
    else:
        y = y.double()
        loss_fn = F.mse_loss
    description = f"{cfg.model.name} on {cfg.data.name}, batch of {len(y)}, float64, eval mode"
    return Problem(model, lambda: loss_fn(model(x), y), description)


def sample_entries(model: nn.Module, k: int | None, gen: torch.Generator) -> list[tuple[str, int]]:
    """(parameter name, flat index) pairs: all of them, or about k spread over every tensor."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    total = sum(p.numel() for _, p in params)
    entries = []
    for name, p in params:
        if k is None or k >= total:
            chosen = range(p.numel())
        else:
            # Proportional share, but at least a few per tensor so biases are checked too.
            share = max(
                round(k * p.numel() / total), min(p.numel(), max(1, k // (4 * len(params))))
            )
            chosen = torch.randperm(p.numel(), generator=gen)[: min(share, p.numel())].tolist()
        entries += [(name, i) for i in chosen]
    return entries


def _timed(fn: Callable[[], object], repeats: int = 3) -> float:
    """Seconds of the fastest of a few calls (less noise from other work)."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def autograd_gradients(problem: Problem) -> tuple[dict[str, torch.Tensor], float, float]:
    """Gradients by one backward pass, and the seconds of a forward and a backward pass."""
    model = problem.model
    forward_s = _timed(lambda: problem.loss())
    backward_s = math.inf
    for _ in range(3):
        model.zero_grad(set_to_none=True)
        loss = problem.loss()
        t0 = time.perf_counter()
        loss.backward()
        backward_s = min(backward_s, time.perf_counter() - t0)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return grads, forward_s, backward_s


@torch.no_grad()
def finite_differences(problem: Problem, entries: list[tuple[str, int]], eps: float) -> list[float]:
    """Central differences, one entry at a time: two forward passes each."""
    params = dict(problem.model.named_parameters())
    values = []
    for name, i in entries:
        flat = params[name].data.view(-1)
        old = flat[i].item()
        flat[i] = old + eps
        up = problem.loss().item()
        flat[i] = old - eps
        down = problem.loss().item()
        flat[i] = old
        values.append((up - down) / (2 * eps))
    return values


def check(problem: Problem, k: int | None, eps: float, seed: int = 0) -> Result:
    grads, forward_s, backward_s = autograd_gradients(problem)
    n_params = sum(p.numel() for p in problem.model.parameters() if p.requires_grad)
    entries = sample_entries(problem.model, k, torch.Generator().manual_seed(seed))
    t0 = time.perf_counter()
    numeric = torch.tensor(finite_differences(problem, entries, eps), dtype=torch.float64)
    sweep_s = time.perf_counter() - t0
    zero = torch.zeros((), dtype=torch.float64)
    analytic = torch.stack([grads[n].view(-1)[i] if n in grads else zero for n, i in entries])
    max_abs = (analytic - numeric).abs().max().item()
    scale = max(analytic.abs().max().item(), numeric.abs().max().item())
    max_rel = max_abs / scale if scale > 0 else 0.0
    return Result(max_abs, max_rel, len(entries), n_params, forward_s, backward_s, sweep_s)


def _sample_size(k: str | None, n_params: int) -> int | None:
    if k == "all" or (k is None and n_params <= SAMPLE_ABOVE):
        return None
    return DEFAULT_SAMPLE if k is None else int(k)


def report(result: Result, problem: Problem, eps: float, tol: float) -> str:
    ok = result.max_rel <= tol
    sampled = result.n_checked < result.n_params
    how = "a random sample; --k all checks every one" if sampled else "every one"
    full = "extrapolated to all" if sampled else "all"
    lines = [
        f"dlrun gradcheck: {problem.description}",
        f"  checked {result.n_checked:,} of {result.n_params:,} parameters ({how}), "
        f"central differences with eps {eps:g}",
        f"  max abs error {result.max_abs:.3e}   max rel error {result.max_rel:.3e}   "
        f"(tolerance {tol:g}): {'PASS' if ok else 'FAIL'}",
        f"  one forward pass        {result.forward_s * 1e3:10.3f} ms",
        f"  one backward pass       {result.backward_s * 1e3:10.3f} ms  (every gradient at once)",
        f"  finite differences      {result.full_sweep_s * 1e3:10.1f} ms  "
        f"({full} {result.n_params:,} parameters: {2 * result.n_params:,} forward passes)",
        f"  cost ratio              {result.ratio:10,.0f}x  finite differences / backward pass",
    ]
    return "\n".join(lines)


def main(args: list[str]) -> int:
    """`dlrun gradcheck [overrides] [--k K] [--eps E] [--tol T] [--graph [--graph-out FILE]]`."""
    from dlrun.config import validate
    from dlrun.config.compose import compose
    from dlrun.config.hydra_errors import describe_hydra_error, is_hydra_error

    ns = parse(args)
    try:
        cfg = compose(ns.overrides)
        validate.check(cfg)
        problem = prepare(cfg, ns.batch)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    except Exception as e:
        if is_hydra_error(e):
            raise UsageError(describe_hydra_error(e)) from None
        raise
    n_params = count_parameters(problem.model)
    threads = torch.get_num_threads()
    # One thread: on a batch this small, hand-offs between threads would dominate
    # (and distort) the timings of both passes.
    torch.set_num_threads(1)
    try:
        result = check(problem, _sample_size(ns.k, n_params), ns.eps, cfg.seed)
    finally:
        torch.set_num_threads(threads)
    print(report(result, problem, ns.eps, ns.tol))
    if ns.graph:
        from dlrun.toolbox.autograd_graph import draw, format_graph, walk

        nodes = walk(problem.model, problem.loss())
        print(format_graph(nodes))
        draw(nodes, ns.graph_out)
        print(f"  graph drawn to {ns.graph_out}")
    return 0 if result.max_rel <= ns.tol else 1
