"""Claims measured and decided: an experiment's expected outcomes, and `dlrun check`.

A claim's form (its keys, validation at compose time, its words) is part of the
config schema (dlrun.config.claims). Here: measures (the number a claim bounds,
per setting over its seeds), decide (the verdict), render (verdicts in a
terminal or a page), check (`dlrun check`: run an experiment's sweep, decide).
A new claim form: its keys in dlrun.config.claims, its measure and its
decision here.

May import the layers below it: sweeps, run, trackers, toolbox, data, config,
results, paths, folders, placement, errors (pyproject.toml's contract).
"""
