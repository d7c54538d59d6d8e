"""Avoided emissions (forecasting.carbon) through vpp measure, the handler and the endpoint,
and the refusal of readings that cannot be physical on /baseline/measure (issue 16)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import asgi_client
from pydantic import ValidationError
from test_settlement import _local, write_event_portfolio
from typer.testing import CliRunner

from forecasting.carbon import (
    NATIONAL_KG_PER_KWH,
    EmissionFactors,
    check_factor,
    emission_totals,
    interval_emissions,
    monthly_emissions,
    region_factor,
    validate_emission_factors,
)
from forecasting.errors import (
    DataError,
    ImpossibleValueError,
    NaiveTimestampError,
    UnknownValueError,
)
from forecasting.portfolio import read_portfolio

TZ = "Asia/Shanghai"
EV1 = {"customer_id": "ca", "start": "2025-03-31T14:00:00+08:00",
       "end": "2025-03-31T16:00:00+08:00", "method": "similar_days", "target_kw": 250}


@pytest.fixture(scope="module")
def event_dir(tmp_path_factory) -> Path:
    return write_event_portfolio(tmp_path_factory.mktemp("carbon") / "pf")


@pytest.fixture(scope="module")
def event_portfolio(event_dir):
    return read_portfolio(event_dir)


def _idx(start: str, periods: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq="15min", tz=TZ).tz_convert("UTC")


# -- the factor table ---------------------------------------------------------------------

def test_default_region_province_and_explicit_factor():
    idx = _idx("2025-07-01 14:00", 4)
    factor, source = EmissionFactors().customer_factors(idx, ["s1"], TZ)
    assert (factor == NATIONAL_KG_PER_KWH).all() and NATIONAL_KG_PER_KWH == 0.5306
    assert "2023" in source and "national average" in source
    assert region_factor("Jiangsu") == (0.55, region_factor("east_china")[1] + " (jiangsu)")
    assert region_factor("sichuan")[0] == 0.2472  # southwest: hydro
    factor, source = EmissionFactors(grid_region="jiangsu").customer_factors(idx, ["s1"], TZ)
    assert (factor == 0.55).all() and "east_china" in source
    factor, source = EmissionFactors(override_kg_per_kwh=0.61).customer_factors(idx, [], TZ)
    assert (factor == 0.61).all() and source == "given explicitly"
    with pytest.raises(UnknownValueError, match="unknown grid region or province 'mars'.*"
                                                "east_china.*jiangsu"):
        EmissionFactors(grid_region="mars")
    for bad in (0, -0.5, 570.3, float("inf"), float("nan"), "x"):
        with pytest.raises(ImpossibleValueError, match="must be a number > 0 and <= 2"):
            check_factor(bad)


def test_emission_factors_csv_precedence_and_hour_of_day():
    """Site rows beat portfolio rows; a timestamp row beats an hour row beats a constant."""
    raw = pd.DataFrame({"site_id": ["s1", None, None, None],
                        "hour": [None, 14.0, 15.0, None],
                        "kg_co2_per_kwh": [0.40, 0.70, 0.30, 0.60]})
    factors = EmissionFactors(table=validate_emission_factors(raw, "emission_factors.csv"))
    idx = _idx("2025-07-01 13:45", 10)  # 13:45 .. 16:00 local
    s1, source = factors.customer_factors(idx, ["s1"], TZ)
    assert (s1 == 0.40).all() and source == "emission_factors.csv (site s1, constant)"
    s2, _ = factors.customer_factors(idx, ["s2"], TZ)
    np.testing.assert_allclose(s2, [0.60] + [0.70] * 4 + [0.30] * 4 + [0.60])
    both, source = factors.customer_factors(idx, ["s1", "s2"], TZ)  # a customer: the mean
    np.testing.assert_allclose(both, (s1 + s2) / 2)
    assert "site s1, constant" in source and "portfolio, hour" in source
    stamps = pd.DataFrame({"timestamp": ["2025-07-01T14:00:00+08:00",
                                         "2025-07-01T14:30:00+08:00"],
                           "kg_co2_per_kwh": [0.2, 0.9]})
    profile = EmissionFactors(table=validate_emission_factors(stamps, "t.csv"),
                              grid_region="east_china")
    got, source = profile.customer_factors(_idx("2025-07-01 14:00", 6), ["s2"], TZ)
    np.testing.assert_allclose(got, [0.2, 0.2, 0.9, 0.9, 0.55, 0.55])  # a row holds 30 min
    assert "67% of intervals" in source and "east_china" in source


@pytest.mark.parametrize("raw, error, match", [
    (pd.DataFrame({"timestamp": ["2025-07-01T14:00:00"], "kg_co2_per_kwh": [0.5]}),
     NaiveTimestampError, "without UTC offset"),
    (pd.DataFrame({"hour": [24], "kg_co2_per_kwh": [0.5]}), ImpossibleValueError, "0..23"),
    (pd.DataFrame({"hour": [3], "kg_co2_per_kwh": [530.6]}), ImpossibleValueError, "g/kWh"),
    (pd.DataFrame({"hour": [3, 3], "kg_co2_per_kwh": [0.5, 0.6]}), DataError, "second factor"),
    (pd.DataFrame({"hour": [3], "factor": [0.5]}), DataError, "kg_co2_per_kwh"),
])
def test_emission_factors_csv_refused_with_the_fix(raw, error, match):
    with pytest.raises(error, match=match):
        validate_emission_factors(raw, "emission_factors.csv")


# -- the arithmetic ------------------------------------------------------------------------

def test_negative_reduction_counts_as_added_emissions():
    idx = _idx("2025-07-01 14:00", 4)
    rows = interval_emissions(pd.Series([100.0, -40.0, np.nan, 200.0], index=idx), 0.5, 15)
    np.testing.assert_allclose(rows["reduced_kwh"], [25, 0, 0, 50])
    np.testing.assert_allclose(rows["increased_kwh"], [0, 10, 0, 0])
    assert emission_totals(rows) == {"reduced_kwh": 75.0, "increased_kwh": 10.0,
                                     "avoided_co2_kg": 37.5, "added_co2_kg": 5.0,
                                     "net_avoided_co2_kg": 32.5}


def test_measured_event_avoided_kg_by_hour_of_day(event_dir, tmp_path):
    """ev1: 1000 -> 800 kW for 14:00-16:00, 50 kWh per quarter hour; factor 0.5 at 14 h and
    0.7 at 15 h: 4 x 50 x 0.5 + 4 x 50 x 0.7 = 240 kg CO2 avoided."""
    from inference.measurement import measure_event

    pd.DataFrame({"hour": [14, 15], "kg_co2_per_kwh": [0.5, 0.7]}).to_csv(
        event_dir / "emission_factors.csv", index=False)
    try:
        result = measure_event(read_portfolio(event_dir), "ev1", "similar_days")
    finally:
        (event_dir / "emission_factors.csv").unlink()
    row = result.customers.iloc[0]
    assert row["reduced_kwh"] == pytest.approx(400) == row["reduction_energy_kwh"]
    assert row["avoided_co2_kg"] == pytest.approx(240) == row["net_avoided_co2_kg"]
    assert row["added_co2_kg"] == 0 and row["emission_factor_kg_per_kwh"] == pytest.approx(0.6)
    assert row["emission_factor_source"] == "emission_factors.csv (portfolio, hour)"
    assert result.portfolio["avoided_co2_kg"] == pytest.approx(240)
    np.testing.assert_allclose(result.intervals["avoided_co2_kg"], [25] * 4 + [35] * 4)
    month = monthly_emissions(result.intervals, TZ)
    assert month[["month", "customer_id"]].values.tolist() == [["2025-03", "ca"]]
    assert month["net_avoided_co2_kg"].iloc[0] == pytest.approx(240)


def test_valley_filling_event_adds_emissions_and_cli_reports_them(event_dir):
    """ev2 asks cb to draw 300 kW more for 2 h: 600 kWh above the baseline, at the national
    factor 600 x 0.5306 = 318.36 kg CO2 added, nothing avoided."""
    from pipelines.cli_baselines import app

    runner = CliRunner()
    out = runner.invoke(app, ["measure", "--data", str(event_dir), "--event", "ev2",
                              "--method", "similar_days", "--out", str(event_dir / "m.csv")])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "600.0 kWh above the baseline -> 318.4 kg added; net -318.4 kg" in text
    assert "factor 0.5306 kg CO2/kWh" in text and "national average" in text
    customers = pd.read_csv(event_dir / "m_customers.csv")
    assert customers.loc[0, "avoided_co2_kg"] == 0
    assert customers.loc[0, "added_co2_kg"] == pytest.approx(318.36)
    given = runner.invoke(app, ["measure", "--data", str(event_dir), "--event", "ev1",
                                "--method", "similar_days", "--emission-factor", "0.8"])
    assert given.exit_code == 0 and "400.0 kWh reduced -> 320.0 kg CO2 avoided" in " ".join(
        given.output.split())
    bad = runner.invoke(app, ["measure", "--data", str(event_dir), "--event", "ev1",
                              "--grid-region", "atlantis"])
    assert bad.exit_code == 2 and "unknown grid region" in bad.output


# -- the handler of POST /baseline/measure ------------------------------------------------

def _request(readings, **change):
    from serving.baseline_api import MeasureRequest

    return MeasureRequest(**{**EV1, "readings": readings, **change})


def _body(**change) -> dict:
    return {**EV1, "readings": _readings("2025-03-31 14:00", 5, 790), **change}


def _readings(start: str, minutes: int, load_kw: float, step: str = "5min") -> list[dict]:
    stamps = pd.date_range(_local(start), periods=minutes // int(step[:-3]), freq=step)
    return [{"timestamp": t.to_pydatetime(), "load_kw": load_kw} for t in stamps]


def test_handler_answers_reduced_kwh_and_avoided_co2(event_portfolio):
    from serving.baseline_api import handle_measure

    # 790 kW for 14:00-14:25 against a 1000 kW baseline: 210 kW; the second quarter hour
    # has 10 of its 15 minutes so far: 52.5 + 35 = 87.5 kWh
    response = handle_measure(event_portfolio, _request(_readings("2025-03-31 14:00", 25, 790)))
    assert response.n_measured == 2 and response.reduced_kwh == pytest.approx(87.5)
    assert response.avoided_co2_kg == pytest.approx(87.5 * 0.5306)
    assert response.net_avoided_co2_kg == response.avoided_co2_kg
    assert response.added_co2_kg == 0 and response.increased_kwh == 0
    assert response.emission_factor_kg_per_kwh == 0.5306
    assert "national average" in response.emission_factor_source
    first, second, third = response.intervals[:3]
    assert first.reduced_kwh == pytest.approx(52.5) and second.reduced_kwh == pytest.approx(35)
    assert third.reduced_kwh is None and third.emission_factor_kg_per_kwh == 0.5306
    given = handle_measure(event_portfolio, _request(_readings("2025-03-31 14:00", 25, 790),
                                                     emission_factor_kg_per_kwh=0.8))
    assert given.avoided_co2_kg == pytest.approx(70.0)
    assert given.emission_factor_source == "given explicitly"
    json.loads(given.model_dump_json())


@pytest.mark.parametrize("change, match", [
    ({"readings": [{"timestamp": "2025-03-31T14:00:00+08:00", "load_kw": -1e12}]},
     "greater than or equal to -10000000"),
    ({"readings": [{"timestamp": "2025-03-31T14:00:00+08:00", "load_kw": float("inf")}]},
     "finite number"),
    ({"readings": [{"timestamp": "2025-03-31T14:00:00+08:00", "load_kw": float("nan")}]},
     "finite number"),
    ({"target_kw": float("inf")}, "finite number"),
    ({"target_kw": 1e12}, "less than or equal to 10000000"),
    ({"emission_factor_kg_per_kwh": 0}, "greater than 0"),
    ({"emission_factor_kg_per_kwh": 570.3}, "less than or equal to 2"),
    ({"rule": {"max_paid_achievement_ratio": 1e300}}, "rule.max_paid_achievement_ratio"),
    ({"readings": [{"timestamp": "2025-03-31T14:00:00+08:00", "load_kw": 1, "kw": 1}]},
     "Extra inputs"),
])
def test_schema_refuses_non_finite_and_absurd_numbers(change, match):
    from serving.baseline_api import MeasureRequest

    with pytest.raises(ValidationError, match=match):
        MeasureRequest(**_body(**change))


def test_schema_refuses_infinity_and_nan_in_the_json_body():
    """The path BentoML takes (``model_validate_json`` of the body)."""
    from serving.baseline_api import MeasureRequest

    body = json.dumps({**EV1, "readings": [{"timestamp": "2025-03-31T14:00:00+08:00",
                                            "load_kw": 790.0}]})
    for literal in ("Infinity", "-Infinity", "NaN"):
        with pytest.raises(ValidationError, match="finite number"):
            MeasureRequest.model_validate_json(body.replace("790.0", literal))


def test_handler_refuses_readings_that_cannot_be_physical(event_portfolio, event_dir, tmp_path):
    from serving.baseline_api import handle_measure

    # ca: 600 + 400 kW, capacity_kw not declared: the scale is its largest reading, 1000 kW
    with pytest.raises(ImpossibleValueError, match=r"beyond 10 x the largest reading of "
                                                   r"customer ca \(1000 kW\).*not W or MW"):
        handle_measure(event_portfolio, _request(_readings("2025-03-31 14:00", 5, 10_001)))
    with pytest.raises(ImpossibleValueError, match="net infeed, but the readings of customer "
                                                   "ca before the event never are"):
        handle_measure(event_portfolio, _request(_readings("2025-03-31 14:00", 5, -300)))
    assert handle_measure(event_portfolio, _request(
        _readings("2025-03-31 14:00", 5, -15))).n_measured == 1  # within 2 % of 1000 kW
    # declared capacity is the scale; a site whose history shows net infeed may go negative
    sites = pd.read_csv(event_dir / "sites.csv").assign(capacity_kw=[700, 500, 600])
    meas = pd.read_csv(event_dir / "measurements.csv")
    midday = meas["timestamp"].str.contains("T12:00")  # the customer fed in at noon
    meas.loc[midday & meas["site_id"].isin(["load_a1", "load_a2"]), "load_kw"] = -100.0
    other = tmp_path / "infeed"
    other.mkdir()
    sites.to_csv(other / "sites.csv", index=False)
    meas.to_csv(other / "measurements.csv", index=False)
    for name in ("events.csv",):
        (other / name).write_text((event_dir / name).read_text())
    infeed = read_portfolio(other)
    with pytest.raises(ImpossibleValueError, match=r"contracted capacity of customer ca "
                                                   r"\(1200 kW\)"):
        handle_measure(infeed, _request(_readings("2025-03-31 14:00", 5, 12_001)))
    answer = handle_measure(infeed, _request(_readings("2025-03-31 14:00", 5, -300)))
    assert answer.intervals[0].actual_kw == -300


# -- through the service ------------------------------------------------------------------

@pytest.mark.integration
def test_endpoint_answers_co2_and_refuses_absurd_readings(event_dir, tmp_path, monkeypatch):

    for key, value in {"VPP_DATA_DIR": str(event_dir),
                       "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                       "MLFLOW_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
                       "VPP_KEYS_URL": f"sqlite:///{tmp_path / 'keys.db'}",
                       "VPP_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
                       "VPP_FORECAST_STORE_URL": str(tmp_path / "store")}.items():
        monkeypatch.setenv(key, value)
    from inference.keys import KeyStore

    api_key = KeyStore().create("carbon-tests", "admin")[1]
    body = {**EV1, "readings": [{"timestamp": "2025-03-31T14:00:00+08:00", "load_kw": 790.0}]}
    text = json.dumps(body)
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    assert os.environ["VPP_DATA_DIR"] == str(event_dir)
    with asgi_client(headers=headers) as client:
        ok = client.post("/baseline/measure", content=text)
        assert ok.status_code == 200, ok.text
        answer = ok.json()
        assert answer["reduced_kwh"] == pytest.approx(52.5)
        assert answer["avoided_co2_kg"] == pytest.approx(52.5 * 0.5306)
        assert answer["emission_factor_kg_per_kwh"] == 0.5306
        assert "MEE/NBS" in answer["emission_factor_source"]
        for literal, hint in (("-1e12", "load_kw"), ("Infinity", "finite number"),
                              ("NaN", "finite number"), ("50000", "beyond 10 x")):
            r = client.post("/baseline/measure", content=text.replace("790.0", literal))
            assert r.status_code == 400, (literal, r.text)
            assert hint in r.text, (literal, r.text)
