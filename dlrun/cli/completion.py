"""Tab completion: `eval "$(dlrun train -sc install=bash)"` (Hydra's script, asking dlrun).

Each TAB runs `dlrun -sc query=bash` with the line in COMP_LINE. Hydra's own
answer composes the whole config in that new process (seconds a keypress);
dlrun answers from the schema's key list instead (dlrun.config.keys, no Hydra
and no composition: a tenth of a second), and asks Hydra only for a line with
--config-dir, whose YAML choices only Hydra can list.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

FOLDER_KEYS = ("resume", "transfer.source", "hydra.sweep.dir")  # values that are run folders
TRAIN_FLAGS = ["-m", "--multirun", "--help", "--cfg", "--info", "--config-dir"]
MAX_FOLDERS = 200


def complete(argv: list[str], commands: list[str], train_main: Callable[[list[str]], int]) -> int:
    """Subcommands for the first word; keys, choices and run folders after train and
    gradcheck; experiments after check; nothing after report, runs and export's
    paths (the shell then completes paths, as `complete -o default` says)."""
    if not any(arg.startswith("query=") for arg in argv[1:]):
        return train_main(argv)  # install= / uninstall=: Hydra's own script
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    typed = "" if line.endswith(" ") or len(words) < 2 else words[-1]
    if len(words) < 2 or (len(words) == 2 and typed):
        print(" ".join(c for c in commands if c.startswith(typed)))
        return 0
    command = words[1]
    if command in ("train", "gradcheck"):
        if {"--config-dir", "-cd"} & set(words):  # the user's own YAML choices: Hydra knows them
            os.environ["COMP_LINE"] = re.sub(r"^(\S+)\s+\S+", r"\1", line)  # overrides alone
            return train_main(argv)
        print(" ".join(train_words(typed)))
    elif command == "check":
        print(" ".join(check_words(typed, words)))
    elif command == "export" and (len(words) == 2 or (len(words) == 3 and typed)):
        print("tensorboard mlflow")
    elif command == "list" and (len(words) == 2 or (len(words) == 3 and typed)):
        print("groups launchers experiments")
    return 0


def group_choices() -> dict[str, list[str]]:
    """Every group a user types `group=choice` for, with its choices."""
    from dlrun.cli.catalog import LAUNCHERS, SWEEPERS
    from dlrun.config.choices import CHOICES
    from dlrun.config.experiments import experiment_files

    groups = {group: list(choices) for group, choices in CHOICES.items()}
    groups["experiment"] = [p.stem for p in experiment_files()]
    groups["hydra/launcher"], groups["hydra/sweeper"] = list(LAUNCHERS), list(SWEEPERS)
    return groups


def train_words(typed: str) -> list[str]:
    """What `dlrun train <typed><TAB>` may become: the next level of a key, a choice, a folder."""
    if typed.startswith("-"):
        return [flag for flag in TRAIN_FLAGS if flag.startswith(typed)]
    sign = re.match(r"[+~]*", typed).group()  # +key= and ~key keep their sign
    at = typed.find("=")
    if at >= 0:
        key, value = typed[len(sign) : at], typed[at + 1 :]
        if key in FOLDER_KEYS:
            return [f"{typed[: at + 1]}{folder}" for folder in folders(value)]
        choices = group_choices().get(key, [])
        return [f"{typed[: at + 1]}{c}" for c in choices if c.startswith(value)]
    from dlrun.config.keys import all_keys

    rest = typed[len(sign) :]
    keys = [*all_keys(), "experiment", "hydra/launcher", "hydra/sweeper", "quick"]
    shown: dict[str, None] = {}
    for key in keys:
        if key.startswith(rest):
            dot = key.find(".", len(rest))
            shown[sign + (key[: dot + 1] if dot >= 0 else f"{key}=")] = None  # trainer. / seed=
    return list(shown)


def folders(typed: str) -> list[str]:
    """The folders under what has been typed of a path, each with a trailing `/`."""
    head, _, start = typed.rpartition("/")
    base = Path(head or ".")
    try:
        names = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name.startswith(start))
    except OSError:
        return []
    prefix = f"{head}/" if head else ""
    return [f"{prefix}{name}/" for name in names if not name.startswith(".")][:MAX_FOLDERS]


def check_words(typed: str, words: list[str]) -> list[str]:
    """`dlrun check <TAB>`: the experiments, then quick=true and the options."""
    from dlrun.config.experiments import experiment_files

    if len(words) >= 3 and words[-1 if typed else -2] == "--on":
        return []  # a sweep folder: the shell completes paths
    if typed.startswith("-"):
        return [flag for flag in ("--all", "--quick", "--on") if flag.startswith(typed)]
    names = [p.stem for p in experiment_files()] + ["quick=true"]
    return [name for name in names if name.startswith(typed)]
