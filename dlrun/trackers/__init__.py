"""Trackers: extra sinks of a run's numbers (TensorBoard, MLflow), never the source of truth.

loggers (the tracker registry and the calls the loop makes), background (each
tracker in its own thread: no wait on a server is unbounded), log_tensorboard,
log_mlflow, mlflow_parent (a sweep's parent run and its untrusted record),
numbers (values as short as the run computed them, dated when they were),
export (`dlrun export`: finished run folders copied into a tracker).
A new tracker is a module with the same functions as log_tensorboard, named in
loggers.TRACKERS.

May import toolbox, data, config, results and the bottom layers.
"""
