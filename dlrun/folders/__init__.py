"""The run-folder contract, the bottom layer: file names, statuses, atomic writes, the sweep index.

runs (what a run folder holds and how each file is written: docs/run-folder.md),
sweep_index (sweep.csv at a sweep's root), sweep_table (the table at the end
of a sweep), safe (every file read from a folder, as untrusted input, and
writes that never follow a link), provenance (versions, commit, host).
Everything dlrun writes goes through here, and `dlrun report` reads only what
this defines.

May import dlrun.errors and dlrun.placement only.
"""
