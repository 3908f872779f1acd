"""Logistic maximum likelihood by (proximal) Newton: one data pass per iteration.

Each pass evaluates the log-loss, its gradient and its Hessian at the current coefficients; a
partition computes X' diag(w p (1 - p)) X as one BLAS-3 product per Arrow block and the partials
sum up the reduction tree. Newton converges quadratically, so a fit to a gradient of 1e-8 takes
about as many passes as it has iterations (under ten on ordinary data), where MLlib's L-BFGS takes
tens. A backtracking (Armijo) line search keeps every step a descent step; with an L1 part the
step is the proximal Newton step, the elastic-net quadratic solved by coordinate descent.

A search never runs a pass itself: it yields the points it needs and is sent their sums, so
several searches (a ``regParam`` path) advance together on one pass per step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

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


def point_partial(coefficients: np.ndarray, xa: np.ndarray, x: np.ndarray, y: np.ndarray,
                  w: np.ndarray) -> tuple[np.ndarray, ...]:
    """One block at one point: (loss, sum w, sum w^2, rows), gradient, Hessian, sum w x,
    sum w x^2; ``xa`` is ``x`` with the intercept's column of ones when there is one."""
    eta = xa @ coefficients
    p = expit(eta)
    loss = w @ (np.logaddexp(0.0, eta) - y * eta)
    curvature = w * p * (1.0 - p)
    return (np.array([loss, w.sum(), w @ w, len(w)]), xa.T @ (w * (p - y)),
            xa.T @ (xa * curvature[:, None]), w @ x, w @ (x * x))


def newton_partials(points: list[np.ndarray], fit_intercept: bool, blocks: Blocks
                    ) -> list[tuple[np.ndarray, ...]] | None:
    """Executor side of a pass: :func:`point_partial` at every point, one read of the rows."""
    out = None
    for x, y, w in blocks:
        check_binary_labels(y)
        xa = np.column_stack((x, np.ones(len(y)))) if fit_intercept else x
        parts = [point_partial(point, xa, x, y, w) for point in points]
        out = parts if out is None else sum_partial_lists(out, parts)
    return out


def sum_partial_lists(a: list | None, b: list | None) -> list | None:
    """The merge of a pass's partials: point by point."""
    if a is None or b is None:
        return a if b is None else b
    return [sum_partials(left, right) for left, right in zip(a, b, strict=True)]


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
    """The penalised objective: builds states from the partial sums of a pass."""

    def __init__(self, d: int, fit_intercept: bool, reg_param: float, elastic_net: float,
                 standardization: bool) -> None:
        self.d, self.fit_intercept = d, fit_intercept
        self.reg_param, self.elastic_net, self.standardization = (reg_param, elastic_net,
                                                                  standardization)
        self.l1 = self.l2 = np.zeros(d + int(fit_intercept))

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


# A Newton search yields the points it needs evaluated and is sent each point's partial sums.
Search = Generator[np.ndarray, tuple, NewtonResult]


def newton_search(d: int, *, fit_intercept: bool, reg_param: float, elastic_net: float,
                  standardization: bool, max_iter: int, tol: float) -> Search:
    """Minimise mean log-loss + elastic-net penalty from zero, one evaluated point at a time.

    The search does no pass itself: a driver (:func:`run_searches`) evaluates the points it
    yields, so that several searches can share each pass over the data.
    """
    problem = _Problem(d, fit_intercept, reg_param, elastic_net, standardization)
    start = np.zeros(d + int(fit_intercept))
    partial = yield start
    passes = 1
    std = problem.set_penalty(partial)
    state = problem.state(start, partial)
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
            point = state.coefficients + step * direction
            trial = problem.state(point, (yield point))
            passes += 1
            slack = 1e-15 * abs(state.objective)
            if trial.objective <= state.objective + ARMIJO * step * decrease + slack:
                break
            step /= 2
        else:
            break
        state, iterations = trial, iterations + 1
        history.append(state.objective)
    return NewtonResult(state, history, iterations, passes, count)


def run_searches(run_pass: Callable[..., list | None], searches: list[Search],
                 fit_intercept: bool) -> tuple[list[NewtonResult | DataError], int]:
    """Drive ``searches`` together: every pass evaluates each unfinished search's next point
    (a point several ask for, such as the shared start, once).

    Returns each search's result, or the :class:`DataError` it raised, and the passes made:
    the longest search's, not the sum.
    """
    outcomes: dict[int, NewtonResult | DataError] = {}
    wanted: dict[int, np.ndarray] = {}

    def advance(index: int, partial: tuple | None) -> None:
        try:
            wanted[index] = searches[index].send(partial)
        except StopIteration as finished:
            outcomes[index] = finished.value
            wanted.pop(index, None)
        except DataError as error:
            outcomes[index] = error
            wanted.pop(index, None)

    for index in range(len(searches)):
        advance(index, None)
    passes = 0
    while wanted:
        points = list({point.tobytes(): point for point in wanted.values()}.values())
        where = {point.tobytes(): i for i, point in enumerate(points)}
        partials = run_pass(functools.partial(newton_partials, points, fit_intercept),
                            sum_partial_lists)
        passes += 1
        for index, point in list(wanted.items()):
            advance(index, partials[where[point.tobytes()]])
    return [outcomes[index] for index in range(len(searches))], passes


def fit_newton(run_pass: Callable[..., list | None], d: int, **options: Any) -> NewtonResult:
    """One Newton fit (:func:`newton_search` with ``options``); one pass per evaluation."""
    (outcome,), _ = run_searches(run_pass, [newton_search(d, **options)],
                                 options["fit_intercept"])
    if isinstance(outcome, DataError):
        raise outcome
    return outcome
