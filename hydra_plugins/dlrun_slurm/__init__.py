"""dlrun's SLURM launcher: `dlrun train -m hydra/launcher=slurm ...` (docs/sweeps.md).

Hydra 1.3 instantiates launchers only from the `hydra_plugins` namespace
package, so this lives beside dlrun, not inside it. Hydra imports the public
module (slurm_launcher.py) at every start-up: it imports Hydra and the submitit
plugin's config only; SLURM commands, submitit and dlrun load when a sweep runs.

slurm_launcher.py  the config (ConfigStore `hydra/launcher/dlrun_slurm`) and the launcher class
_cluster.py        what SLURM can grant and what it is doing (sinfo, squeue, scancel), Hydra-free
_driver.py         the sweep's side: skip finished jobs, size and submit the rest, wait, never hang
_job.py            the task's side: SLURM's warning signal -> requeue from last.pt, or `timeout`
_stack.py          hydra.launcher.stack: which jobs share a task (driver), a stack in the task
"""
