"""The lecture's computation graph, read off a real loss: autograd's nodes and their messages.

Each node of `loss.grad_fn` is one operation of the forward pass. Its
`next_functions` are its parents (the nodes that made its inputs); in the
backward pass it multiplies the incoming gradient by its Jacobian and sends one
vector-Jacobian product to each parent. Leaves are `AccumulateGrad` nodes, one
per parameter, which add the message they receive into `.grad`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from dlrun.folders import runs


@dataclass
class Node:
    index: int
    op: str  # e.g. AddmmBackward0, ReluBackward0, AccumulateGrad
    parents: list[int]  # indices of the nodes its VJPs go to
    label: str = ""  # the parameter name, for AccumulateGrad
    sends: list[tuple[int, ...] | None] = field(default_factory=list)  # VJP shape per parent
    receives: tuple[int, ...] | None = None  # shape of the gradient arriving here
    depth: int = 0  # longest path from the loss (the loss node is 0)


def _topological(root) -> list:
    """Nodes reachable from the loss, each after every node that sends to it."""
    # Depth-first post-order with an explicit stack (deep nets would overflow recursion).
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        fn, finished = stack.pop()
        if finished:
            order.append(fn)
        elif fn is not None and fn not in seen:
            seen.add(fn)
            stack.append((fn, True))
            stack.extend((parent, False) for parent, _ in fn.next_functions)
    return order[::-1]


def _shape(t: torch.Tensor | None) -> tuple[int, ...] | None:
    return tuple(t.shape) if t is not None else None


def walk(model: nn.Module, loss: torch.Tensor) -> list[Node]:
    """Every node of loss's graph (loss first), with the shapes of the VJPs it sends back."""
    fns = _topological(loss.grad_fn)
    index = {fn: i for i, fn in enumerate(fns)}
    names = {id(p): n for n, p in model.named_parameters()}
    nodes = [
        Node(
            index=i,
            op=type(fn).__name__,
            parents=[index[p] for p, _ in fn.next_functions if p is not None],
            label=names.get(id(getattr(fn, "variable", None)), ""),
        )
        for i, fn in enumerate(fns)
    ]
    for fn, node in zip(fns, nodes):
        for p in (index[p] for p, _ in fn.next_functions if p is not None):
            nodes[p].depth = max(nodes[p].depth, node.depth + 1)  # fns are in topological order

    def hook(grad_inputs, grad_outputs, node):
        node.receives = _shape(grad_outputs[0]) if grad_outputs else None
        # grad_inputs[j] goes to next_functions[j]; keep those with a node behind them.
        targets = [p for p, _ in fns[node.index].next_functions]
        node.sends = [_shape(g) for g, p in zip(grad_inputs, targets) if p is not None]

    handles = [
        fn.register_hook(lambda gi, go, node=node: hook(gi, go, node))
        for fn, node in zip(fns, nodes)
    ]
    try:
        # A throwaway backward: gradients land in .grad, which gradcheck already read.
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    return nodes


def _fmt(shape: tuple[int, ...] | None) -> str:
    return "x".join(map(str, shape)) if shape else "-"


def format_graph(nodes: list[Node]) -> str:
    """A table of the nodes (loss first) and a count by operation."""
    ops = [f"{n.op} ({n.label})" if n.label else n.op for n in nodes]
    w = max(len(op) for op in ops) + 1
    lines = ["  autograd graph (loss first; each node sends a VJP to each parent):"]
    lines.append(f"  {'#':>3}  {'operation':<{w}} {'parents':<10} {'receives':<10} sends back")
    for n, op in zip(nodes, ops):
        parents = ",".join(map(str, n.parents)) or "-"
        sends = ", ".join(_fmt(s) for s in n.sends) or "- (adds into .grad)"
        lines.append(f"  {n.index:>3}  {op:<{w}} {parents:<10} {_fmt(n.receives):<10} {sends}")
    counts = Counter(n.op for n in nodes)
    lines.append(
        "  nodes by operation: " + ", ".join(f"{op} {c}" for op, c in counts.most_common())
    )
    return "\n".join(lines)


def _positions(nodes: list[Node]) -> dict[int, tuple[float, float]]:
    """A layered layout: one row per depth, loss on top, nodes spread evenly in their row."""
    rows: dict[int, list[Node]] = {}
    for n in nodes:
        rows.setdefault(n.depth, []).append(n)
    width = max(len(r) for r in rows.values())
    return {
        n.index: ((i + 0.5) * width / len(row), -depth)
        for depth, row in rows.items()
        for i, n in enumerate(row)
    }


def draw(nodes: list[Node], path: str | Path) -> Path:
    """Draw the graph to an image file with matplotlib (no graphviz needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = _positions(nodes)
    width = max(x for x, _ in pos.values()) + 0.5
    depth = max(n.depth for n in nodes) + 1
    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * width), max(4.0, 1.1 * depth)))
    for n in nodes:
        for parent, shape in zip(n.parents, n.sends or [None] * len(n.parents)):
            (x0, y0), (x1, y1) = pos[n.index], pos[parent]
            ax.annotate(
                "",
                xy=(x1, y1 + 0.15),
                xytext=(x0, y0 - 0.15),
                arrowprops={"arrowstyle": "->", "color": "0.5"},
            )
            ax.text(
                (x0 + x1) / 2, (y0 + y1) / 2, _fmt(shape), fontsize=6, color="tab:blue", ha="center"
            )
    for n in nodes:
        x, y = pos[n.index]
        text = n.op.replace("Backward0", "") + (f"\n{n.label}" if n.label else "")
        color = "honeydew" if n.op == "AccumulateGrad" else "lavender"
        ax.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=7,
            bbox={"boxstyle": "round", "fc": color},
        )
    ax.set_xlim(-0.2, width + 0.2)
    ax.set_ylim(-depth + 0.5, 0.5)
    ax.axis("off")
    ax.set_title("autograd graph of the loss (arrows: vector-Jacobian products, backward)")
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    runs.atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight"))
    plt.close(fig)
    return path
