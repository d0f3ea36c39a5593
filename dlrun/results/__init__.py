"""Run folders read back: `load_runs`, the Study table, and `dlrun runs`.

load (run folders into pandas frames, every file checked), study (runs grouped
into settings and seeds, the formatting of mean ± std), listing (`dlrun runs`,
the newest sweep). The read side of the run-folder contract: report, claims
and trackers' export share it.

May import paths, folders, placement and errors: nothing that trains.
"""
