"""dlrun: a command-line runner for deep-learning experiments."""

__version__ = "0.1.0"
