"""`dlrun list [experiments]`: every config group with its choices, and the experiment library."""

from __future__ import annotations

from dlrun.errors import UsageError


def main(args: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    from dlrun.config.choices import CHOICES
    from dlrun.config.experiments import list_experiments

    console = Console()
    if args and args[0] not in ("experiments", "groups"):
        raise UsageError(f"dlrun list {args[0]!r}: choose `dlrun list` or `dlrun list experiments`")
    if not args or args[0] == "groups":
        table = Table(title="config groups (dlrun train <group>=<choice>)")
        for column in ("group", "choice", "what it is"):
            table.add_column(column)
        for group, choices in CHOICES.items():
            for i, (choice, (description, _)) in enumerate(choices.items()):
                table.add_row(group if i == 0 else "", choice, description)
            table.add_section()
        console.print(table)
    table = Table(title="experiments (dlrun train -m experiment=<name>)")
    for column in ("experiment", "what it shows"):
        table.add_column(column)
    for name, purpose in list_experiments():
        table.add_row(name, purpose)
    console.print(table)
    return 0
