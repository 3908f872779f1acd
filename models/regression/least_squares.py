"""Driver-side least squares from the TSQR factor: solve, rank check, refinement, statistics.

The data are seen only through ``QRPartial`` (R of the centred ``[X | y]``) and, for the optional
refinement pass, through ``residual_partial``. Columns are scaled to unit norm before any solve:
QR is invariant to column scaling in exact arithmetic, and the scaled triangle gives honest
condition estimates for the rank check and for deciding whether a refinement pass is worth it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack, qr, solve_triangular

from models.regression.blocks import DataError
from models.regression.enet import solve_quadratic_enet
from models.regression.tsqr import QRPartial, uncentred_r

# Reciprocal condition number of the column-scaled R below which the design counts as rank
# deficient: Filip, the hardest NIST set, has 2e-10; exactly dependent columns give ~1e-16.
RANK_RCOND = 1e-13


@dataclass(frozen=True)
class LeastSquaresFit:
    """A solution with what the statistics and the refinement pass need."""

    coefficients: np.ndarray
    intercept: float
    scaled_r: np.ndarray  # R of the column-scaled design (d x d)
    scales: np.ndarray  # column norms used for the scaling
    rss: float  # weighted residual sum of squares
    tss: float  # weighted total sum of squares (centred iff an intercept is fitted)
    objective: float
    sweeps: int  # coordinate-descent sweeps (0 when solved directly)
    ls_condition: float  # estimated condition number of the least-squares problem


def square_r(r: np.ndarray, size: int) -> np.ndarray:
    """Pad a trapezoidal R (fewer rows than columns) with zero rows to size x size."""
    out = np.zeros((size, size))
    out[: r.shape[0]] = r[:size]
    return out


def triangular_condition(r: np.ndarray) -> float:
    """LAPACK's O(d^2) estimate of the 1-norm condition number of an upper triangle."""
    if r.size == 0:
        return 1.0
    rcond, info = lapack.dtrcon(r, norm="1", uplo="U")
    return np.inf if info != 0 or rcond == 0 else 1.0 / rcond


def check_full_rank(scaled: np.ndarray, scales: np.ndarray) -> float:
    """Raise naming the dependent columns if the scaled R is (numerically) singular."""
    constant = np.flatnonzero(scales == 0)
    if constant.size:
        raise DataError(f"rank-deficient design: feature(s) {constant.tolist()} are constant "
                        "(zero after centring) and cannot be estimated")
    condition = triangular_condition(scaled)
    if condition * RANK_RCOND < 1:
        return condition
    _, pivoted, order = qr(scaled, pivoting=True)
    diagonal = np.abs(np.diag(pivoted))
    rank = int(np.sum(diagonal > RANK_RCOND * diagonal[0]))
    dependent = sorted(order[rank:].tolist())
    raise DataError(f"rank-deficient design (numerical rank {rank} of {len(scales)}): feature(s) "
                    f"{dependent} are linear combinations of the others; drop them or use "
                    "regParam > 0")


def label_std_denominator(partial: QRPartial) -> float:
    """The unbiased weighted-variance denominator W - sum(w^2)/W that MLlib's summarizer uses."""
    denominator = partial.weight_sum - partial.weight_sq_sum / partial.weight_sum
    return denominator if denominator > 0 else partial.weight_sum


def solve_least_squares(partial: QRPartial, *, fit_intercept: bool, reg_param: float,
                        elastic_net: float, standardization: bool, tol: float,
                        max_iter: int) -> LeastSquaresFit:
    """Coefficients from the R factor; regularised problems in MLlib's scaled formulation."""
    d = partial.mean.size - 1
    r = square_r(partial.r if fit_intercept else uncentred_r(partial), d + 1)
    rxx, rxy, ryy = r[:d, :d], r[:d, d], abs(r[d, d])
    tss = float(np.sum(rxy**2) + ryy**2)
    if reg_param == 0:
        scales = np.linalg.norm(rxx, axis=0)
        scaled = rxx / np.where(scales == 0, 1.0, scales)
        condition = check_full_rank(scaled, scales)
        coefficients = solve_triangular(scaled, rxy) / scales
        rss = float(ryy**2)
        tan_theta = ryy / max(np.linalg.norm(rxy), np.finfo(float).tiny)
        ls_condition = condition * (1.0 + condition * tan_theta)
        objective = 0.5 * rss / partial.weight_sum / _label_variance(partial)
        sweeps = 0
    else:
        centred = square_r(partial.r, d + 1)
        scales = np.linalg.norm(centred[:d, :d], axis=0)
        coefficients, objective, sweeps = _regularised(
            rxx, rxy, ryy, scales, partial, reg_param, elastic_net, standardization, tol,
            max_iter)
        residual = np.concatenate((rxy - rxx @ coefficients, [ryy]))
        rss = float(residual @ residual)
        scaled = rxx / np.where(scales == 0, 1.0, scales)
        ls_condition = np.nan
    intercept = _intercept(partial, coefficients, fit_intercept)
    return LeastSquaresFit(coefficients, intercept, scaled, scales, rss, tss, objective, sweeps,
                           ls_condition)


def _label_variance(partial: QRPartial) -> float:
    centred_yy = float(np.sum(partial.r[:, -1] ** 2))
    variance = centred_yy / label_std_denominator(partial)
    return variance if variance > 0 else 1.0


def _intercept(partial: QRPartial, coefficients: np.ndarray, fit_intercept: bool) -> float:
    if not fit_intercept:
        return 0.0
    return float(partial.mean[-1] - partial.mean[:-1] @ coefficients)


def _regularised(rxx: np.ndarray, rxy: np.ndarray, ryy: float, centred_norms: np.ndarray,
                 partial: QRPartial, reg_param: float, elastic_net: float,
                 standardization: bool, tol: float, max_iter: int
                 ) -> tuple[np.ndarray, float, int]:
    """MLlib's objective in standardised units, c_j = b_j * std_j / std_y:

    1/(2W) ||y/std_y - X/std c||^2 + regParam/std_y * (a * |p c|_1 + (1 - a)/2 * |p c|^2),
    p_j = 1 with standardization, else 1/std_j. Constant features get coefficient 0.
    Ridge is solved by QR of the R factor stacked on the penalty rows (no Gram matrix);
    with an L1 part, coordinate descent runs on the d x d Gram matrix of R (no data pass).
    """
    denominator = label_std_denominator(partial)
    std = centred_norms / np.sqrt(denominator)
    label_std = np.sqrt(_label_variance(partial))
    live = std > 0
    a = rxx[:, live] / std[live]
    t = rxy / label_std
    penalty = np.ones(int(live.sum())) if standardization else 1.0 / std[live]
    weight_sum = partial.weight_sum
    effective = reg_param / label_std  # MLlib's effectiveRegParam
    l2 = effective * (1.0 - elastic_net) * penalty**2
    l1 = effective * elastic_net * penalty
    if elastic_net == 0:
        stacked = np.vstack((a, np.diag(np.sqrt(weight_sum * l2))))
        q_r = np.linalg.qr(stacked)
        c = solve_triangular(q_r[1], q_r[0].T @ np.concatenate((t, np.zeros(a.shape[1]))))
        sweeps = 0
    else:
        gram = a.T @ a / weight_sum
        c, sweeps = solve_quadratic_enet(gram, a.T @ t / weight_sum, l1, l2,
                                         np.zeros(a.shape[1]), tol=min(tol, 1e-10),
                                         max_sweeps=max(max_iter, 1) * 100)
    residual = np.concatenate((t - a @ c, [ryy / label_std]))
    objective = float(0.5 * residual @ residual / weight_sum
                      + np.sum(l1 * np.abs(c)) + 0.5 * np.sum(l2 * c**2))
    coefficients = np.zeros(len(std))
    coefficients[live] = c * label_std / std[live]
    return coefficients, objective, sweeps


def residual_partial(mean: np.ndarray, coefficients: np.ndarray,
                     blocks: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]
                     ) -> tuple[np.ndarray, float] | None:
    """Executor side of the refinement pass: (X_c' W r, sum w r^2) at ``coefficients``.

    The residual of the centred data (``mean`` is zero for fits through the origin) is formed in
    extended precision: on ill-conditioned data it is the small difference of large terms.
    """
    gradient, rss = None, 0.0
    wide = np.longdouble
    for x, y, w in blocks:
        xc = x.astype(wide) - mean[:-1].astype(wide)
        r = (y.astype(wide) - wide(mean[-1])) - xc @ coefficients.astype(wide)
        wr = w.astype(wide) * r
        part = xc.T @ wr
        gradient = part if gradient is None else gradient + part
        rss += float(wr @ r)
    return None if gradient is None else (gradient, rss)


def refine(fit: LeastSquaresFit, partial: QRPartial, fit_intercept: bool,
           residuals: tuple[np.ndarray, float]) -> LeastSquaresFit:
    """One step of iterative refinement by the corrected semi-normal equations.

    R'R dc = X'W r with the residual from the second pass; the new RSS follows exactly from the
    least-squares identity |r - X dc|^2 = |r|^2 - |R dc|^2.
    """
    gradient, rss = residuals
    scales = fit.scales
    rhs = np.asarray(gradient, dtype=np.float64) / scales
    z = solve_triangular(fit.scaled_r, rhs, trans="T")
    step_scaled = solve_triangular(fit.scaled_r, z)
    coefficients = fit.coefficients + step_scaled / scales
    new_rss = max(float(rss) - float(z @ z), 0.0)
    objective = 0.5 * new_rss / partial.weight_sum / _label_variance(partial)
    return LeastSquaresFit(coefficients, _intercept(partial, coefficients, fit_intercept),
                           fit.scaled_r, scales, new_rss, fit.tss, objective, fit.sweeps,
                           fit.ls_condition)
