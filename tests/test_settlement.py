"""Measurement and settlement arithmetic, computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from forecasting.errors import (
    ImpossibleValueError,
    IrregularResolutionError,
    NaiveTimestampError,
)
from forecasting.settlement import (
    SettlementRule,
    aggregate_readings,
    interval_results,
    measure,
    portfolio_result,
    settle,
)

IDX = pd.date_range("2025-07-01 14:00", periods=4, freq="15min", tz="Asia/Shanghai")


def series(values) -> pd.Series:
    return pd.Series(values, index=IDX, dtype=float)


def test_interval_arithmetic():
    rows = interval_results(series([1000, 1000, 1000, 1000]), series([800, 900, 700, 1000]),
                            target_kw=200)
    np.testing.assert_allclose(rows["reduction_kw"], [200, 100, 300, 0])
    np.testing.assert_allclose(rows["response_kw"], [200, 100, 300, 0])
    np.testing.assert_allclose(rows["achievement"], [1.0, 0.5, 1.5, 0.0])


def test_event_counts_at_80_percent_and_is_paid_in_full():
    # mean reduction (200 + 100 + 300 + 0) / 4 = 150 kW of 200 -> 75 %: does not count
    _, low = measure(series([1000] * 4), series([800, 900, 700, 1000]), 200,
                     compensation_cny_per_mw=5000)
    assert low.achievement == pytest.approx(0.75)
    assert not low.counts and low.paid_achievement == 0 and low.payment_cny == 0
    assert "below 80%" in low.reason
    # exactly 80 %: counts (>=)
    _, edge = measure(series([1000] * 4), series([840] * 4), 200)
    assert edge.achievement == pytest.approx(0.8) and edge.counts
    assert edge.paid_response_kw == pytest.approx(160)


def test_paid_achievement_is_capped_at_120_percent():
    # reduction 300 kW of 200 -> 150 %, paid 120 % = 240 kW; 240 kW = 0.24 MW * 5000 CNY/MW
    _, res = measure(series([1000] * 4), series([700] * 4), 200, compensation_cny_per_mw=5000)
    assert res.achievement == pytest.approx(1.5)
    assert res.counts
    assert res.paid_achievement == pytest.approx(1.2)
    assert res.paid_response_kw == pytest.approx(240)
    assert res.payment_cny == pytest.approx(1200)
    assert "capped at 120%" in res.reason
    # energy: 300 kW over 1 h = 300 kWh
    assert res.reduction_energy_kwh == pytest.approx(300)


def test_payment_per_mwh_uses_the_duration():
    rule = SettlementRule(payment_basis="per_mwh")
    _, res = measure(series([1000] * 4), series([800] * 4), 200, rule, 3000)
    # 200 kW paid for 1 h = 0.2 MWh * 3000 CNY/MWh
    assert res.payment_cny == pytest.approx(600)


def test_valley_filling_increase_of_load_is_a_positive_response():
    # target -300 kW (fill the valley); load rose from 500 to 770 kW: reduction -270 kW,
    # response +270 kW, achievement 90 %
    rows, res = measure(series([500] * 4), series([770] * 4), -300)
    np.testing.assert_allclose(rows["reduction_kw"], -270)
    np.testing.assert_allclose(rows["response_kw"], 270)
    assert res.achievement == pytest.approx(0.9)
    assert res.counts and res.paid_response_kw == pytest.approx(270)
    # the wrong direction (load fell) is a negative achievement and is not paid
    _, wrong = measure(series([500] * 4), series([400] * 4), -300)
    assert wrong.achievement == pytest.approx(-1 / 3) and not wrong.counts
    assert wrong.paid_response_kw == 0


def test_rule_options_interval_threshold_measured_share_and_partial_pay():
    rule = SettlementRule(min_interval_achievement_ratio=0.5)
    _, res = measure(series([1000] * 4), series([700, 700, 700, 950]), 200, rule)
    # mean achievement (1.5 * 3 + 0.25) / 4 = 1.1875, but one interval at 25 % < 50 %
    assert res.achievement == pytest.approx(1.1875) and not res.counts
    assert "1 interval(s) below 50%" in res.reason
    _, gap = measure(series([1000] * 4), series([800, 800, 800, np.nan]), 200)
    assert gap.n_measured == 3 and not gap.counts  # default: every interval must be measured
    lenient = SettlementRule(min_measured_share=0.75, paid_share_below_threshold=0.5)
    _, ok = measure(series([1000] * 4), series([800, 800, 800, np.nan]), 200, lenient)
    assert ok.counts
    _, half = measure(series([1000] * 4), series([900] * 4), 200, lenient)
    assert not half.counts and half.paid_achievement == pytest.approx(0.25)


def test_bad_rules_and_targets_are_refused():
    with pytest.raises(ValidationError, match="below min_achievement_ratio"):
        SettlementRule(min_achievement_ratio=0.9, max_paid_achievement_ratio=0.8)
    with pytest.raises(ValidationError):
        SettlementRule(unknown_field=1)
    with pytest.raises(ImpossibleValueError, match="non-zero"):
        interval_results(series([1] * 4), series([1] * 4), 0)


def test_aggregate_readings_from_5_seconds_to_15_minutes():
    idx = pd.date_range("2025-07-01 14:00", "2025-07-01 14:30", freq="5s", tz="Asia/Shanghai",
                        inclusive="left")
    values = pd.Series(np.where(idx < pd.Timestamp("2025-07-01 14:15", tz="Asia/Shanghai"),
                                100.0, 200.0), index=idx)
    values = values.iloc[:-18]  # the second interval is missing its last 90 s
    out = aggregate_readings(values, 15)
    assert list(out.index) == [pd.Timestamp("2025-07-01 06:00", tz="UTC"),
                               pd.Timestamp("2025-07-01 06:15", tz="UTC")]
    np.testing.assert_allclose(out["actual_kw"], [100, 200])
    np.testing.assert_allclose(out["coverage"], [1.0, (180 - 18) / 180])
    minute = pd.Series([1.0, 2.0, 3.0], index=pd.date_range(
        "2025-07-01 14:00", periods=3, freq="5min", tz="UTC"))
    np.testing.assert_allclose(aggregate_readings(minute)["actual_kw"], [2.0])


def test_aggregate_readings_refuses_bad_resolutions():
    naive = pd.Series([1.0, 2.0], index=pd.date_range("2025-07-01", periods=2, freq="1min"))
    with pytest.raises(NaiveTimestampError):
        aggregate_readings(naive)
    fast = pd.Series([1.0, 2.0], index=pd.date_range("2025-07-01", periods=2, freq="1s",
                                                     tz="UTC"))
    with pytest.raises(IrregularResolutionError, match="between 5 s and 15 min"):
        aggregate_readings(fast)
    odd = pd.Series([1.0, 2.0], index=pd.date_range("2025-07-01", periods=2, freq="7min",
                                                    tz="UTC"))
    with pytest.raises(IrregularResolutionError, match="divide 15 min"):
        aggregate_readings(odd)


def test_portfolio_adds_customers_up():
    _, a = measure(series([1000] * 4), series([800] * 4), 200)
    _, b = measure(series([500] * 4), series([480] * 4), 100)
    total = portfolio_result(pd.DataFrame([a.to_dict(), b.to_dict()]))
    assert total["reduction_kw"] == pytest.approx(220)
    assert total["achievement"] == pytest.approx(220 / 300)
    assert total["n_counting"] == 1


def test_settle_without_readings():
    rows = interval_results(series([1000] * 4), series([np.nan] * 4), 200)
    res = settle(rows)
    assert not res.counts and res.n_measured == 0 and "no readings" in res.reason
