"""Logistic maximum likelihood by (proximal) Newton: one data pass per iteration.

Each pass evaluates the log-loss, its gradient and its Hessian at the current coefficients; a
partition computes X' diag(w p (1 - p)) X as one BLAS-3 product per Arrow block and the partials
sum up the reduction tree. Newton converges quadratically, so a fit to a gradient of 1e-8 takes
about as many passes as it has iterations (under ten on ordinary data), where MLlib's L-BFGS takes
tens. A backtracking (Armijo) line search keeps every step a descent step; with an L1 part the
step is the proximal Newton step, the elastic-net quadratic solved by coordinate descent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.special import expit

from models.regression.blocks import DataError
from models.regression.enet import solve_quadratic_enet
from models.regression.lbfgs import Blocks, check_binary_labels, sum_partials

# A Gram/Hessian eigenvalue below this fraction of the largest marks a dependent direction.
HESSIAN_RCOND = 1e-15
ARMIJO = 1e-4
MAX_HALVINGS = 30


def newton_partial(coefficients: np.ndarray, fit_intercept: bool, blocks: Blocks
                   ) -> tuple[np.ndarray, ...] | None:
    """Executor side: (loss, sum w, sum w^2, rows), gradient, Hessian, sum w x, sum w x^2."""
    out = None
    for x, y, w in blocks:
        check_binary_labels(y)
        xa = np.column_stack((x, np.ones(len(y)))) if fit_intercept else x
        eta = xa @ coefficients
        p = expit(eta)
        loss = w @ (np.logaddexp(0.0, eta) - y * eta)
        curvature = w * p * (1.0 - p)
        part = (np.array([loss, w.sum(), w @ w, len(w)]), xa.T @ (w * (p - y)),
                xa.T @ (xa * curvature[:, None]), w @ x, w @ (x * x))
        out = part if out is None else sum_partials(out, part)
    return out


@dataclass(frozen=True)
class NewtonState:
    """The objective and its derivatives at one point (one pass)."""

    coefficients: np.ndarray  # slopes then intercept, original units
    objective: float  # loss/W + penalty
    gradient: np.ndarray  # of the smooth part, per unit weight
    hessian: np.ndarray  # of the smooth part, per unit weight
    information: np.ndarray  # the unnormalised Fisher information X'diag(w p(1-p))X


@dataclass(frozen=True)
class NewtonResult:
    state: NewtonState
    objective_history: list[float]
    iterations: int
    passes: int
    count: int


class _Problem:
    """The penalised objective over the data: builds states from passes."""

    def __init__(self, run_pass: Callable[..., tuple], d: int, fit_intercept: bool,
                 reg_param: float, elastic_net: float, standardization: bool) -> None:
        self.run_pass, self.d, self.fit_intercept = run_pass, d, fit_intercept
        self.reg_param, self.elastic_net, self.standardization = (reg_param, elastic_net,
                                                                  standardization)
        self.passes = 0
        self.l1 = self.l2 = np.zeros(d + int(fit_intercept))

    def evaluate(self, coefficients: np.ndarray) -> tuple[NewtonState, tuple]:
        """One pass: the state at ``coefficients`` and the raw partial sums it came from."""
        reduce = functools.partial(newton_partial, coefficients, self.fit_intercept)
        partial = self.run_pass(reduce, sum_partials)
        self.passes += 1
        return self.state(coefficients, partial), partial

    def state(self, coefficients: np.ndarray, partial: tuple) -> NewtonState:
        (loss, weight_sum, _, _), gradient, hessian, _, _ = partial
        l1_part = float(self.l1 @ np.abs(coefficients))
        objective = loss / weight_sum + 0.5 * float(self.l2 @ coefficients**2) + l1_part
        return NewtonState(coefficients, objective,
                           gradient / weight_sum + self.l2 * coefficients,
                           hessian / weight_sum + np.diag(self.l2), hessian)

    def set_penalty(self, partial: tuple) -> np.ndarray:
        """Penalty weights from the first pass's moments (MLlib penalises standardised slopes)."""
        (_, weight_sum, weight_sq_sum, _), _, _, sums, squares = partial
        mean = sums / weight_sum
        denominator = max(weight_sum - weight_sq_sum / weight_sum, 1e-300)
        std = np.sqrt(np.maximum(squares - weight_sum * mean**2, 0.0) / denominator)
        penalty = std if self.standardization else np.ones(self.d)
        if self.fit_intercept:
            penalty = np.append(penalty, 0.0)
        self.l1 = self.reg_param * self.elastic_net * penalty
        self.l2 = self.reg_param * (1.0 - self.elastic_net) * penalty**2
        return std

    def optimality(self, state: NewtonState, std: np.ndarray) -> float:
        """Largest entry of the minimum-norm subgradient, in standardised units (scale-free)."""
        g, b = state.gradient, state.coefficients
        subgradient = np.where(b != 0, g + self.l1 * np.sign(b),
                               np.sign(g) * np.maximum(np.abs(g) - self.l1, 0.0))
        scale = np.append(std, 1.0) if self.fit_intercept else std
        return float(np.max(np.abs(subgradient * np.where(scale > 0, scale, 1.0)), initial=0.0))

    def direction(self, state: NewtonState) -> np.ndarray:
        if np.any(self.l1 > 0):
            h = state.hessian
            target, _ = solve_quadratic_enet(h, h @ state.coefficients - state.gradient, self.l1,
                                             np.zeros_like(self.l1), state.coefficients)
            return target - state.coefficients
        return -solve_scaled(state.hessian, state.gradient)


def solve_scaled(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve a symmetric positive (semi)definite system after Jacobi scaling."""
    scale = np.sqrt(np.where(np.diag(matrix) > 0, np.diag(matrix), 1.0))
    scaled = matrix / np.outer(scale, scale)
    try:
        solution = cho_solve(cho_factor(scaled), rhs / scale)
    except LinAlgError:
        solution = np.linalg.lstsq(scaled, rhs / scale, rcond=None)[0]
    return solution / scale


def check_identifiable(information: np.ndarray, d: int) -> None:
    """Raise naming the features that are linear combinations of others (Hessian at start)."""
    diagonal = np.diag(information)
    constant = [j for j in range(d) if diagonal[j] == 0]
    if constant:
        raise DataError(f"rank-deficient design: feature(s) {constant} are all zero")
    scale = np.sqrt(diagonal)
    values, vectors = np.linalg.eigh(information / np.outer(scale, scale))
    null = vectors[:, values < HESSIAN_RCOND * values[-1]]
    if null.size:
        involved = sorted({int(j) for j in np.nonzero(np.abs(null) > 1e-3)[0]})
        names = [("intercept" if j == d else j) for j in involved]
        raise DataError(f"rank-deficient design: features {names} are linearly dependent "
                        "(constant columns are dependent on the intercept); drop one or use "
                        "regParam > 0")


def fit_newton(run_pass: Callable[..., tuple], d: int, *, fit_intercept: bool,
               reg_param: float, elastic_net: float, standardization: bool, max_iter: int,
               tol: float) -> NewtonResult:
    """Minimise mean log-loss + elastic-net penalty from zero; one pass per evaluation."""
    problem = _Problem(run_pass, d, fit_intercept, reg_param, elastic_net, standardization)
    start, partial = problem.evaluate(np.zeros(d + int(fit_intercept)))
    std = problem.set_penalty(partial)
    state = problem.state(start.coefficients, partial)  # now with the penalty's curvature
    count = int(partial[0][3])
    if reg_param == 0:
        check_identifiable(state.information, d)
    history, iterations = [state.objective], 0
    while iterations < max_iter and problem.optimality(state, std) > tol:
        direction = problem.direction(state)
        decrease = float(state.gradient @ direction) + float(
            problem.l1 @ (np.abs(state.coefficients + direction) - np.abs(state.coefficients)))
        step = 1.0
        for _ in range(MAX_HALVINGS):
            trial, _ = problem.evaluate(state.coefficients + step * direction)
            slack = 1e-15 * abs(state.objective)
            if trial.objective <= state.objective + ARMIJO * step * decrease + slack:
                break
            step /= 2
        else:
            break
        state, iterations = trial, iterations + 1
        history.append(state.objective)
    return NewtonResult(state, history, iterations, problem.passes, count)
