"""SYNTHETIC: the delivery probabilities behind the sample generator's settled responses,
and the per-resource settlement of sub-metered customers.

Synthetic: generator internals for the sample portfolio. A settled response is drawn from
an ``AchievementLaw``: with probability ``no_show_p`` the customer does not show up and
delivers U(0, 0.15) of its target; otherwise its achievement (``actual / target``) is
``median * exp(N(0, sigma))``; in both cases the settled power is capped at ``max_kw`` and
rounded to 0.1 kW. Its probability of *delivering* (achievement >= a threshold, the
settlement rule's ``min_achievement_ratio``) is then known in closed form
(``AchievementLaw.p_deliver``): this is the truth a response-likelihood model is scored
against, and the generator writes it to ``truth/response_truth.csv`` beside the portfolio.
The file is generator output for evaluation, **not** part of the portfolio contract
(``../shared/DATA_FORMAT.md``): product code never reads it.

Sub-metered customers are settled per resource on reduction events: the commitment is split
over the customer's resources in proportion to their capacity, each resource's achievement
follows its own law (its own coverage of its share, independent noise, the customer's
no-show common to all), and the customer's settled ``actual_kw`` is the sum of its
resources'. The customer's probability of delivering is then estimated by Monte Carlo
(``MONTE_CARLO_DRAWS`` draws; standard error below 0.008).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROUND_KW = 0.1  # settled actual_kw is rounded to this
NO_SHOW_MAX_ACHIEVEMENT = 0.15
MONTE_CARLO_DRAWS = 4000
TRUTH_THRESHOLD = 0.8  # default settlement rule (forecasting.settlement.SettlementRule)
TRUTH_FILE = Path("truth") / "response_truth.csv"
TRUTH_COLUMNS = ("event_id", "customer_id", "resource_id", "level", "target_kw",
                 "median_achievement", "noise_sigma", "no_show_p", "max_achievement",
                 "threshold", "p_deliver_true")


@dataclass(frozen=True)
class AchievementLaw:
    """How one settled response is drawn (see the module doc). ``target_kw`` the commitment
    (kW, sign kept), ``max_kw`` the cap on the settled power (kW, >= 0)."""

    median: float
    sigma: float
    no_show_p: float
    target_kw: float
    max_kw: float

    @property
    def max_achievement(self) -> float:
        return self.max_kw / abs(self.target_kw)

    def draw(self, rng: np.random.Generator) -> float:
        """One achievement before capping and rounding."""
        if rng.uniform() < self.no_show_p:
            return float(rng.uniform(0.0, NO_SHOW_MAX_ACHIEVEMENT))
        return float(self.median * np.exp(rng.normal(0.0, self.sigma)))

    def settle_kw(self, achievement: float) -> float:
        """Settled ``actual_kw`` (sign of the target) of a drawn achievement."""
        magnitude = min(abs(self.target_kw) * achievement, self.max_kw)
        return float(np.round(math.copysign(magnitude, self.target_kw), 1))

    def p_deliver(self, threshold: float = TRUTH_THRESHOLD) -> float:
        """P(settled actual / target >= threshold), exact up to the rounding's half-even
        ties: the rounded power reaches ``threshold * |target|`` when the unrounded one
        reaches it less half a rounding step."""
        needed = threshold - ROUND_KW / 2 / abs(self.target_kw)
        if self.max_achievement < needed:
            return 0.0
        if needed <= 0:
            return 1.0
        shows = 0.0
        if self.median > 0:
            z = (math.log(needed) - math.log(self.median)) / self.sigma
            shows = 0.5 * math.erfc(z / math.sqrt(2.0))
        no_show = min(max((NO_SHOW_MAX_ACHIEVEMENT - needed) / NO_SHOW_MAX_ACHIEVEMENT, 0.0),
                      1.0)
        return (1 - self.no_show_p) * shows + self.no_show_p * no_show


def joint_p_deliver(laws: list[AchievementLaw], rng: np.random.Generator,
                    threshold: float = TRUTH_THRESHOLD, draws: int = MONTE_CARLO_DRAWS
                    ) -> float:
    """P(sum of the resources' settled kW >= threshold x their summed target), by Monte
    Carlo: the no-show is common to all resources (same ``no_show_p``), the noise
    independent."""
    target = np.array([abs(law.target_kw) for law in laws])
    cap = np.array([law.max_kw for law in laws])
    median = np.array([law.median for law in laws])
    sigma = np.array([law.sigma for law in laws])
    no_show = rng.uniform(size=draws) < laws[0].no_show_p
    shown = median * np.exp(rng.normal(0.0, 1.0, (draws, len(laws))) * sigma)
    absent = rng.uniform(0.0, NO_SHOW_MAX_ACHIEVEMENT, (draws, len(laws)))
    achieved = np.where(no_show[:, None], absent, shown)
    settled = np.round(np.minimum(target * achieved, cap), 1).sum(axis=1)
    return float(np.mean(settled >= threshold * target.sum() - 1e-9))


def truth_row(event_id: str, customer_id: str, resource_id: str | None,
              law: AchievementLaw | None, p_true: float, target_kw: float) -> dict:
    """One row of the truth table (``law`` None for a customer settled per resource, whose
    probability is the Monte Carlo one)."""
    return {"event_id": event_id, "customer_id": customer_id,
            "resource_id": resource_id or "", "level": "resource" if resource_id else "customer",
            "target_kw": float(target_kw),
            "median_achievement": law.median if law else np.nan,
            "noise_sigma": law.sigma if law else np.nan,
            "no_show_p": law.no_show_p if law else np.nan,
            "max_achievement": law.max_achievement if law else np.nan,
            "threshold": TRUTH_THRESHOLD, "p_deliver_true": float(p_true)}


def truth_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))


def write_response_truth(truth: pd.DataFrame, out_dir: Path) -> Path:
    """Write ``truth`` to ``out_dir/truth/response_truth.csv`` (generator output, not part of
    the portfolio contract) and return the path."""
    path = Path(out_dir) / TRUTH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    truth.to_csv(path, index=False, float_format="%.6g")
    return path


def read_response_truth(portfolio_dir: Path) -> pd.DataFrame:
    """The truth table of a generated sample portfolio, for evaluation (benchmarks, tests):
    ``resource_id`` empty on customer rows."""
    path = Path(portfolio_dir) / TRUTH_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; it is written by the synthetic "
                                "generator (forecasting.synthetic.generate_portfolio) only")
    return pd.read_csv(path, dtype={"event_id": str, "customer_id": str, "resource_id": str},
                       keep_default_na=False, na_values=[""]).assign(
        resource_id=lambda f: f["resource_id"].fillna(""))


def write_settlement_extras(out_dir: Path, resource_events: pd.DataFrame,
                            truth: pd.DataFrame) -> None:
    """Write ``resource_events.csv`` (the optional per-resource settlement table, README
    "Per-resource settlement") and the truth file beside a written portfolio, and say so in
    its ``SYNTHETIC.txt``."""
    out_dir = Path(out_dir)
    resource_events.to_csv(out_dir / "resource_events.csv", index=False)
    write_response_truth(truth, out_dir)
    n_customers = resource_events["customer_id"].nunique()
    note = f"""
Per-resource settlement (optional table, see the project README):
  resource_events.csv   {len(resource_events)} rows: the per-resource split (target_kw,
                        actual_kw) of the events.csv rows of {n_customers} sub-metered
                        customers on reduction events; they sum to the customer's row

Generator truth (NOT part of the portfolio contract; never read by product code):
  {TRUTH_FILE}  {len(truth)} rows: each customer's (and each settled resource's)
                        probability of delivering (achievement >= {TRUTH_THRESHOLD:g}) per
                        event, p_deliver_true, and the law it was drawn from
"""
    with (out_dir / "SYNTHETIC.txt").open("a", encoding="utf-8") as handle:
        handle.write(note)
