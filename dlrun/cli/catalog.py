"""`dlrun list [experiments|launchers|<group>]`: config groups and their choices, how a sweep
runs, the experiments."""

from __future__ import annotations

from dlrun.errors import UsageError

# How `dlrun train -m` runs its jobs (hydra/launcher=) and picks them (hydra/sweeper=):
# Hydra's own, the plugins of the `sweeps` extra, dlrun's presets (conf/hydra/) and
# dlrun's launchers (hydra_plugins/). tests/cli/test_main.py keeps this list complete.
LAUNCHERS = {
    "basic": "Hydra's own: one job after another in this process (the default)",
    "parallel": "local jobs at once through joblib: one per GPU, else one per CPU core, "
    "each with its share of the threads (dlrun's preset)",
    "batched": "jobs of one shape (seeds, lr...) trained as one stacked model in one loop",
    "slurm": "a SLURM job array, sized from the jobs; requeued at the time limit, resumed "
    "from last.pt (dlrun's preset)",
    "dlrun_slurm": "the launcher behind slurm, with the plugin's own defaults",
    "joblib": "Hydra's joblib plugin as shipped (parallel sizes it for this machine)",
    "submitit_local": "Hydra's submitit plugin: local processes, as SLURM would run them",
    "submitit_slurm": "Hydra's submitit plugin for SLURM as shipped (slurm is dlrun's)",
}
SWEEPERS = {
    "basic": "every combination of the comma lists (the default)",
    "search": "Optuna's TPE over lr, weight decay, width and depth, 20 trials; the "
    "objective is best_<monitor> (dlrun's preset)",
    "optuna": "Hydra's Optuna plugin as shipped: give its params and direction yourself",
}
WHAT = {"groups", "experiments", "launchers"}


def main(args: list[str]) -> int:
    from rich.console import Console

    from dlrun.config.choices import CHOICES

    console = Console()
    if args and args[0] not in WHAT:
        group = args[0].removesuffix("s") if args[0].removesuffix("s") in CHOICES else None
        if group is not None:  # `dlrun list optimizers`: that group's choices alone
            console.print(groups([group]))
            return 0
        from dlrun.config.keys import choice_suggestion

        meant = choice_suggestion(args[0], sorted(WHAT | set(CHOICES)))
        raise UsageError(
            f"dlrun list {args[0]!r}{meant} (choose from: {', '.join(sorted(WHAT))}, "
            f"or a group: {', '.join(CHOICES)})"
        )
    shown = [args[0]] if args else ["groups", "launchers", "experiments"]
    for what in shown:
        console.print(
            {"groups": groups, "launchers": launchers, "experiments": experiments}[what]()
        )
    return 0


def groups(only: list[str] | None = None):
    from rich.table import Table

    from dlrun.config.choices import CHOICES

    table = Table(title="config groups (dlrun train <group>=<choice>)", title_justify="left")
    for column in ("group", "choice", "what it is"):
        table.add_column(column)
    for group, choices in CHOICES.items():
        if only is not None and group not in only:
            continue
        for i, (choice, (description, _)) in enumerate(choices.items()):
            table.add_row(group if i == 0 else "", choice, description)
        table.add_section()
    return table


def launchers():
    from rich.table import Table

    table = Table(
        title="sweeps (dlrun train -m hydra/launcher=<choice> hydra/sweeper=<choice>; docs/sweeps.md)",
        title_justify="left",
    )
    for column in ("group", "choice", "what it does"):
        table.add_column(column)
    for group, choices in (("hydra/launcher", LAUNCHERS), ("hydra/sweeper", SWEEPERS)):
        for i, (choice, description) in enumerate(choices.items()):
            table.add_row(group if i == 0 else "", choice, description)
        table.add_section()
    return table


def experiments():
    from rich.table import Table

    from dlrun.config.experiments import list_experiments

    table = Table(title="experiments (dlrun train -m experiment=<name>)", title_justify="left")
    for column in ("experiment", "what it shows"):
        table.add_column(column)
    for name, purpose in list_experiments():
        table.add_row(name, purpose)
    return table
