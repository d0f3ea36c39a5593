"""The cost of reverse-mode autodiff: one backward pass against one forward pass, by model size.

The lecture (automatic differentiation): the gradient is not found by finite
differences, which need a forward pass per parameter, but by one backward pass
through the graph. The "cheap gradient principle" (Griewank & Walther,
"Evaluating Derivatives", 2nd ed. 2008, section 4.6: the gradient costs at most a
small constant times the function, about 5 in their operation counts) says that
constant does not grow with the number of parameters.

For dlrun's MLP on MNIST-1D at several widths (the parameters grow about 1000x),
the script times, in one process, at one thread: the forward pass and loss, and
the forward pass, loss and backward pass (best of --repeats, each over --steps
minibatches). It prints the ratio for each size beside what finite differences
would cost (P + 1 forward passes), and says whether every ratio is within the
bound (exit 0) or not (exit 1). The check can fail: `--mode forward` differentiates with forward-mode
(one Jacobian-vector product per parameter, torch.func.jvp), whose cost grows
with P, and must exceed the bound at the larger sizes.

    python benchmarks/autodiff_cost.py [--widths 8,64,512] [--repeats 7] [--steps 20] [--bound 5]
    python benchmarks/autodiff_cost.py --mode forward --widths 2,8,32   # the check failing
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from dlrun.config.compose import compose
from dlrun.data.tensors import build_dataset
from dlrun.toolbox.models import build_model, count_parameters


def best_of(fn, repeats: int, steps: int) -> float:
    """Seconds per step of fn, the fastest of `repeats` runs of `steps` steps."""
    fn()  # warm-up: allocations, kernel choice
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        times.append((time.perf_counter() - start) / steps)
    return min(times)


def forward_mode_gradient(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """The gradient by forward mode: one Jacobian-vector product per parameter."""
    from torch.func import functional_call, jvp

    params = {name: p.detach() for name, p in model.named_parameters()}
    names = list(params)

    def loss_of(*values):
        return F.cross_entropy(functional_call(model, dict(zip(names, values)), (x,)), y)

    for name in names:
        for index in range(params[name].numel()):
            tangent = [torch.zeros_like(params[n]) for n in names]
            tangent[names.index(name)].view(-1)[index] = 1.0
            jvp(loss_of, tuple(params.values()), tuple(tangent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", default="8,64,512")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--bound", type=float, default=5.0)
    parser.add_argument("--mode", choices=["reverse", "forward"], default="reverse")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(
        f"vm: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"1 thread, batch {args.batch}, {args.mode} mode"
    )
    worst = 0.0
    for width in (int(w) for w in args.widths.split(",")):
        cfg = compose(["data=mnist1d", "model=mlp", f"model.width={width}", "model.dropout=0"])
        data = build_dataset(cfg.data, 0, torch.device("cpu"))
        model = build_model(cfg.model, data.input_shape, data.n_out)
        x, y = data.train.x[: args.batch], data.train.y[: args.batch]
        n_params = count_parameters(model)

        def forward() -> None:
            F.cross_entropy(model(x), y)

        def reverse() -> None:
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()

        if args.mode == "forward":
            steps, repeats = 1, 1
            gradient = lambda: forward_mode_gradient(model, x, y)  # noqa: E731
        else:
            steps, repeats, gradient = args.steps, args.repeats, reverse
        t_forward = best_of(forward, args.repeats, args.steps)
        t_gradient = best_of(gradient, repeats, steps)
        ratio = t_gradient / t_forward
        worst = max(worst, ratio)
        print(
            f"  width {width:>5}  {n_params:>9,} parameters  forward {t_forward * 1e3:8.3f} ms  "
            f"gradient {t_gradient * 1e3:10.3f} ms  ratio {ratio:7.2f}  "
            f"(finite differences: {n_params + 1:,} forward passes)"
        )
    verdict = "within" if worst <= args.bound else "NOT within"
    print(f"largest ratio {worst:.2f}: {verdict} the cheap-gradient bound of {args.bound:g}")
    raise SystemExit(0 if worst <= args.bound else 1)


if __name__ == "__main__":
    main()
