"""The lecture's toolbox: the parts a run is built from.

models (mlp, cnn1d, cnn2d, deep_linear, custom), initializers (xavier, he,
lecun, orthogonal, ...), optim (optimizers by name, learning-rate schedules),
augment, transfer (start from another run's weights), diagnostics (per-layer
gradient and activation statistics), bias_variance (the decomposition),
gradcheck and autograd_graph (`dlrun gradcheck`), memory (a model too large
for the machine, refused before it is allocated). A new model, initializer,
optimizer or schedule goes here, and its name in dlrun.config.choices.

May import data, config, results and the bottom layers.
"""
