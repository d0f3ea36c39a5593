"""Tab completion: `eval "$(dlrun train -sc install=bash)"` (Hydra's script, asking dlrun)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable


def complete(argv: list[str], commands: list[str], train_main: Callable[[list[str]], int]) -> int:
    """`eval "$(dlrun train -sc install=bash)"` installs Hydra's script, which asks
    `dlrun -sc query=bash` with the line in COMP_LINE: subcommands for the first
    word, Hydra's keys and choices after train/gradcheck, nothing after report,
    runs and export (the shell then completes paths, as `complete -o default` says).
    """
    if not any(arg.startswith("query=") for arg in argv[1:]):
        return train_main(argv)  # install= / uninstall=: Hydra's own script
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    if len(words) < 2 or (len(words) == 2 and not line.endswith(" ")):
        typed = words[1] if len(words) == 2 else ""
        print(" ".join(c for c in commands if c.startswith(typed)))
        return 0
    command = words[1]
    if command in ("train", "gradcheck"):
        # Hydra sees the overrides alone: drop the subcommand word
        os.environ["COMP_LINE"] = re.sub(r"^(\S+)\s+\S+", r"\1", line)
        return train_main(argv)
    if command == "export" and (len(words) == 2 or (len(words) == 3 and not line.endswith(" "))):
        print("tensorboard mlflow")
    elif command == "list" and len(words) <= 3:
        print("experiments")
    return 0
