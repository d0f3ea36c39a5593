"""Data sets: where samples come from, and tensors on the device.

datasets (built-in sets and the user's files: mnist1d, digits, moons, circles,
spirals, regression, quadratic, table, npz, custom), quadratic (the
ill-conditioned least-squares problem), tensors (split, standardise, move,
batch by permutation). A new data set is a builder in datasets.BUILDERS and
its name in dlrun.config.choices.

May import config, results and the bottom layers.
"""
