"""Bid advice: is the promise kept? Calibration on simulated events, and speed.

Run from the repository root::

    .venv/bin/python -m benchmarks.bidding [--settings 300] [--plays 4] [--history 300]
        [--rho 0.25]

SYNTHETIC throughout. The sample generator's behaviour model (``forecasting.synthetic.events``)
has per-customer reliability traits but neither a delivery probability nor a common cause,
so the simulator is here, and it knows both:

- a portfolio of ``--customers`` customers with one controllable resource each (levels
  I/II/III, 100-1,500 kW, notice and duration limits as resources.csv has them), each with a
  true delivery probability ``p_i`` (0.6-0.97);
- every event draws a common cause ``z`` (a heat wave, a production rush) and each resource
  its own ``eps_i``; resource ``i`` delivers when ``sqrt(rho) z + sqrt(1 - rho) eps_i <
  Phi^-1(p_i)`` (``--rho``, the truth), delivering 97-103 % of its allocation, else 20-70 %;
- a history of ``--history`` settled events (about 60 % of the customers invited each)
  written as events.csv rows, from which ``models.correlation.estimate_correlation``
  estimates rho without knowing it;
- ``--settings`` bid situations, each with its own notice (30 min to 24 h: level III drops
  out at short notice), duration (1-4 h) and per-customer load headroom (40-120 % of the
  resource's capacity).

For each situation and each confidence ``c`` (0.8, 0.9, 0.95) two bids are made with
``models.bidding.bid_advice`` from the true ``p_i`` (as a perfect response-likelihood
model would give them): one with the estimated rho, one with independent resources. Each
situation is then played as ``--plays`` events, each with its own common cause and own
noise (settings x plays simulated events; the bids are the expensive part), every bid's
plan effective when delivered kW / offer >= 80 %. Printed: the share of effective bids per confidence for each model (target:
within 0.03 of ``c`` for the correlated model; the independent model is expected
over-confident, below ``c``), and the median time of bid advice and of the offer curve for
1,000 resources (``benchmarks.dispatch.random_portfolio``, rho 0.3, confidence 0.9).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy.special import ndtri

from models.bidding import BidOptions, bid_advice, offer_curve
from models.correlation import estimate_correlation

START = pd.Timestamp("2025-07-01T14:00:00+08:00")
CONFIDENCES = (0.8, 0.9, 0.95)
SUCCESS_SHARE = (0.97, 1.03)  # delivered / allocated when a resource delivers
FAILURE_SHARE = (0.2, 0.7)  # ... and when it does not
THRESHOLD = 0.8


def portfolio(n_customers: int, rng: np.random.Generator) -> pd.DataFrame:
    """resources.csv rows, one resource per customer, with the true ``p_deliver``."""
    level = rng.choice(["I", "II", "III"], n_customers, p=[0.4, 0.35, 0.25])
    return pd.DataFrame({
        "resource_id": [f"r{i:03d}" for i in range(n_customers)],
        "customer_id": [f"c{i:03d}" for i in range(n_customers)],
        "name": "SYNTHETIC", "level": level,
        "capacity_kw": rng.uniform(100, 1500, n_customers).round(0),
        "response_minutes": np.select([level == "I", level == "II"], [2, 10], 120),
        "min_notice_minutes": np.select([level == "I", level == "II"],
                                        [0, rng.choice([15, 60], n_customers)],
                                        rng.choice([240, 1440], n_customers)),
        "max_duration_minutes": rng.choice([120, 240, 480], n_customers),
        "cost_cny_per_mwh": rng.uniform(0, 3000, n_customers).round(0),
        "requires_approval": False,
        "p_true": rng.uniform(0.6, 0.97, n_customers)})


def delivered(p: np.ndarray, rho: float, rng: np.random.Generator) -> np.ndarray:
    """One event's truth: which resources deliver (common cause + own noise)."""
    z = rng.standard_normal()
    return np.sqrt(rho) * z + np.sqrt(1 - rho) * rng.standard_normal(p.size) < ndtri(p)


def history(resources: pd.DataFrame, n_events: int, rho: float,
            rng: np.random.Generator) -> pd.DataFrame:
    """Settled events.csv rows (one per invited customer) simulated with the truth."""
    rows = []
    p = resources["p_true"].to_numpy()
    end = START - pd.Timedelta(days=n_events + 1)
    for k in range(n_events):
        ok = delivered(p, rho, rng)
        invited = rng.uniform(size=p.size) < 0.6
        for i in np.flatnonzero(invited):
            share = rng.uniform(*SUCCESS_SHARE) if ok[i] else rng.uniform(*FAILURE_SHARE)
            rows.append({"event_id": f"h{k:04d}", "customer_id": resources["customer_id"][i],
                         "target_kw": 100.0, "actual_kw": 100.0 * share,
                         "end": (end + pd.Timedelta(days=k)).tz_convert("UTC")})
    return pd.DataFrame(rows)


def expected_achievement(p: np.ndarray) -> np.ndarray:
    """The truth's mean delivered / allocated ratio (what a perfect model would report)."""
    return p * np.mean(SUCCESS_SHARE) + (1 - p) * np.mean(FAILURE_SHARE)


def play(allocations: pd.DataFrame, offer_mw: float, ok: np.ndarray, index: pd.Series,
         rng: np.random.Generator) -> bool:
    """Whether the bid's plan meets the threshold in the event's truth ``ok``."""
    x = allocations["allocated_kw"].to_numpy()
    hit = ok[index[allocations["resource_id"]].to_numpy()]
    share = np.where(hit, rng.uniform(*SUCCESS_SHARE, x.size), rng.uniform(*FAILURE_SHARE,
                                                                           x.size))
    return float((x * share).sum()) / (offer_mw * 1000.0) >= THRESHOLD


def calibration(n_customers: int, n_history: int, n_settings: int, n_plays: int, rho: float,
                seed: int, n_draws: int) -> tuple[pd.DataFrame, float]:
    rng = np.random.default_rng(seed)
    resources = portfolio(n_customers, rng)
    estimate = estimate_correlation(history(resources, n_history, rho, rng))
    p = resources["p_true"].to_numpy()
    reliability = pd.DataFrame({"resource_id": resources["resource_id"], "p_deliver": p,
                                "expected_achievement": expected_achievement(p)})
    index = pd.Series(np.arange(len(resources)), index=resources["resource_id"])
    options = BidOptions(n_draws=n_draws, compare_independent=False)
    cap = dict(zip(resources["customer_id"], resources["capacity_kw"], strict=True))
    rows = []
    for k in range(n_settings):
        lead = int(rng.choice([30, 60, 120, 240, 600, 1440]))
        hours = int(rng.choice([1, 2, 3, 4]))
        start = START + pd.Timedelta(days=k)
        window = (start, start + pd.Timedelta(hours=hours),
                  start - pd.Timedelta(minutes=lead))
        headroom = {c: float(v * rng.uniform(0.4, 1.2)) for c, v in cap.items()}
        bids = {(c, model): bid_advice(resources, "day_ahead", *window, c,
                                       reliability=reliability, headroom_kw=headroom,
                                       correlation=r, options=options)
                for c in CONFIDENCES
                for model, r in (("correlated", estimate.rho), ("independent", 0.0))}
        for j in range(n_plays):
            ok = delivered(p, rho, rng)
            for (c, model), advice in bids.items():
                effective = (play(advice.allocations, advice.offer_mw, ok, index, rng)
                             if advice.offer_mw > 0 else np.nan)
                rows.append({"event": k * n_plays + j, "setting": k, "confidence": c,
                             "model": model, "offer_mw": advice.offer_mw,
                             "promised": advice.p_effective, "effective": effective})
    return pd.DataFrame(rows), estimate.rho


def timing(repeats: int, seed: int = 0) -> dict[str, float]:
    from benchmarks.dispatch import random_portfolio

    resources, reliability, headroom = random_portfolio(1000, seed)
    common = {"start": START, "end": START + pd.Timedelta(hours=2),
              "notice_time": START - pd.Timedelta(hours=4), "reliability": reliability,
              "headroom_kw": headroom, "correlation": 0.3}
    advice_s, curve_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        bid_advice(resources, "day_ahead", confidence=0.9, **common)
        advice_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        offer_curve(resources, "day_ahead", **common)
        curve_s.append(time.perf_counter() - t0)
    return {"advice_median_s": float(np.median(advice_s)),
            "curve_median_s": float(np.median(curve_s))}


def run(n_customers: int = 60, n_history: int = 300, n_settings: int = 300, n_plays: int = 4,
        rho: float = 0.25, seed: int = 0, n_draws: int = 5000, repeats: int = 5
        ) -> pd.DataFrame:
    t0 = time.perf_counter()
    rows, rho_hat = calibration(n_customers, n_history, n_settings, n_plays, rho, seed,
                                n_draws)
    elapsed = time.perf_counter() - t0
    bids = rows.dropna(subset=["effective"])
    share = bids.pivot_table(index="confidence", columns="model", values="effective",
                             aggfunc="mean")
    offer = rows.pivot_table(index="confidence", columns="model", values="offer_mw",
                             aggfunc="mean")
    table = pd.DataFrame({
        "correlated_share": share["correlated"], "independent_share": share["independent"],
        "correlated_gap": share["correlated"] - share.index,
        "within_0.03": (share["correlated"] - share.index).abs() <= 0.03,
        "correlated_offer_mw": offer["correlated"], "independent_offer_mw": offer["independent"],
        "events": bids.groupby("confidence").size() // 2,
        "no_bid_events": rows[rows["offer_mw"] == 0].groupby("confidence").size().reindex(
            share.index, fill_value=0)})
    speed = timing(repeats, seed)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"bidding calibration on SYNTHETIC simulated events: {n_customers} customers "
              f"(one resource each, true p 0.6-0.97), true common-factor rho {rho:g}, rho "
              f"estimated from {n_history} simulated settled events: {rho_hat:.3f}; "
              f"{n_settings} bid situations (notice 30 min-24 h, 1-4 h, random load "
              f"headroom) x {n_plays} plays = {n_settings * n_plays} simulated events "
              f"({n_draws} Monte Carlo draws per bid; {elapsed:.0f} s)")
        print("share of bids effective (delivered >= 80 % of the offer) per confidence:")
        print(table.round(4).to_string())
        print(f"speed, 1,000 resources (SYNTHETIC random portfolio, rho 0.3, confidence 0.9, "
              f"10,000 draws, median of {repeats}): bid advice {speed['advice_median_s']:.3f} "
              f"s (target < 1 s), offer curve {speed['curve_median_s']:.3f} s (target < 2 s)")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--history", type=int, default=300, help="simulated settled events")
    parser.add_argument("--settings", type=int, default=300, help="bid situations")
    parser.add_argument("--plays", type=int, default=4, help="simulated events per situation")
    parser.add_argument("--rho", type=float, default=0.25, help="true common-factor rho")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=5000, help="Monte Carlo draws per bid")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (1,000 resources)")
    args = parser.parse_args(argv)
    run(args.customers, args.history, args.settings, args.plays, args.rho, args.seed,
        args.draws, args.repeats)


if __name__ == "__main__":
    main()
