"""A run that fails while it is being set up is bad input: one line naming the step, exit 2.

Building the data, the model, its initialisation, the optimizer or the schedule
runs before the run folder is written, so whatever goes wrong there (a custom
model with no parameters, an initial value that overflows float32, a data file
of ragged rows, a GPU too small) is reported as the setting that caused it and
leaves no folder, as a typo in a key does.
"""

from __future__ import annotations

from dlrun.errors import ConfigError

# The function `setup` called when it failed, and the setting the user would change.
STEPS = {
    "build_dataset": "data",
    "build_model": "model",
    "initialize": "init",
    "apply_transfer": "transfer",
    "to": "device",
    "build_optimizer": "optimizer",
    "build_schedule": "schedule",
    "build_augment": "data.augment",
    "forward_of": "trainer.compile",
    "configure": "trainer",
    "check_loggers": "logger",
}


class SetupFailed(ConfigError):
    """A step of setting up a run raised: the step and the cause in one line."""


def refused(error: Exception, cfg=None) -> SetupFailed:
    """`error`, raised inside dlrun.run.runner.setup, as one line naming the step that failed."""
    names, tb = [], error.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    # the first step below `setup` (a decorator such as torch.no_grad may sit between)
    below = names[names.index("setup") + 1 :] if "setup" in names else []
    step = next((STEPS[name] for name in below if name in STEPS), None)
    setting = step or "setting up the run"
    if step and cfg is not None and step in ("data", "model", "init", "optimizer", "schedule"):
        name = cfg.get(step, {}).get("name") if hasattr(cfg, "get") else None
        setting = f"{step}={name}" if name else step
    cause = (str(error).strip().splitlines() or [""])[0][:300]
    return SetupFailed(f"{setting}: {type(error).__name__}: {cause}".rstrip(": "))
