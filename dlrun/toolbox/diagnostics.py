"""Diagnostics: per-layer gradient norms and activation statistics (layers.csv), and how
the weights' path turns from one epoch to the next (metrics.csv's update_cos)."""

from __future__ import annotations

import torch
from torch import nn

from dlrun.toolbox.models import WEIGHT_LAYERS, weight_layers, weights

LAYER_COLUMNS = ["epoch", "layer", "grad_norm", "act_mean", "act_std"]


def _activation_sites(model: nn.Module) -> list[tuple[str, nn.Module, nn.Module]]:
    """(weight layer name, weight layer, module whose output is that layer's activation).

    A layer's activation is the output of the nonlinearity that follows it inside
    the same Sequential (the layer itself when none follows: the head, a linear
    net, a bottleneck).
    """
    sites = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for i, (child_name, child) in enumerate(children):
            if not isinstance(child, WEIGHT_LAYERS):
                continue
            site = child
            for _, nxt in children[i + 1 :]:
                if isinstance(nxt, (*WEIGHT_LAYERS, nn.Flatten)):
                    break
                if not isinstance(nxt, (nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d)):
                    site = nxt
                    break
            sites.append((f"{name}.{child_name}" if name else child_name, child, site))
    known = {id(layer) for _, layer, _ in sites}
    for name, layer in weight_layers(model):
        if id(layer) not in known:
            sites.append((name, layer, layer))
    return sites


@torch.no_grad()
def activation_stats(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean and std of every weight layer's activation on x, in eval mode."""
    sites = _activation_sites(model)
    stats: dict[str, torch.Tensor] = {}
    hooks = []
    for name, _, site in sites:

        def hook(_m, _inp, out, name=name):
            out = (out[0] if isinstance(out, tuple) else out).float()  # a GRU: (outputs, h_n)
            stats[name] = torch.stack([out.mean(), out.std()])

        hooks.append(site.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {name: stats[name] for name, _, _ in sites if name in stats}


def layer_table(model: nn.Module, x: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    """Weight-layer names and a device tensor of rows (grad_norm, act_mean, act_std).

    The gradient is whatever `.grad` holds (the last minibatch of the epoch, or
    the fixed batch before training). Nothing here syncs with the host: the
    loop reads this table together with its other numbers, once per epoch.
    """
    acts = activation_stats(model, x)
    names = list(acts)
    layers = dict(weight_layers(model))
    nan = torch.full((), float("nan"), device=x.device)
    rows = []
    for name in names:
        grads = [w.grad for w in weights(layers[name]) if w.grad is not None]
        norm = torch.stack([g.norm().float() for g in grads]).norm() if grads else nan
        rows.append(torch.stack([norm, *acts[name]]))
    return names, torch.stack(rows)


def layer_rows(names: list[str], table: list[list[float]], epoch: int) -> list[dict]:
    """layers.csv rows from a table already on the host."""
    return [
        {"epoch": epoch, "layer": n, "grad_norm": g, "act_mean": m, "act_std": s}
        for n, (g, m, s) in zip(names, table)
    ]


def flat_weights(model: nn.Module) -> torch.Tensor:
    """Every parameter of the model as one flat vector: a copy, on the model's device."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def cosine(update: torch.Tensor, last: torch.Tensor | None) -> torch.Tensor:
    """The cosine between two updates of the weights, a device scalar (no host sync);
    nan when there is no earlier update or either one is zero."""
    nan = torch.full((), float("nan"), device=update.device, dtype=update.dtype)
    if last is None:
        return nan
    a, b = update.norm(), last.norm()
    both = (a > 0) & (b > 0)  # each length divides alone: their product may underflow
    return torch.where(
        both, (update @ last) / torch.where(both, a, 1) / torch.where(both, b, 1), nan
    )


class Turning:
    """metrics.csv's update_cos: the cosine between the weights' change over this epoch and
    over the one before.

    -1: each epoch undoes the last (a zigzag across a ravine, the lecture's oscillation);
    +1: the path keeps its direction. With full batches an epoch is one step, so it is the
    cosine between successive updates. `last` is the previous epoch's update (a resumed
    run's, from last.pt), None at a run's start: its first epoch has no cosine.
    """

    def __init__(self, model: nn.Module, last: torch.Tensor | None = None):
        self.model, self.weights = model, flat_weights(model)
        self.last = None if last is None else last.to(self.weights.device, self.weights.dtype)

    def step(self) -> torch.Tensor:
        """This epoch's cosine (a device scalar); this epoch's update becomes `last`."""
        now = flat_weights(self.model)
        update = self.weights.sub_(now).neg_()  # now - weights, exactly, in the old copy's memory
        turn = cosine(update, self.last)
        self.weights, self.last = now, update
        return turn
