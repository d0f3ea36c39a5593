"""Configuration: the schema, the named choices, composition with Hydra, validation.

schema (typed dataclasses in Hydra's ConfigStore: every key and default),
choices (the named group choices: model=, init=, optimizer=, data=, ...),
claims (a claim's form: the `claims:` of an experiment file), compose (Hydra's
compose and the override grammar), resolvers, validate (value ranges),
keys (every key a user can type, a mistyped key's meaning, the choices' types),
hydra_errors (Hydra's errors in the user's words), experiments (the files
under experiments/). A new key goes in schema, a new choice in choices.

May import results, paths and the bottom layers; Hydra is imported here and
in the layers above it, never below.
"""
