"""Transfer learning: start from another run's best weights, freeze some layers, reset the head.

Called by `run()` after the model is built and initialised and before it moves
to the device, so a tensor that is not loaded keeps the configured init
(`reset_head` keeps the head's fresh initialisation that way).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlrun.config.schema import TransferConfig
from dlrun.errors import ConfigError, TransferError
from dlrun.folders import runs


def ensure_source(
    cfg: Any, train: Callable[[Any, Path], dict], source_config: Callable[[], Any]
) -> None:
    """Train the transfer source first unless it finished, when `transfer.pretrain` says how.

    `source_config()` composes the source's config (dlrun.config.compose: this run's
    command line with the pretrain overrides after it); its transfer settings
    are reset here, so the source is an ordinary run. Parallel sweep jobs
    share one source: the first takes the lock and trains, the others wait for
    it and then find the source finished. The lock is the kernel's (filelock):
    a job killed while pretraining drops it, and the next job trains the source.
    """
    from filelock import FileLock

    folder = Path(cfg.transfer.source).expanduser()
    if not cfg.transfer.pretrain or runs.is_finished(folder):
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(folder.with_name(folder.name + ".lock")):
        if runs.is_finished(folder):  # trained by the job that held the lock
            return
        source = source_config()
        source.transfer.source, source.transfer.pretrain = None, []
        source.transfer.freeze, source.transfer.reset_head = [], False
        source.resume = None
        source.name = folder.name
        print(f"dlrun: pretraining the transfer source into {folder}")
        train(source, folder)


def source_checkpoint(source: str) -> Path:
    """The best.pt of a run folder (a .pt file is taken as is)."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    best = runs.best_checkpoint(path)
    if not path.is_dir():
        raise TransferError(f"transfer.source={source}: no such run folder")
    if not best.is_file():
        raise TransferError(
            f"transfer.source={source}: no {runs.CHECKPOINTS}/{runs.BEST} in that folder"
        )
    return best


def load_state(path: Path) -> dict[str, torch.Tensor]:
    from dlrun.folders import safe

    # a run folder's checkpoint stays inside it; a file the user named may be anywhere
    root = path.parent.parent if path.parent.name == runs.CHECKPOINTS else None
    try:
        with safe.open_checkpoint(path, safe.CHECKPOINT_CAP, root) as f:
            ckpt = torch.load(f, map_location="cpu", weights_only=True)
    except TransferError:
        raise
    except ConfigError as e:
        raise TransferError(f"transfer.source: {e}") from None
    except Exception as e:  # a truncated or foreign file: one line, not a traceback
        raise TransferError(f"transfer.source: cannot read {path} ({type(e).__name__})") from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TransferError(f"transfer.source: {path} holds no model state dict")
    return state


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def load_matching(model: nn.Module, source: dict[str, torch.Tensor], skip: list[str]) -> dict:
    """Copy every source tensor whose name and shape match; say why each other one was not."""
    loaded, skipped = [], []
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if any(_matches(name, prefix) for prefix in skip):
                skipped.append({"name": name, "reason": "reset_head"})
            elif name not in source:
                skipped.append({"name": name, "reason": "not in source"})
            elif source[name].shape != tensor.shape:
                shapes = f"{tuple(source[name].shape)} in source, {tuple(tensor.shape)} here"
                skipped.append({"name": name, "reason": f"shape {shapes}"})
            else:
                tensor.copy_(source[name])  # state_dict tensors share storage with the model
                loaded.append(name)
    unused = sorted(set(source) - set(model.state_dict()))
    return {"loaded": loaded, "skipped": skipped, "unused": unused}


def freeze(model: nn.Module, prefixes: list[str]) -> list[str]:
    """requires_grad=False for parameters under the prefixes (`features`: all but the head)."""
    names = [name for name, _ in model.named_parameters()]
    frozen = []
    for prefix in prefixes:
        hits = [n for n in names if _matches(n, prefix)]
        if not hits:
            layers = sorted({n.rsplit(".", 1)[0] for n in names})
            raise TransferError(
                f"transfer.freeze: {prefix!r} matches no parameter; layers: {layers}"
            )
        frozen += [n for n in hits if n not in frozen]
    params = dict(model.named_parameters())
    for name in frozen:
        params[name].requires_grad_(False)
    return frozen


def describe(report: dict[str, Any]) -> str:
    """The one-line report printed at start-up."""
    line = (
        f"dlrun: transfer from {report['source']}: loaded {len(report['loaded'])} tensors, "
        f"skipped {len(report['skipped'])}, froze {len(report['frozen'])} parameters"
    )
    shape_skips = [s["name"] for s in report["skipped"] if s["reason"].startswith("shape")]
    if shape_skips:
        line += f" (shape mismatch: {', '.join(shape_skips)})"
    return line


def apply_transfer(model: nn.Module, cfg: TransferConfig, load: bool = True) -> dict[str, Any]:
    """Load, reset and freeze as `cfg` says; returns the report for summary.json.

    `load=False` only freezes: a resumed run's weights come from its own last.pt.
    """
    if not load:
        return {"source": cfg.source, "frozen": freeze(model, list(cfg.freeze))}
    path = source_checkpoint(cfg.source)
    skip = ["head"] if cfg.reset_head else []
    if cfg.reset_head and not any(_matches(name, "head") for name in model.state_dict()):
        # a custom model without dlrun's features + head split (docs/custom.md)
        top = sorted({name.split(".")[0] for name in model.state_dict()})
        raise TransferError(
            f"transfer.reset_head: this model has no `head` module (it has {top}); "
            "name its output layer `head`, or leave reset_head off"
        )
    report = {"source": str(path), **load_matching(model, load_state(path), skip)}
    report["frozen"] = freeze(model, list(cfg.freeze))
    report["reset_head"] = bool(cfg.reset_head)
    print(describe(report))
    return report


def pretrain_source(cfg: Any, task_overrides: Sequence[str], train: Callable) -> None:
    """Train a transfer source first when `transfer.pretrain` says how and it has no checkpoint.

    The source's config is this run's command line composed again with the
    pretrain overrides after it, so `transfer.pretrain=[model=cnn1d]` picks a
    group choice exactly as on the command line.
    """
    if not cfg.transfer.source or not cfg.transfer.pretrain:
        return
    from dlrun.config.compose import compose
    from dlrun.config.hydra_errors import describe_hydra_error
    from dlrun.errors import UsageError

    def source_config() -> Any:
        try:
            return compose([*task_overrides, *cfg.transfer.pretrain])
        except UsageError:
            raise
        except Exception as e:
            raise TransferError(f"transfer.pretrain: {describe_hydra_error(e)}") from None

    ensure_source(cfg, train, source_config)
