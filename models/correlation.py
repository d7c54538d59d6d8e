"""How strongly a common cause moves the customers' deliveries: the one-factor rho.

``models.dispatch`` simulates correlated delivery with a one-factor Gaussian copula: in an
event, unit ``i`` delivers (achievement >= the settlement threshold) when
``sqrt(rho) z + sqrt(1 - rho) eps_i < t_i``, ``t_i = Phi^-1(p_i)``, with ``z`` shared by every
unit of the event (a heat wave, a production rush) and ``eps_i`` its own. Given ``z`` the
units are independent, each delivering with probability

    q_i(z) = Phi((t_i - sqrt(rho) z) / sqrt(1 - rho)).

``estimate_correlation`` fits rho to the settled events of events.csv (one row per customer
and event: ``delivered = actual_kw / target_kw >= threshold``) by maximum likelihood: the
likelihood of event ``k``'s indicators ``d_ik`` is

    L_k(rho) = integral of prod_i q_i(z)^d_ik (1 - q_i(z))^(1 - d_ik) phi(z) dz

(the marginal likelihood of a random-intercept probit model [1]_), evaluated on a fine grid
of ``z`` (trapezoid rule on [-7, 7], 0.05 apart: the integrand steepens as rho grows), and
``sum_k log L_k`` is maximised over rho in [0, ``max_rho``] (a grid, then bounded Brent).
``p_i`` is each customer's Beta-shrunk delivered share
(``models.dispatch.historical_reliability``). Only events with at least two settled
customers say anything about rho; with fewer than ``min_events`` of them the estimate is 0
(independent: today's behaviour) and says so.

Assumptions, stated: the customers' rho is applied to resources (one resource or one
customer responds to the common cause alike); ``p_i`` is constant per customer, so event
conditions that lower everyone's chance (short notice, an evening window) count as common
cause; rho is clipped to ``max_rho`` (0.9 by default): perfectly co-moving histories are
few events, and 0.9 is already near "all or nothing".

References
----------
.. [1] Hedeker, D. and Gibbons, R. D. (1994), "A random-effects ordinal regression model for
   multilevel analysis", Biometrics 50(4): the marginal likelihood by quadrature over the
   random effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_ndtr, logsumexp, ndtri

from forecasting.errors import MissingColumnsError
from forecasting.settlement import SettlementRule
from models.dispatch import historical_reliability, settled_reductions

Z_NODES = np.linspace(-7.0, 7.0, 281)
_LOG_WEIGHTS = np.log(np.full(Z_NODES.size, Z_NODES[1] - Z_NODES[0])) - 0.5 * (
    Z_NODES ** 2 + np.log(2 * np.pi))
_LOG_WEIGHTS[[0, -1]] += np.log(0.5)  # trapezoid ends
P_CLIP = 1e-4  # keeps t_i finite for a customer that always (or never) delivered


@dataclass(frozen=True)
class CorrelationEstimate:
    """The fitted rho and what it rests on.

    ``rho``: common-factor correlation (0..``max_rho``); ``n_events``: events with >= 2
    settled customers used; ``n_rows``: their (event, customer) rows; ``n_customers``;
    ``lr_statistic``: ``2 (log L(rho) - log L(0))``, large (> 3.84, the 5 % chi-square(1)
    point, halved at the boundary) when the history shows a common cause; ``note``: how it
    was made, in a sentence.
    """

    rho: float
    n_events: int
    n_rows: int
    n_customers: int
    lr_statistic: float
    note: str

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _independent(note: str, n_events: int = 0, n_rows: int = 0, n_customers: int = 0
                 ) -> CorrelationEstimate:
    return CorrelationEstimate(0.0, n_events, n_rows, n_customers, 0.0, note)


def log_likelihood(rho: float, threshold: np.ndarray, delivered: np.ndarray,
                   event: np.ndarray, n_events: int) -> float:
    """``sum_k log L_k(rho)`` (module doc) of rows ``threshold`` = ``t_i``, ``delivered``
    (bool) and ``event`` (0..n_events-1, sorted)."""
    a, b = np.sqrt(rho), np.sqrt(1.0 - rho)
    sign = np.where(delivered, 1.0, -1.0)[:, None]
    rows = log_ndtr(sign * (threshold[:, None] - a * Z_NODES[None, :]) / b)
    starts = np.flatnonzero(np.r_[True, event[1:] != event[:-1]])
    per_event = np.add.reduceat(rows, starts, axis=0)
    return float(logsumexp(per_event + _LOG_WEIGHTS[None, :], axis=1).sum())


def estimate_correlation(events: pd.DataFrame | None, rule: SettlementRule | None = None,
                         before=None, *, max_rho: float = 0.9, min_events: int = 5,
                         prior_strength: float = 5.0) -> CorrelationEstimate:
    """rho of the settled events in ``events`` (events.csv rows), by maximum likelihood.

    Uses the rows a reduction plan learns from (``historical_reliability``: settled
    ``actual_kw``, ``target_kw > 0``, ended by ``before`` when given: no leakage). Returns
    rho 0 with the reason when fewer than ``min_events`` events have two or more settled
    customers. Method and assumptions in the module doc.
    """
    rule = rule or SettlementRule()
    if not 0.0 <= max_rho < 1.0:
        raise ValueError(f"max_rho {max_rho} must lie in [0, 1)")
    if events is None or events.empty:
        return _independent("no settled events: resources taken as independent (rho 0)")
    missing = [c for c in ("event_id", "customer_id", "target_kw", "end") if c not in events]
    if missing:
        raise MissingColumnsError(f"events: missing column(s) {missing} for the correlation "
                                  "estimate", missing)
    if "actual_kw" not in events:
        return _independent("events.csv has no actual_kw: no settled event, rho 0")
    settled = settled_reductions(events, before)
    rows = pd.DataFrame({"event_id": settled["event_id"].astype(str),
                         "customer_id": settled["customer_id"].astype(str),
                         "delivered": (settled["actual_kw"] / settled["target_kw"]).to_numpy()
                         >= rule.min_achievement_ratio})
    rows = rows.drop_duplicates(["event_id", "customer_id"], keep="last")
    size = rows.groupby("event_id")["customer_id"].transform("size")
    rows = rows[size >= 2].sort_values("event_id", kind="stable").reset_index(drop=True)
    n_events = rows["event_id"].nunique()
    n_customers = rows["customer_id"].nunique()
    if n_events < min_events:
        return _independent(f"{n_events} settled event(s) with two or more customers (fewer "
                            f"than {min_events}): resources taken as independent (rho 0)",
                            n_events, len(rows), n_customers)
    reliability = historical_reliability(events, rule, prior_strength, before=before)
    p = rows["customer_id"].map(reliability["p_deliver"]).to_numpy(dtype="float64")
    threshold = ndtri(np.clip(p, P_CLIP, 1.0 - P_CLIP))
    delivered = rows["delivered"].to_numpy(dtype=bool)
    event = pd.factorize(rows["event_id"])[0]

    def nll(rho: float) -> float:
        return -log_likelihood(rho, threshold, delivered, event, n_events)

    grid = np.linspace(0.0, max_rho, 19)
    values = np.array([nll(r) for r in grid])
    best = int(np.argmin(values))
    rho, value = float(grid[best]), float(values[best])
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    if high > low:
        fit = minimize_scalar(nll, bounds=(low, high), method="bounded",
                              options={"xatol": 1e-4})
        if fit.success and fit.fun < value:
            rho, value = float(fit.x), float(fit.fun)
    rho = float(np.clip(rho, 0.0, max_rho))
    lr = max(0.0, 2.0 * (values[0] - value))
    note = (f"maximum likelihood over {n_events} settled events with two or more customers "
            f"({len(rows)} rows, {n_customers} customers)"
            + (f"; clipped at max_rho {max_rho:g}" if rho >= max_rho - 1e-9 else ""))
    return CorrelationEstimate(rho, n_events, len(rows), n_customers, float(lr), note)
