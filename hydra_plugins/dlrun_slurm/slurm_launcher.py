"""`hydra/launcher=slurm`: hydra-submitit-launcher's SlurmLauncher, made to run as shipped.

conf/hydra/launcher/slurm.yaml picks this config; docs/sweeps.md explains each
key. No `from __future__ import annotations` here: Hydra's plugin scan runs
this module before it is in sys.modules, where dataclasses look string
annotations up.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from omegaconf import DictConfig

try:
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
except ImportError:  # without dlrun[sweeps] there is no SLURM launcher to extend
    SlurmQueueConf = SlurmLauncher = None

# dlrun's own keys beside the plugin's: the launcher uses them, sbatch never sees them
OWN_KEYS = (
    "nodes_have_gpus",
    "poll_s",
    "pending_every_s",
    "lost_after_s",
    "stack",
    "exact_dropout",
)

if SlurmQueueConf is not None:

    @dataclass
    class DlrunSlurmConf(SlurmQueueConf):
        _target_: str = "hydra_plugins.dlrun_slurm.slurm_launcher.DlrunSlurmLauncher"
        # device=auto asks for a GPU only when this says the cluster's nodes have them
        nodes_have_gpus: bool = False
        # seconds between the driver's looks at squeue (lost jobs, pending reasons)
        poll_s: float = 10.0
        # a job still pending has its reason printed this often (seconds)
        pending_every_s: float = 60.0
        # a job gone from the queue (or finished there) without a result is lost after this
        lost_after_s: float = 45.0
        # jobs per SLURM task: those the batched launcher would stack train as one stack
        stack: int = 1
        # with stack > 1: dropout masks drawn exactly as each job alone would, so every
        # replica's folder equals its solo run's (false: the batched launcher's faster default)
        exact_dropout: bool = True

    ConfigStore.instance().store(
        group="hydra/launcher", name="dlrun_slurm", node=DlrunSlurmConf, provider="dlrun"
    )

    class DlrunSlurmLauncher(SlurmLauncher):
        """One SLURM array of the sweep's unfinished jobs, sized from the jobs, watched to the end."""

        def __init__(self, **params: Any) -> None:
            self.own = {key: params.pop(key) for key in OWN_KEYS if key in params}
            super().__init__(**params)

        def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
            from hydra_plugins.dlrun_batched._compose import ComposingLoader

            # The sweeper composes every job to validate the batch, the driver again to size
            # and pack it, a stacked task again to train it: each composed once (_compose.py).
            if not isinstance(hydra_context.config_loader, ComposingLoader):
                hydra_context.config_loader = ComposingLoader(hydra_context.config_loader)
            super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

        @staticmethod
        def before_sweep(config: DictConfig) -> None:
            """Refuse (UsageError) a request no node can ever grant, before the sweep folder exists."""
            from hydra_plugins.dlrun_slurm import _driver

            _driver.check_sweep(config)

        def launch(
            self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
        ) -> Sequence[JobReturn]:
            from hydra_plugins.dlrun_slurm import _driver

            return _driver.launch(self, job_overrides, initial_job_idx)

        def __call__(self, *args: Any) -> JobReturn:  # in the SLURM task
            from hydra_plugins.dlrun_slurm import _job

            return _job.call(self, super().__call__, *args)

        def job_config(self, overrides: Sequence[str], job_num: int) -> DictConfig:
            """Job `job_num`'s config as its task composes it (its run folder, device, threads)."""
            from omegaconf import open_dict

            assert self.hydra_context is not None and self.config is not None
            loader = self.hydra_context.config_loader
            cfg = loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg.hydra.job) as job:
                job.num = job_num
            return cfg
