"""Measurement and settlement arithmetic, computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from forecasting.errors import (
    DataError,
    ImpossibleValueError,
    IrregularResolutionError,
    ModelNotFoundError,
    NaiveTimestampError,
    UnknownSiteError,
    UnknownValueError,
)
from forecasting.portfolio import read_portfolio
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


# -- measuring a portfolio event, the serving handlers and the CLI ------------------------

TZ = "Asia/Shanghai"


def _local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def write_event_portfolio(directory: Path) -> Path:
    """Two customers on flat load, two events with known responses.

    Customer ca = sites load_a1 (600 kW) + load_a2 (400 kW); on Mon 2025-03-31 14:00-16:00
    (event ev1, target 250 kW) they draw 450 + 350 kW: reduction 200 kW, achievement 80 %.
    Customer cb = load_b (500 kW); on Sat 2025-03-29 11:00-13:00 (ev2, valley filling,
    target -300 kW) it draws 800 kW: response +300 kW, achievement 100 %.
    """
    directory.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([
        {"site_id": "load_a1", "kind": "load", "timezone": TZ, "customer_id": "ca",
         "holiday_country": "CN"},
        {"site_id": "load_a2", "kind": "load", "timezone": TZ, "customer_id": "ca",
         "holiday_country": "CN"},
        {"site_id": "load_b", "kind": "load", "timezone": TZ, "customer_id": "cb",
         "holiday_country": "CN"},
    ]).to_csv(directory / "sites.csv", index=False)
    idx = pd.date_range("2025-03-03", "2025-04-02", freq="15min", tz=TZ, inclusive="left")
    ev1 = (idx >= _local("2025-03-31 14:00")) & (idx < _local("2025-03-31 16:00"))
    ev2 = (idx >= _local("2025-03-29 11:00")) & (idx < _local("2025-03-29 13:00"))
    frames = []
    for site, level, event_mask, event_level in (("load_a1", 600.0, ev1, 450.0),
                                                 ("load_a2", 400.0, ev1, 350.0),
                                                 ("load_b", 500.0, ev2, 800.0)):
        values = np.where(event_mask, event_level, level)
        frames.append(pd.DataFrame({"site_id": site, "timestamp": idx.strftime(
            "%Y-%m-%dT%H:%M:%S+08:00"), "load_kw": values}))
    pd.concat(frames).to_csv(directory / "measurements.csv", index=False)
    pd.DataFrame([
        {"event_id": "ev1", "customer_id": "ca", "event_type": "peak",
         "notice_time": "2025-03-31T10:00:00+08:00", "start": "2025-03-31T14:00:00+08:00",
         "end": "2025-03-31T16:00:00+08:00", "target_kw": 250, "compensation_cny_per_mw": 20000,
         "actual_kw": 200},
        {"event_id": "ev2", "customer_id": "cb", "event_type": "valley_filling",
         "notice_time": "2025-03-28T18:00:00+08:00", "start": "2025-03-29T11:00:00+08:00",
         "end": "2025-03-29T13:00:00+08:00", "target_kw": -300,
         "compensation_cny_per_mw": 6000, "actual_kw": -300},
    ]).to_csv(directory / "events.csv", index=False)
    return directory


@pytest.fixture(scope="module")
def event_portfolio(tmp_path_factory):
    return read_portfolio(write_event_portfolio(tmp_path_factory.mktemp("pf")))


@pytest.mark.parametrize("method", ["similar_days", "x_of_y", "pre_event"])
def test_measure_event_sums_sites_and_settles(event_portfolio, method):
    from inference.measurement import measure_event

    result = measure_event(event_portfolio, "ev1", method)
    row = result.customers.set_index("customer_id").loc["ca"]
    assert row["baseline_kw"] == pytest.approx(1000)
    assert row["actual_kw"] == pytest.approx(800)
    assert row["reduction_kw"] == pytest.approx(200)
    assert row["achievement"] == pytest.approx(0.8) and row["counts"]
    assert row["payment_cny"] == pytest.approx(0.2 * 20000)
    assert row["operator_actual_kw"] == 200
    assert len(result.intervals) == 8
    assert result.portfolio["achievement"] == pytest.approx(0.8)


def test_measure_valley_filling_event(event_portfolio):
    from inference.measurement import measure_event

    result = measure_event(event_portfolio, "ev2", "x_of_y")
    row = result.customers.iloc[0]
    assert row["reduction_kw"] == pytest.approx(-300)
    assert row["response_kw"] == pytest.approx(300)
    assert row["achievement"] == pytest.approx(1.0) and row["counts"]


def test_measure_unknown_event_and_method(event_portfolio):
    from inference.measurement import measure_event

    with pytest.raises(UnknownValueError, match="unknown event 'ev9'.*ev1, ev2"):
        measure_event(event_portfolio, "ev9", "similar_days")
    with pytest.raises(UnknownValueError, match="unknown method 'best'"):
        measure_event(event_portfolio, "ev1", "best")


def test_serving_baseline_for_customer_site_and_auto(event_portfolio):
    from serving.baseline_api import BaselineRequest, handle_baseline

    request = BaselineRequest(customer_id="ca", start=_local("2025-03-31 14:00"),
                              end=_local("2025-03-31 16:00"), method="similar_days")
    response = handle_baseline(event_portfolio, request)
    assert response.method == "similar_days" and response.resolution_minutes == 15
    assert len(response.points) == 8
    assert all(p.baseline_kw == pytest.approx(1000) for p in response.points)
    assert len(response.pool_days) == 5
    site = handle_baseline(event_portfolio, BaselineRequest(
        site_id="load_a1", start=_local("2025-03-31 14:00"), end=_local("2025-03-31 15:00")))
    assert site.method in ("similar_days", "x_of_y") and site.method_requested == "auto"
    assert set(site.auto_scores) == {"similar_days", "x_of_y"}  # no ML model given
    assert all(p.baseline_kw == pytest.approx(600) for p in site.points)
    json.loads(site.model_dump_json())  # serialisable


def test_serving_baseline_bad_input(event_portfolio):
    from serving.baseline_api import BaselineRequest, handle_baseline

    window = {"start": _local("2025-03-31 14:00"), "end": _local("2025-03-31 16:00")}
    with pytest.raises(UnknownSiteError, match="unknown customer 'zz'"):
        handle_baseline(event_portfolio, BaselineRequest(customer_id="zz", **window))
    with pytest.raises(UnknownSiteError, match="unknown site 'nope'"):
        handle_baseline(event_portfolio, BaselineRequest(site_id="nope", **window))
    with pytest.raises(DataError, match="before 2024-06-03"):
        handle_baseline(event_portfolio, BaselineRequest(
            customer_id="ca", start=_local("2024-06-03 14:00"), end=_local("2024-06-03 16:00")))
    with pytest.raises(ModelNotFoundError, match="no ML baseline model"):
        handle_baseline(event_portfolio, BaselineRequest(customer_id="ca", method="ml",
                                                         **window))
    with pytest.raises(ValidationError, match="exactly one of customer_id or site_id"):
        BaselineRequest(customer_id="ca", site_id="load_a1", **window)
    with pytest.raises(ValidationError):
        BaselineRequest(customer_id="ca", start="2025-03-31T14:00:00", end=window["end"])


def test_serving_measure_aggregates_5_second_readings(event_portfolio):
    from serving.baseline_api import MeasureRequest, Reading, handle_measure

    stamps = pd.date_range(_local("2025-03-31 14:00"), _local("2025-03-31 14:30"), freq="5s",
                           inclusive="left")
    readings = [Reading(timestamp=t.to_pydatetime(), load_kw=790.0) for t in stamps]
    request = MeasureRequest(customer_id="ca", start=_local("2025-03-31 14:00"),
                             end=_local("2025-03-31 16:00"), target_kw=250,
                             method="similar_days", readings=readings)
    response = handle_measure(event_portfolio, request)
    assert response.n_intervals == 8 and response.n_measured == 2
    assert response.reduction_kw == pytest.approx(210)
    assert response.achievement == pytest.approx(0.84) and response.on_track
    assert response.intervals[0].coverage == pytest.approx(1.0)
    assert response.intervals[2].actual_kw is None
    late = MeasureRequest(customer_id="ca", start=_local("2025-03-31 14:00"),
                          end=_local("2025-03-31 16:00"), target_kw=250,
                          readings=[Reading(timestamp=_local("2025-03-31 16:05"), load_kw=1)])
    with pytest.raises(DataError, match="outside the event window"):
        handle_measure(event_portfolio, late)


def test_serving_measure_valley_filling(event_portfolio):
    from serving.baseline_api import MeasureRequest, Reading, handle_measure

    stamps = pd.date_range(_local("2025-03-29 11:00"), _local("2025-03-29 12:00"),
                           freq="1min", inclusive="left")
    request = MeasureRequest(customer_id="cb", start=_local("2025-03-29 11:00"),
                             end=_local("2025-03-29 13:00"), target_kw=-300,
                             method="similar_days",
                             readings=[Reading(timestamp=t.to_pydatetime(), load_kw=740.0)
                                       for t in stamps])
    response = handle_measure(event_portfolio, request)
    assert response.achievement == pytest.approx(0.8) and response.on_track


def test_cli_measure_writes_csv_and_fails_clearly(tmp_path):
    from pipelines.cli_baselines import app

    data = write_event_portfolio(tmp_path / "pf")
    runner = CliRunner()
    out = tmp_path / "ev1.csv"
    result = runner.invoke(app, ["measure", "--data", str(data), "--event", "ev1", "--method",
                                 "similar_days", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out)
    assert len(rows) == 8 and rows["reduction_kw"].round(6).eq(200).all()
    customers = pd.read_csv(tmp_path / "ev1_customers.csv")
    assert bool(customers.loc[0, "counts"])
    bad = runner.invoke(app, ["measure", "--data", str(data), "--event", "nope"])
    assert bad.exit_code == 2 and "unknown event 'nope'" in bad.output
