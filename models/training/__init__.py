"""Horovod data-parallel training: the worker loop (rank side) and its launchers (driver side).

The driver writes a :class:`~models.training.task.TrainTask` and starts N copies of
:mod:`models.training.worker` with one of the launchers; the workers read their own
shards of a pinned Delta table and report back through files (or return values on Spark).
"""
