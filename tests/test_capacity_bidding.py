"""Bidding decision support: capacity per level capped by load, bid advice on hand-computed
cases, the common-factor correlation (draws and estimate), the handlers' 4xx reasons and the
``capacity`` / ``bid`` CLI on a small synthetic portfolio."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal, norm
from typer.testing import CliRunner

from forecasting.errors import ImpossibleValueError, UnknownSiteError, UnknownValueError
from models.bidding import BidOptions, TariffTable, bid_advice, offer_curve
from models.capacity import MissingForecastError, available_capacity, rule_baseline_quantiles
from models.correlation import estimate_correlation
from models.dispatch import (
    FAILED_DELIVERY_SHARE,
    Instruction,
    decompose,
    delivery_draws,
    simulate_achievement,
)

START = "2025-07-01T14:00:00+08:00"
END = "2025-07-01T15:00:00+08:00"  # four 15-minute intervals
NOTICE_4H = "2025-07-01T10:00:00+08:00"
NOTICE_1H = "2025-07-01T13:00:00+08:00"


def resources(*rows: dict) -> pd.DataFrame:
    """resources.csv rows; defaults: level I, 1-min response, no notice, 240 min, no cost."""
    base = {"name": "test", "level": "I", "capacity_kw": 500.0, "response_minutes": 1,
            "min_notice_minutes": 0, "max_duration_minutes": 240, "cost_cny_per_mwh": 0.0,
            "requires_approval": False}
    return pd.DataFrame([{**base, "resource_id": f"r{i}", "customer_id": f"c{i}", **row}
                         for i, row in enumerate(rows)])


def flat_load(customers: dict[str, tuple[float, float, float]], start=START, end=END,
              freq="15min") -> pd.DataFrame:
    """Constant load quantiles (kW) per customer over the window."""
    stamps = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=freq,
                           inclusive="left")
    return pd.DataFrame([{"customer_id": c, "timestamp": t, "q0.1": q[0], "q0.5": q[1],
                          "q0.9": q[2]} for c, q in customers.items() for t in stamps])


def rows(result, customer: str) -> pd.DataFrame:
    return result.by_customer[result.by_customer["customer_id"] == customer].set_index("level")


# --- capacity per customer and level

def test_resource_capped_by_its_customers_forecast_load():
    frame = resources({"resource_id": "a1", "customer_id": "a", "capacity_kw": 300.0},
                      {"resource_id": "a2", "customer_id": "a", "level": "II",
                       "capacity_kw": 200.0, "response_minutes": 10, "min_notice_minutes": 15},
                      {"resource_id": "b1", "customer_id": "b", "capacity_kw": 100.0})
    load = flat_load({"a": (250.0, 400.0, 600.0), "b": (1000.0, 1000.0, 1000.0)})
    result = available_capacity(frame, load, START, END, NOTICE_4H)
    a = rows(result, "a")
    # level I takes the load first: min(300, 250 | 400 | 600); level II what is left of it
    assert a.loc["I", ["p10_kw", "p50_kw", "p90_kw"]].tolist() == [250.0, 300.0, 300.0]
    assert a.loc["II", ["p10_kw", "p50_kw", "p90_kw"]].tolist() == [0.0, 100.0, 200.0]
    assert a.loc["all", ["p10_kw", "p50_kw", "p90_kw"]].tolist() == [250.0, 400.0, 500.0]
    assert a.loc["all", "resources_kw"] == 500.0 and a.loc["III", "n_resources"] == 0
    assert rows(result, "b").loc["all", "p10_kw"] == 100.0  # not capped
    totals = result.totals.set_index("level")
    assert totals.loc["all", ["p10_kw", "p50_kw", "p90_kw"]].tolist() == [350.0, 500.0, 600.0]
    assert any("customer a: its load P10" in n for n in result.notes)
    assert result.headroom_kw("p10") == {"a": 250.0, "b": 100.0}
    assert set(result.intervals["timestamp"]) == set(load["timestamp"].dt.tz_convert("UTC"))


def test_level_iii_excluded_at_one_hour_notice():
    frame = resources({"resource_id": "fast", "customer_id": "a", "capacity_kw": 100.0},
                      {"resource_id": "planned", "customer_id": "a", "level": "III",
                       "capacity_kw": 400.0, "response_minutes": 60,
                       "min_notice_minutes": 240})
    load = flat_load({"a": (800.0, 900.0, 1000.0)})
    short = available_capacity(frame, load, START, END, NOTICE_1H)
    assert rows(short, "a").loc["III", "p50_kw"] == 0.0
    assert rows(short, "a").loc["all", "p50_kw"] == 100.0
    reason = short.excluded.set_index("resource_id").loc["planned", "reason"]
    assert "level III needs >= 240 min notice" in reason
    planned = available_capacity(frame, load, START, END, NOTICE_4H)
    assert rows(planned, "a").loc["III", "p50_kw"] == 400.0 and planned.excluded.empty


def test_load_forecast_gaps_resolution_and_naive_times():
    frame = resources({"resource_id": "a1", "customer_id": "a"})
    two_hours = "2025-07-01T16:00:00+08:00"
    hourly = flat_load({"a": (100.0, 200.0, 300.0)}, end=two_hours, freq="60min")
    result = available_capacity(frame, hourly, START, two_hours, NOTICE_4H)
    assert rows(result, "a").loc["all", "p50_kw"] == 200.0  # each row spread to four
    assert len(result.intervals) == 4 * 8
    gap = flat_load({"a": (100.0, 200.0, 300.0)}).drop(index=2)
    with pytest.raises(MissingForecastError, match=r"no load forecast for customer a at "
                       r"2025-07-01T06:30:00\+00:00 \(1 of 4 intervals"):
        available_capacity(frame, gap, START, END, NOTICE_4H)
    naive = hourly.assign(timestamp=hourly["timestamp"].dt.tz_localize(None))
    with pytest.raises(Exception, match="naive timestamps"):
        available_capacity(frame, naive, START, END, NOTICE_4H)
    with pytest.raises(UnknownSiteError, match=r"no resources for customer\(s\) \['zz'\]"):
        available_capacity(frame, hourly, START, END, NOTICE_4H, customers=["zz"])


def test_rule_baseline_quantiles_band_around_similar_days():
    from factories import load_series

    from models.baselines import SimilarDaysBaseline

    load = load_series(days=40, start="2024-03-01")
    start, end = "2024-04-09T14:00:00+08:00", "2024-04-09T16:00:00+08:00"  # a Tuesday
    notice = "2024-04-09T09:00:00+08:00"
    q = rule_baseline_quantiles(load, timezone="Asia/Shanghai", holiday_country="CN",
                                event_days=(), start=start, end=end, notice_time=notice,
                                customer_id="x")
    known = load[load.index < pd.Timestamp(notice)]
    mean = SimilarDaysBaseline().fit(known, timezone="Asia/Shanghai",
                                     holiday_country="CN").predict(start, end, notice)
    assert len(q) == 8
    np.testing.assert_allclose(q["q0.5"], mean["baseline_kw"])
    assert (q["q0.1"] <= q["q0.5"]).all() and (q["q0.5"] <= q["q0.9"]).all()
    assert (q["q0.9"] - q["q0.1"]).mean() > 0  # the pool days' noise gives a band


# --- the correlated Monte Carlo

def test_rho_zero_reproduces_the_independent_monte_carlo_exactly():
    def previous(x, p, e, target, threshold, n_draws=20_000, seed=0):
        """simulate_achievement as it was before the correlation parameter."""
        fail_kw = FAILED_DELIVERY_SHARE * np.asarray(e, dtype="float64") * x
        rng = np.random.default_rng(seed)
        gain = x - fail_kw
        block = max(1, min(n_draws, 4_000_000 // x.size))
        hits, total = 0, 0.0
        for begin in range(0, n_draws, block):
            size = min(block, n_draws - begin)
            success = rng.random((size, x.size)) < p
            achievement = (fail_kw.sum() + success @ gain) / target
            hits += int(np.count_nonzero(achievement >= threshold))
            total += float(achievement.sum())
        return hits / n_draws, total / n_draws

    rng = np.random.default_rng(3)
    for n, draws, seed in ((1, 20_000, 0), (7, 5_000, 2), (300, 20_000, 0), (5000, 1_000, 1)):
        x, p, e = rng.uniform(10, 900, n), rng.uniform(0.3, 1, n), rng.uniform(0.6, 1.1, n)
        target = 0.7 * x.sum()
        expected = previous(x, p, e, target, 0.8, draws, seed)
        assert simulate_achievement(x, p, e, target, 0.8, draws, seed) == expected
        assert simulate_achievement(x, p, e, target, 0.8, draws, seed, correlation=0) == expected
    frame = resources({"resource_id": "a"}, {"resource_id": "b", "capacity_kw": 300.0})
    ins = Instruction(target_kw=600.0, start=START, end=END, notice_time=NOTICE_4H)
    assert decompose(ins, frame, correlation=0.0).to_dict() == decompose(ins, frame).to_dict()


def test_common_factor_keeps_marginals_and_matches_the_bivariate_normal():
    p = np.array([0.9, 0.7])
    rho = 0.5
    success = delivery_draws(p, 200_000, np.random.default_rng(0), correlation=rho)
    np.testing.assert_allclose(success.mean(axis=0), p, atol=0.005)
    both = multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf(norm.ppf(p))
    assert abs(success.all(axis=1).mean() - both) < 0.005
    assert abs(both - 0.9 * 0.7) > 0.03  # a visible common cause
    together = delivery_draws(np.full(4, 0.6), 1000, np.random.default_rng(1), correlation=1)
    assert (together == together[:, :1]).all()  # rho 1: all or nothing
    with pytest.raises(ImpossibleValueError, match="correlation -0.1 must lie in 0..1"):
        simulate_achievement([1.0], [0.5], [1.0], 1.0, 0.8, correlation=-0.1)


def settled(patterns) -> pd.DataFrame:
    """events.csv rows: pattern k = which customers delivered (100 %) or not (20 %)."""
    start = pd.Timestamp("2025-01-01T06:00:00Z")
    return pd.DataFrame([{"event_id": f"e{k}", "customer_id": f"c{i}", "target_kw": 100.0,
                          "actual_kw": 100.0 if ok else 20.0,
                          "end": start + pd.Timedelta(days=k)}
                         for k, pattern in enumerate(patterns) for i, ok in enumerate(pattern)])


def test_rho_estimate_perfectly_correlated_vs_independent():
    together = settled([[1, 1, 1, 1]] * 14 + [[0, 0, 0, 0]] * 6)
    fit = estimate_correlation(together)
    assert fit.rho == pytest.approx(0.9) and "clipped at max_rho 0.9" in fit.note
    assert fit.n_events == 20 and fit.n_rows == 80 and fit.lr_statistic > 20
    # every pattern of four customers equally often: exactly independent, p = 0.5
    independent = settled(list(itertools.product([0, 1], repeat=4)) * 2)
    fit = estimate_correlation(independent)
    assert fit.rho == pytest.approx(0.0, abs=1e-3) and fit.lr_statistic < 0.01
    few = estimate_correlation(together[together["event_id"].isin(["e0", "e1", "e2"])])
    assert few.rho == 0.0 and "fewer than 5" in few.note
    before = estimate_correlation(together, before=pd.Timestamp("2025-01-03T12:00:00Z"))
    assert before.n_events == 3  # only events ended by then: no leakage
    assert estimate_correlation(None).rho == 0.0


# --- bid advice

def one_resource() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = resources({"resource_id": "a", "capacity_kw": 1000.0})
    reliability = pd.DataFrame({"resource_id": ["a"], "p_deliver": [0.9],
                                "expected_achievement": [1.0]})
    return frame, reliability


def test_bid_advice_by_hand_on_one_resource():
    frame, rel = one_resource()
    # beyond 909 kW (x 1.1 margin) the whole 1,000 kW is planned: a success delivers it
    # (achievement 1000 / offer >= 80 % up to 1.25 MW), a failure half of it (never enough
    # above 625 kW): P(effective) = 0.9 up to 1.25 MW
    advice = bid_advice(frame, "day_ahead", START, END, NOTICE_4H, 0.85, reliability=rel)
    assert 1.2 <= advice.offer_mw <= 1.25
    assert advice.p_effective == pytest.approx(0.9, abs=0.01)
    assert advice.planned_by.startswith("max delivery")
    assert advice.allocations["allocated_kw"].tolist() == [1000.0]
    # E[compensation] = 325 CNY/MW x P(success) x the 1 MW delivered; E[penalty] = 325 x
    # P(failure) x (0.8 x offer - 0.5 MW)
    assert advice.expected_compensation_cny == pytest.approx(0.9 * 325, abs=4)
    shortfall = 0.8 * advice.offer_mw - 0.5
    assert advice.expected_penalty_cny == pytest.approx(0.1 * 325 * shortfall, abs=1.5)
    assert advice.independent_offer_mw == advice.offer_mw  # rho 0: one model
    nothing = bid_advice(frame, "day_ahead", START, END, NOTICE_4H, 0.95, reliability=rel)
    assert nothing.offer_mw == 0.0 and any("no offer reaches" in n for n in nothing.notes)
    curve = offer_curve(frame, "day_ahead", START, END, NOTICE_4H, reliability=rel,
                        offers_mw=[0.5, 1.0, 1.3])
    assert curve["p_effective"].round(2).tolist() == [0.9, 0.9, 0.0]
    assert curve["allocated_kw"].tolist() == pytest.approx([550.0, 1000.0, 1000.0])


def many_resources(n: int = 40, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    frame = resources(*[{"resource_id": f"r{i:02d}", "customer_id": f"c{i % 20:02d}",
                         "capacity_kw": float(rng.uniform(100, 500)),
                         "cost_cny_per_mwh": float(rng.uniform(0, 500))} for i in range(n)])
    reliability = pd.DataFrame({"resource_id": frame["resource_id"],
                                "p_deliver": rng.uniform(0.6, 0.95, n),
                                "expected_achievement": 0.95})
    return frame, reliability


def test_offer_shrinks_as_confidence_rises_and_with_a_stronger_common_cause():
    frame, rel = many_resources()
    options = BidOptions(n_draws=4000)

    def offer(confidence, rho):
        return bid_advice(frame, "peak", START, END, NOTICE_4H, confidence, reliability=rel,
                          correlation=rho, options=options)

    by_confidence = [offer(c, 0.3).offer_mw for c in (0.6, 0.8, 0.9, 0.95)]
    assert all(a >= b for a, b in itertools.pairwise(by_confidence)), by_confidence
    assert by_confidence[0] > by_confidence[-1] > 0
    advices = [offer(0.9, rho) for rho in (0.0, 0.3, 0.6)]
    by_rho = [a.offer_mw for a in advices]
    assert all(a > b for a, b in itertools.pairwise(by_rho)), by_rho
    strong = advices[-1]
    assert strong.p_effective >= 0.9
    assert strong.p_effective_independent > strong.p_effective  # independence: optimistic
    assert strong.independent_offer_mw == pytest.approx(by_rho[0], rel=0.01)


def test_bid_refuses_bad_confidence_and_unknown_market():
    frame, rel = one_resource()
    for bad in (0.0, 1.0, 1.5, float("nan")):
        with pytest.raises(ImpossibleValueError, match="strictly between 0 and 1"):
            bid_advice(frame, "day_ahead", START, END, NOTICE_4H, bad, reliability=rel)
    with pytest.raises(UnknownValueError, match="unknown market type 'intraday', expected "
                       "one of annual, day_ahead, real_time, peak"):
        bid_advice(frame, "intraday", START, END, NOTICE_4H, 0.9)
    assert TariffTable().of("peak").compensation_cny_per_mw == 1150.0


# --- handlers and CLI on a small synthetic portfolio

@pytest.fixture(scope="module")
def portfolio_dir(tmp_path_factory):
    from forecasting.synthetic import generate_portfolio

    return generate_portfolio(tmp_path_factory.mktemp("bidding") / "pf", seed=7,
                              start="2025-05-01", end="2025-06-15", n_customers=3, n_pv=0,
                              n_wind=0)


@pytest.fixture(scope="module")
def portfolio(portfolio_dir):
    from forecasting.portfolio import read_portfolio

    return read_portfolio(portfolio_dir)


WINDOW = {"start": "2025-06-16T14:00:00+08:00", "end": "2025-06-16T16:00:00+08:00",
          "notice_time": "2025-06-15T18:00:00+08:00"}


def fake_load(portfolio, start, end, notice_time, customers):
    stamps = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="15min",
                           inclusive="left")
    return pd.DataFrame([{"customer_id": c, "timestamp": t, "q0.1": 200.0, "q0.5": 400.0,
                          "q0.9": 600.0, "source": "test"} for c in customers for t in stamps])


def test_handlers_answer_and_give_4xx_reasons(portfolio):
    from serving.bid_api import BidRequest, CapacityRequest, handle_bid, handle_capacity

    cap = handle_capacity(portfolio, CapacityRequest(**WINDOW, include_intervals=True),
                          load_forecast=fake_load)
    totals = {row["level"]: row for row in cap.totals}
    assert totals["all"]["p10_kw"] <= 3 * 200.0 and totals["all"]["p90_kw"] <= 3 * 600.0
    assert len(cap.intervals) == 3 * 4 * 8  # customers x levels x intervals
    body = handle_bid(portfolio, BidRequest(**WINDOW, market="day_ahead", confidence=0.5,
                                            correlation=0.2), load_forecast=fake_load)
    assert body.correlation == 0.2 and body.capacity_kw <= 1200.0
    assert body.curve and body.offer_mw >= 0
    with pytest.raises(ImpossibleValueError, match="confidence 1.2 must lie strictly"):
        handle_bid(portfolio, BidRequest(**WINDOW, market="day_ahead", confidence=1.2),
                   load_forecast=fake_load)
    with pytest.raises(UnknownValueError, match="unknown market type 'balancing'"):
        handle_bid(portfolio, BidRequest(**WINDOW, market="balancing", confidence=0.9),
                   load_forecast=fake_load)

    def no_forecast(portfolio, start, end, notice_time, customers):
        return fake_load(portfolio, start, end, notice_time, customers).iloc[:0]

    with pytest.raises(MissingForecastError, match="no load forecast for customer c01"):
        handle_capacity(portfolio, CapacityRequest(**WINDOW), load_forecast=no_forecast)
    with pytest.raises(MissingForecastError, match="no load forecast"):
        handle_bid(portfolio, BidRequest(**WINDOW, market="peak", confidence=0.9),
                   load_forecast=no_forecast)
    from serving.limits import BoundExceededError

    long = {**WINDOW, "end": "2025-06-24T16:00:00+08:00"}
    with pytest.raises(BoundExceededError, match="at most 7 days per request"):
        handle_capacity(portfolio, CapacityRequest(**long), load_forecast=fake_load)


def test_load_quantiles_sums_a_champion_and_falls_back_to_the_rule_baseline(portfolio):
    from forecasting.errors import ModelNotFoundError
    from inference.bidding import load_quantiles
    from inference.registry import LoadedModel

    class Flat:  # a registered forecaster that answers 1,000 / 1,100 / 1,200 kW
        spec_ = SimpleNamespace(uses_history=False)
        quantiles_ = (0.1, 0.5, 0.9)

        def forecast(self, data, issue, targets, levels):
            return pd.DataFrame({"q0.1": 1000.0, "q0.5": 1100.0, "q0.9": 1200.0},
                                index=targets)

    class Registry:
        def champion(self, kind, site_id):
            if site_id != "load_c01":
                raise ModelNotFoundError(f"no champion for {site_id}")
            return LoadedModel(f"{kind}-{site_id}", "3", Flat())

    frame = load_quantiles(portfolio, WINDOW["start"], WINDOW["end"], WINDOW["notice_time"],
                           registry=Registry())
    first = frame.groupby("customer_id").first()
    assert first.loc["c01", "source"].startswith("champion load-load_c01/3")
    assert first.loc["c01", "q0.5"] == 1100.0
    assert first.loc["c02", "source"].startswith("rule baseline similar_days")
    assert (frame["q0.1"] <= frame["q0.9"]).all() and len(frame) == 3 * 8


def invoke(*args: str):
    from pipelines.cli_bid import app

    return CliRunner().invoke(app, list(args))


def window_args(data) -> list[str]:
    return ["--data", str(data), "--start", WINDOW["start"], "--end", WINDOW["end"],
            "--notice-time", WINDOW["notice_time"]]


def test_cli_capacity_and_bid_on_the_synthetic_portfolio(portfolio_dir, mlflow_uri, tmp_path):
    out = tmp_path / "capacity.csv"
    result = invoke("capacity", *window_args(portfolio_dir), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "portfolio totals (kW)" in result.output
    assert "rule baseline similar_days (no champion" in result.output  # empty store
    written = pd.read_csv(out)
    assert set(written["level"]) == {"I", "II", "III", "all"}
    assert (written["p10_kw"] <= written["p90_kw"] + 1e-9).all()
    curve = tmp_path / "curve.csv"
    result = invoke("bid", *window_args(portfolio_dir), "--market", "day_ahead",
                    "--confidence", "0.5", "--correlation", "0.3", "--out", str(curve))
    assert result.exit_code == 0, result.output
    assert "common cause: rho 0.300 (given by the caller)" in result.output
    assert "the independent model would offer" in result.output
    assert "offer curve" in result.output
    assert {"offer_mw", "p_effective", "p_effective_independent",
            "expected_net_revenue_cny"} <= set(pd.read_csv(curve).columns)
    result = invoke("bid", *window_args(portfolio_dir), "--market", "spot", "--confidence",
                    "0.9")
    assert result.exit_code == 2 and "unknown market type 'spot'" in result.output
    result = invoke("bid", *window_args(portfolio_dir), "--market", "peak", "--confidence",
                    "1.5")
    assert result.exit_code == 2 and "confidence 1.5 must lie strictly" in result.output
