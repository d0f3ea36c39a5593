"""The stacked net: R nets of one architecture as one, weights with a leading replica dimension.

Every layer is one batched matrix product over the replicas (torch.baddbmm)
instead of R small ones. While stacked, each solo net's parameters are views
of its slice, so the net, its torch.optim optimizer and dlrun's evaluation and
diagnostics see the replica's current weights without a copy.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlrun.toolbox.models import ACTIVATIONS


class StackedNet:
    """R nets of one architecture as stacked parameters: weight [R, out, in], bias [R, out].

    Dropout masks come from each replica's own generator, drawn one of two ways:
    `exact_dropout=True` draws them as F.dropout does on a CPU (bernoulli_ of
    1 - p, one call per replica), so they equal the solo run's mask for mask;
    the default draws 32 random bits per unit (two units per 64-bit draw) and
    keeps a unit where those bits, read as a signed int32, are at or above
    round(p * 2^32) - 2^31: the same drop probability to within 2^-32, an
    equally valid but different stream, about four times cheaper on a CPU
    (torch's bernoulli_ draws one double per unit there; benchmarks/README.md).
    """

    def __init__(
        self,
        nets: list[nn.Module],
        dropout_generators: list[torch.Generator],
        exact_dropout: bool = False,
    ):
        shapes = [{k: v.shape for k, v in net.state_dict().items()} for net in nets]
        if any(list(s.items()) != list(shapes[0].items()) for s in shapes):
            raise ValueError("replicas differ in shape: compatible_key let them into one stack")
        keys = list(shapes[0])
        # The net with dropout layers (if any replica has them) gives the layer sequence.
        template = max(nets, key=lambda n: sum(isinstance(m, nn.Dropout) for m in n.modules()))
        self.ops = _ops(template)
        self.nets = list(nets)
        self.generators = list(dropout_generators)
        self.drop = [_drop_probability(net) for net in nets]
        self.exact_dropout = exact_dropout
        self.params = {
            k: torch.stack([net.state_dict()[k].detach() for net in nets]).requires_grad_()
            for k in keys
        }
        self._alias()

    def __len__(self) -> int:
        return len(self.nets)

    def forward(self, x: torch.Tensor, train: bool = True) -> torch.Tensor:
        """x [R, B, ...] -> outputs [R, B, n_out]; `train` applies dropout."""
        h = x
        for kind, name, module in self.ops:
            if kind == "flatten":
                h = h.flatten(2)
            elif kind == "linear":
                h = StackedLinear.apply(
                    h, self.params[f"{name}.weight"], self.params[f"{name}.bias"]
                )
            elif kind == "act":
                h = module(h)  # elementwise, so the replica dimension passes through
            elif train:
                h = h * self._dropout_noise(h)
        return h

    def _dropout_noise(self, h: torch.Tensor) -> torch.Tensor:
        """The mask times 1 / (1 - p) per replica, [R, B, width]."""
        if self.exact_dropout:
            # As F.dropout on a CPU draws it: bernoulli(1 - p) / (1 - p), one call per
            # replica from its own stream, so on a CPU the masks equal the solo run's.
            noise = torch.empty_like(h, requires_grad=False)
            for r, (p, generator) in enumerate(zip(self.drop, self.generators)):
                if p > 0:
                    noise[r].bernoulli_(1 - p, generator=generator).div_(1 - p)
                else:
                    noise[r].fill_(1.0)
            return noise
        width = h.shape[-1]
        bits = torch.empty(*h.shape[:-1], (width + 1) // 2, dtype=torch.int64, device=h.device)
        for r, (p, generator) in enumerate(zip(self.drop, self.generators)):
            if p > 0:  # p = 0 keeps every unit whatever the bits: no draw
                bits[r].random_(-(2**63), None, generator=generator)  # all 64 bits
        threshold, scale = self._mask_constants(h)
        keep = bits.view(torch.int32)[..., :width] >= threshold
        return keep.to(h.dtype).mul_(scale)

    def _mask_constants(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if getattr(self, "_constants", None) is None or self._constants[0].device != h.device:
            # int32 like the bits they meet: an int64 threshold would first copy every
            # bit to int64 (a third of the mask's time). p within 2^-33 of 1 keeps 2^-32.
            threshold = [min(round(p * 2**32) - 2**31, 2**31 - 1) for p in self.drop]
            self._constants = (
                torch.tensor(threshold, dtype=torch.int32, device=h.device).view(-1, 1, 1),
                torch.tensor([1 / (1 - p) for p in self.drop], device=h.device).view(-1, 1, 1),
            )
        return self._constants

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    def bind_grads(self) -> None:
        """Each net's parameter gradients become views of its slice of the stacked gradients."""
        for r, net in enumerate(self.nets):
            for name, p in net.named_parameters():
                g = self.params[name].grad
                p.grad = None if g is None else g[r]

    def keep(self, rows: list[int]) -> None:
        """Shrink the stack to these rows; the other nets keep their weights as their own."""
        for r, net in enumerate(self.nets):
            if r not in rows:
                _own(net)
        index = torch.tensor(rows, dtype=torch.long, device=next(iter(self.params.values())).device)
        self.params = {
            k: v.detach().index_select(0, index).requires_grad_() for k, v in self.params.items()
        }
        self.nets = [self.nets[r] for r in rows]
        self.generators = [self.generators[r] for r in rows]
        self.drop = [self.drop[r] for r in rows]
        self._constants = None
        self._alias()

    def release(self) -> None:
        """Every net owns its weights again (the stack can be dropped)."""
        self.keep([])

    def _alias(self) -> None:
        for r, net in enumerate(self.nets):
            for name, p in net.named_parameters():
                p.data = self.params[name].detach()[r]


class StackedLinear(torch.autograd.Function):
    """x [R, B, in] @ W[r]^T + b[r] for every replica r, with W [R, out, in] and b [R, out].

    Autograd's own backward of baddbmm(b, x, W.mT) yields W's gradient
    transposed, [R, in, out], which then costs a transposing copy into W's
    layout, about a third of a CPU step for the default MLP. Here the gradient
    is computed in W's layout: g^T x, [R, out, B] @ [R, B, in].
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return torch.baddbmm(b.unsqueeze(1), x, w.mT)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, w = ctx.saved_tensors
        grad_x = g.bmm(w) if ctx.needs_input_grad[0] else None
        return grad_x, g.mT.bmm(x), g.sum(1)


def replica_losses(out: torch.Tensor, y: torch.Tensor, classification: bool) -> torch.Tensor:
    """Each replica's mean loss on its batch, [R], by the solo loss function itself.

    One small call per replica: a vectorised mean rounds differently, and the
    logged training loss would then differ from the solo run's in the last bit.
    """
    loss_fn = F.cross_entropy if classification else F.mse_loss
    return torch.stack([loss_fn(o, t) for o, t in zip(out, y)])


def clip_limits(limits: list[float | None], device: torch.device) -> torch.Tensor | None:
    """trainer.max_grad_norm per replica (inf: no clipping), or None when no replica clips."""
    if all(m is None for m in limits):
        return None
    return torch.tensor([math.inf if m is None else m for m in limits], device=device)


@torch.no_grad()
def clip_grad_norms(stack: StackedNet, limits: torch.Tensor) -> None:
    """torch.nn.utils.clip_grad_norm_ per replica: scale by max_norm / (norm + 1e-6) when above."""
    grads = [p.grad for p in stack.params.values() if p.grad is not None]
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads], dim=1)
    total = torch.linalg.vector_norm(norms, dim=1)
    coef = (limits / (total + 1e-6)).clamp(max=1.0)
    coef = torch.where(torch.isinf(limits), torch.ones_like(coef), coef)
    for g in grads:
        g.mul_(coef.view(-1, *[1] * (g.dim() - 1)).to(g.dtype))


def _own(net: nn.Module) -> None:
    net.zero_grad(set_to_none=True)  # its gradients were views of the stack's
    for p in net.parameters():
        p.data = p.data.clone()


_ACTIVATION_TYPES = tuple(ACTIVATIONS.values())


def _ops(net: nn.Module) -> list[tuple[str, str, nn.Module]]:
    """The net's leaf modules in forward order as (kind, name, module)."""
    ops = []
    for name, m in net.named_modules():
        if list(m.children()):
            continue
        if isinstance(m, nn.Flatten):
            ops.append(("flatten", name, m))
        elif isinstance(m, nn.Linear):
            ops.append(("linear", name, m))
        elif isinstance(m, nn.Dropout):
            ops.append(("dropout", name, m))
        elif isinstance(m, _ACTIVATION_TYPES):
            ops.append(("act", name, m))
        else:
            raise ValueError(f"{name} ({type(m).__name__}) cannot be stacked")
    return ops


def _drop_probability(net: nn.Module) -> float:
    return next((m.p for m in net.modules() if isinstance(m, nn.Dropout)), 0.0)


def unstack_state(stacked: dict[str, torch.Tensor], r: int) -> dict[str, torch.Tensor]:
    """Replica r's state dict in the solo model's key names, as tensors of its own.

    Cloned, not views: torch.save of a view would write the whole stack.
    """
    return {k: v.detach()[r].clone() for k, v in stacked.items()}
