"""The command line, the top layer: `dlrun <command>` parsed and dispatched.

main (the command table and `dlrun train`'s entry), argv (how `dlrun train`'s
words become Hydra overrides, the run/sweep split, resume requests), completion
(tab completion), catalog (`dlrun list`), schema_help (`dlrun train --help`).
A new subcommand is a module with `main(args) -> int` named in main.COMMANDS.

May import every layer below it; nothing imports it.
"""
