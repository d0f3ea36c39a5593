"""`hydra/launcher=batched`: the launcher class and its config in Hydra's ConfigStore.

No `from __future__ import annotations` here: Hydra's plugin scan runs this
module before it is in sys.modules, where dataclasses look string annotations up.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class BatchedLauncherConf:
    _target_: str = "hydra_plugins.dlrun_batched.batched_launcher.BatchedLauncher"
    # Replicas per stack at most (null: as many as fit in half the device's available
    # memory, dlrun.sweeps.replicas.stack_limit). Larger groups train as several stacks in turn.
    max_replicas: int | None = None
    # Draw dropout masks exactly as each job alone would (torch's bernoulli_, about four
    # times dearer on a CPU); false: an equally valid stream of their own (docs/sweeps.md).
    exact_dropout: bool = False


ConfigStore.instance().store(
    group="hydra/launcher", name="batched", node=BatchedLauncherConf, provider="dlrun"
)


class BatchedLauncher(Launcher):
    """Jobs that differ only in values train together as one stacked model, in this process."""

    def __init__(self, max_replicas: int | None = None, exact_dropout: bool = False) -> None:
        self.max_replicas, self.exact_dropout = max_replicas, exact_dropout
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra_plugins.dlrun_batched._compose import ComposingLoader

        # The sweeper composes every job to validate the batch before it launches it, in
        # this process: with this loader each job is composed once (_compose.py).
        if not isinstance(hydra_context.config_loader, ComposingLoader):
            hydra_context.config_loader = ComposingLoader(hydra_context.config_loader)
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from hydra_plugins.dlrun_batched._core import launch  # dlrun and torch: only now

        return launch(self, job_overrides, initial_job_idx)
