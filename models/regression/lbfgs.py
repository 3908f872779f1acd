"""The quasi-Newton path for many features: L-BFGS with distributed gradients.

Above ``maxDenseFeatures`` a d x d factor per partition costs more than it saves, so each
iteration only sums a d-vector gradient over the data (one pass per function evaluation). The
problem is posed as MLlib poses it, in standardised units: features centred (with an intercept)
and divided by their standard deviation, and, for least squares, the label too. The L1 part uses
the split c = u - v, u, v >= 0, which L-BFGS-B handles with bounds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from models.regression.blocks import data_error

Blocks = Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]


def moments_partial(blocks: Blocks) -> tuple[np.ndarray, ...] | None:
    """Executor side of the moments pass: sum w, sum w^2, sum w [x|y], sum w [x|y]^2, rows."""
    out = None
    for x, y, w in blocks:
        xy = np.column_stack((x, y))
        part = (np.array([w.sum(), w @ w, len(w)]), w @ xy, w @ (xy * xy))
        out = part if out is None else tuple(a + b for a, b in zip(out, part, strict=True))
    return out


def sum_partials(a: tuple | None, b: tuple | None) -> tuple | None:
    """Element-wise sum of two tuples of arrays (the merge of every additive pass)."""
    if a is None or b is None:
        return a if b is None else b
    return tuple(left + right for left, right in zip(a, b, strict=True))


@dataclass(frozen=True)
class Moments:
    weight_sum: float
    weight_sq_sum: float
    count: int
    mean: np.ndarray  # of [x | y]
    std: np.ndarray  # unbiased weighted standard deviation of [x | y]


def moments_from(partial: tuple[np.ndarray, ...]) -> Moments:
    (weight_sum, weight_sq_sum, count), sums, squares = partial
    mean = sums / weight_sum
    denominator = weight_sum - weight_sq_sum / weight_sum
    variance = np.maximum(squares / weight_sum - mean**2, 0.0) * weight_sum / max(denominator,
                                                                                  1e-300)
    return Moments(weight_sum, weight_sq_sum, int(count), mean, np.sqrt(variance))


def check_binary_labels(y: np.ndarray) -> None:
    if np.any((y != 0.0) & (y != 1.0)):
        raise data_error(f"logistic regression needs labels 0 or 1, found {np.unique(y)[:5]}")


def loss_gradient_partial(family: str, shift: np.ndarray, scale: np.ndarray, label_shift: float,
                          label_scale: float, coefficients: np.ndarray, intercept: float,
                          blocks: Blocks) -> tuple[np.ndarray, ...] | None:
    """Executor side of one L-BFGS evaluation: loss sum and gradients over c and b0, in
    standardised units."""
    out = None
    for x, y, w in blocks:
        xs = (x - shift) / scale
        eta = xs @ coefficients + intercept
        if family == "logistic":
            check_binary_labels(y)
            loss = w @ (np.logaddexp(0.0, eta) - y * eta)
            g = w * (expit(eta) - y)
        else:
            r = eta - (y - label_shift) / label_scale
            loss = 0.5 * (w @ (r * r))
            g = w * r
        part = (np.array([loss, g.sum()]), xs.T @ g)
        out = part if out is None else tuple(a + b for a, b in zip(out, part, strict=True))
    return out


@dataclass(frozen=True)
class LbfgsResult:
    coefficients: np.ndarray  # standardised units
    intercept: float
    objective_history: list[float]
    iterations: int
    passes: int
    loss: float  # the unpenalised data term, loss sum / W, at the solution


def minimize_lbfgs(evaluate: Callable[[np.ndarray, float], tuple[float, np.ndarray, float]],
                   d: int, *, fit_intercept: bool, l1: np.ndarray, l2: np.ndarray,
                   weight_sum: float, max_iter: int, tol: float) -> LbfgsResult:
    """Minimise loss/W + l1.|c| + 1/2 l2.c^2; ``evaluate(c, b0)`` is one data pass returning the
    loss sum and its gradients over c and b0."""
    use_l1 = bool(np.any(l1 > 0))
    history: list[float] = []
    passes = [0]
    losses: dict[bytes, float] = {}

    def split(z: np.ndarray) -> tuple[np.ndarray, float]:
        c = z[:d] - z[d:2 * d] if use_l1 else z[:d]
        return c, (float(z[-1]) if fit_intercept else 0.0)

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        c, b0 = split(z)
        loss, grad_c, grad_b0 = evaluate(c, b0)
        passes[0] += 1
        losses[z.tobytes()] = loss / weight_sum
        value = loss / weight_sum + 0.5 * float(l2 @ (c * c))
        smooth = grad_c / weight_sum + l2 * c
        parts = [smooth]
        if use_l1:
            value += float(l1 @ (z[:d] + z[d:2 * d]))
            parts = [smooth + l1, -smooth + l1]
        if fit_intercept:
            parts.append([grad_b0 / weight_sum])
        return value, np.concatenate(parts)

    def record(intermediate_result) -> None:  # scipy passes the state by this keyword
        history.append(float(intermediate_result.fun))

    size = (2 * d if use_l1 else d) + (1 if fit_intercept else 0)
    bounds = [(0.0, None)] * (2 * d) + [(None, None)] * (size - 2 * d) if use_l1 else None
    result = minimize(objective, np.zeros(size), jac=True, method="L-BFGS-B", bounds=bounds,
                      callback=record,
                      options={"maxiter": max_iter, "gtol": tol, "ftol": tol * 1e-3,
                               "maxcor": 10})
    c, b0 = split(result.x)
    if result.x.tobytes() not in losses:  # a point the optimiser never evaluated: one more pass
        objective(result.x)
    loss = losses[result.x.tobytes()]
    return LbfgsResult(c, b0, history or [float(result.fun)], int(result.nit), passes[0], loss)


def distributed_evaluator(run_pass: Callable[..., tuple | None], family: str,
                          shift: np.ndarray, scale: np.ndarray, label_shift: float,
                          label_scale: float
                          ) -> Callable[[np.ndarray, float], tuple[float, np.ndarray, float]]:
    """``evaluate(c, b0)`` for ``minimize_lbfgs``: one ``loss_gradient_partial`` pass."""

    def evaluate(c: np.ndarray, b0: float) -> tuple[float, np.ndarray, float]:
        reduce = functools.partial(loss_gradient_partial, family, shift, scale, label_shift,
                                   label_scale, np.array(c), b0)
        (loss, grad_b0), grad_c = run_pass(reduce, sum_partials)
        return float(loss), grad_c, float(grad_b0)

    return evaluate


@dataclass(frozen=True)
class StandardisedFit:
    """An L-BFGS fit mapped back to the original units."""

    coefficients: np.ndarray
    intercept: float
    result: LbfgsResult
    moments: Moments
    passes: int  # including the moments pass


def fit_lbfgs(run_pass: Callable[..., tuple | None], family: str, *, fit_intercept: bool,
              reg_param: float, elastic_net: float, standardization: bool, max_iter: int,
              tol: float) -> StandardisedFit:
    """One moments pass, then L-BFGS in MLlib's standardised units; coefficients unscaled.

    For least squares with an intercept the centred problem has intercept zero exactly, so only
    the slopes are optimised and b0 = mean(y) - mean(x).b afterwards.
    """
    moments = moments_from(run_pass(moments_partial, sum_partials))
    mean_x, std_x = moments.mean[:-1], moments.std[:-1]
    scale = np.where(std_x > 0, std_x, 1.0)
    shift = mean_x if fit_intercept else np.zeros_like(mean_x)
    linear = family == "linear"
    label_scale = float(moments.std[-1]) if linear and moments.std[-1] > 0 else 1.0
    label_shift = float(moments.mean[-1]) if linear and fit_intercept else 0.0
    penalty = np.ones_like(scale) if standardization else 1.0 / scale
    reg_param = reg_param / label_scale  # MLlib's effectiveRegParam (label_scale is 1 for logit)
    evaluate = distributed_evaluator(run_pass, family, shift, scale, label_shift, label_scale)
    result = minimize_lbfgs(evaluate, len(scale), fit_intercept=fit_intercept and not linear,
                            l1=reg_param * elastic_net * penalty,
                            l2=reg_param * (1.0 - elastic_net) * penalty**2,
                            weight_sum=moments.weight_sum, max_iter=max_iter, tol=tol)
    coefficients = result.coefficients * label_scale / scale
    intercept = label_shift + result.intercept - float(shift @ coefficients)
    return StandardisedFit(coefficients, intercept, result, moments, result.passes + 1)
