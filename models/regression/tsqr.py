"""Tall-skinny QR of the weighted, centred ``[X | y]``: one pass, never forming X'X.

Each block of rows is centred on its own weighted mean and reduced to an R factor by Householder
QR (LAPACK ``geqrf`` through numpy). Two partial results merge exactly (Chan's parallel-variance
update, in factor form): stack both R factors and the scaled difference of the means and factor
again. So a partition, and then the reduction tree, combine into the R of the globally centred
data without a second pass, and the condition number is never squared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QRPartial:
    """The sufficient statistics of a set of rows for weighted least squares."""

    count: int  # rows with positive weight
    weight_sum: float
    weight_sq_sum: float
    mean: np.ndarray  # weighted mean of [X | y], shape (d + 1,)
    r: np.ndarray  # upper-trapezoidal R of sqrt(w) * ([X | y] - mean), shape (<= d + 1, d + 1)


def _r_factor(rows: np.ndarray) -> np.ndarray:
    return np.linalg.qr(rows, mode="r")


def block_partial(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> QRPartial | None:
    """The partial of one block of rows; rows of zero weight do not count."""
    keep = w > 0
    if not keep.all():
        x, y, w = x[keep], y[keep], w[keep]
    if len(w) == 0:
        return None
    xy = np.column_stack((x, y))
    weight_sum = float(w.sum())
    mean = w @ xy / weight_sum
    centred = xy - mean
    # A second sweep of the mean removes the rounding of the first (matters for Filip-like data).
    correction = w @ centred / weight_sum
    mean = mean + correction
    centred -= correction
    r = _r_factor(centred * np.sqrt(w)[:, None])
    return QRPartial(len(w), weight_sum, float(w @ w), mean, r)


def merge_partials(a: QRPartial | None, b: QRPartial | None) -> QRPartial | None:
    """The partial of the union of two row sets (exact in exact arithmetic, backward stable)."""
    if a is None or b is None:
        return a if b is None else b
    weight_sum = a.weight_sum + b.weight_sum
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.weight_sum / weight_sum)
    shift = np.sqrt(a.weight_sum * b.weight_sum / weight_sum) * delta
    r = _r_factor(np.vstack((a.r, b.r, shift[None, :])))
    return QRPartial(a.count + b.count, weight_sum, a.weight_sq_sum + b.weight_sq_sum, mean, r)


def partition_partial(blocks: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]
                      ) -> QRPartial | None:
    """Reduce one partition's blocks to a single partial (the executor side of the pass)."""
    result = None
    for x, y, w in blocks:
        result = merge_partials(result, block_partial(x, y, w))
    return result


def uncentred_r(partial: QRPartial) -> np.ndarray:
    """R of sqrt(w) * [X | y] without centring (for fits through the origin)."""
    row = np.sqrt(partial.weight_sum) * partial.mean
    return _r_factor(np.vstack((partial.r, row[None, :])))
