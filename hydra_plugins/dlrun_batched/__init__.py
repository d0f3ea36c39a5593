"""dlrun's launcher plugin: `dlrun train -m ... hydra/launcher=batched` (docs/sweeps.md).

Hydra 1.3 loads launchers only from the `hydra_plugins` namespace package, so
this lives beside dlrun, not inside it. Hydra imports every public module here
at each start-up: they import Hydra only; dlrun and torch load when a sweep launches.
"""
