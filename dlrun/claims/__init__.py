"""Claims measured and decided: an experiment's expected outcomes, and `dlrun check`.

A claim's form (its keys, validation at compose time, its words) is part of the
config schema (dlrun.config.claims). Here: measures (the number a claim bounds,
per setting, one per seed), stats (one-sided t bounds, the bootstrap over
seeds, Holm), quantities (a claim's form as estimates and tests), decide (the
verdicts), render (verdicts in a terminal or a page), check (`dlrun check`:
run an experiment's sweep, decide). A new claim form: its keys in
dlrun.config.claims, its measure and its estimate here, and its error rate
simulated in tests/claims/test_error_rate.py.

May import the layers below it: sweeps, run, trackers, toolbox, data, config,
results, paths, folders, placement, errors (pyproject.toml's contract).
"""
