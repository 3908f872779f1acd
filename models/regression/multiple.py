"""``fitMultiple`` that shares data passes: a path reads the data as often as its longest fit.

``pyspark.ml``'s ``Estimator.fitMultiple`` (what ``CrossValidator`` and
``TrainValidationSplit`` call, and what the pipeline calls for its ``regParam`` grid) fits
each param map on its own, so k maps cost k times the passes. When the maps change only
how the optimum is found (penalty, tolerance, iteration cap), not which rows and columns
go in, our estimators share the passes: the linear fits solve from one R factor, and the
logistic Newton searches advance in lockstep, each pass evaluating every search's next
point.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from pyspark.ml.param import Param

# Params that change the rows, columns or shape of what a pass computes: maps that set any
# of these are fitted one by one.
DATA_PARAMS = frozenset({"featuresCol", "labelCol", "weightCol", "fitIntercept", "solver",
                         "maxDenseFeatures", "aggregationDepth"})

M = TypeVar("M")


def shares_passes(param_maps: Sequence[dict[Param, Any]]) -> bool:
    """Whether ``param_maps`` differ only in solver settings, so their fits can share passes."""
    return not any(param.name in DATA_PARAMS for param_map in param_maps for param in param_map)


class FitIterator(Generic[M]):
    """The ``(index, model)`` iterator ``fitMultiple`` returns, safe to advance from threads.

    ``CrossValidator`` with ``parallelism > 1`` calls ``next`` from a thread pool. Indices
    come in order; an index whose fit fails raises from its own ``next`` and the iterator
    goes on with the next index.
    """

    def __init__(self, fit_one: Callable[[int], M], count: int) -> None:
        self._fit_one, self._count = fit_one, count
        self._next = 0
        self._lock = threading.Lock()

    def __iter__(self) -> FitIterator[M]:
        return self

    def __next__(self) -> tuple[int, M]:
        with self._lock:
            index = self._next
            if index >= self._count:
                raise StopIteration
            self._next += 1
        return index, self._fit_one(index)


def once(compute: Callable[[], M]) -> Callable[[], M]:
    """``compute`` run on the first call only (under a lock); later calls return its result."""
    lock, result = threading.Lock(), []

    def cached() -> M:
        with lock:
            if not result:
                result.append(compute())
        return result[0]

    return cached
