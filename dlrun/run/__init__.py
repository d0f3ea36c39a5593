"""One run: `run(cfg, run_dir)` from a composed config to a finished run folder.

runner (setup: data, model, init, optimizer, trackers, the folder; the one call
into the library), train (the epoch loop: train, evaluate, early stop,
checkpoint), checkpoints, resume (`resume=<folder>`), signals (Ctrl-C, SIGTERM,
SLURM's warning), progress (the terminal), runlog (run.log), speed (precision,
torch.compile, cuDNN), refusal (a set-up error as one line naming the step, exit 2).

May import trackers, toolbox, data, config, results and the bottom layers.
"""
