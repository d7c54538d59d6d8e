"""Reader, validation errors and the 'known at issue time' rule."""

import gzip

import numpy as np
import pandas as pd
import pytest
from factories import TZ, write_portfolio

from forecasting.errors import (
    DuplicateRowsError,
    ImpossibleValueError,
    IrregularResolutionError,
    MissingColumnsError,
    NaiveTimestampError,
    UnknownSiteError,
    UnknownValueError,
    UnparsableTimestampError,
)
from forecasting.portfolio import latest_issue, read_portfolio


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet"])
def test_reads_every_format_to_utc(tmp_path, fmt):
    p = read_portfolio(write_portfolio(tmp_path / fmt, days=10, fmt=fmt))
    assert list(p.sites) == ["load_x"]
    assert p.sites["load_x"].resolution_minutes == 15
    assert str(p.measurements["timestamp"].dt.tz) == "UTC"
    assert len(p.measurements) == 10 * 96
    first = p.measurements["timestamp"].iloc[0]
    assert first == pd.Timestamp("2024-03-01 00:00", tz=TZ)
    assert p.weather["issue_time"].notna().all()


def _edit_csv(path, fn):
    frame = pd.read_csv(path, dtype=str)
    fn(frame)
    frame.to_csv(path, index=False)


def test_naive_timestamp_is_refused_with_row(tmp_path):
    d = write_portfolio(tmp_path, days=3)
    _edit_csv(d / "measurements.csv", lambda f: f.__setitem__(
        "timestamp", f["timestamp"].where(f.index != 5, "2024-03-01 01:15:00")))
    with pytest.raises(NaiveTimestampError, match=r"row 5 .*without UTC offset"):
        read_portfolio(d)


def test_unparsable_timestamp(tmp_path):
    d = write_portfolio(tmp_path, days=3)
    _edit_csv(d / "measurements.csv", lambda f: f.__setitem__(
        "timestamp", f["timestamp"].where(f.index != 7, "yesterday+08:00")))
    with pytest.raises(UnparsableTimestampError, match="row 7"):
        read_portfolio(d)


def test_duplicate_rows(tmp_path):
    d = write_portfolio(tmp_path, days=3)
    frame = pd.read_csv(d / "measurements.csv", dtype=str)
    pd.concat([frame, frame.iloc[[3]]]).to_csv(d / "measurements.csv", index=False)
    with pytest.raises(DuplicateRowsError, match="duplicate rows"):
        read_portfolio(d)


def test_unknown_kind(tmp_path):
    d = write_portfolio(tmp_path, days=3)
    _edit_csv(d / "sites.csv", lambda f: f.__setitem__("kind", "battery"))
    with pytest.raises(UnknownValueError, match="'battery'.*expected one of"):
        read_portfolio(d)


def test_missing_value_column(tmp_path):
    d = write_portfolio(tmp_path, days=3)
    frame = pd.read_csv(d / "measurements.csv", dtype=str).rename(columns={"load_kw": "power"})
    frame.to_csv(d / "measurements.csv", index=False)
    with pytest.raises(MissingColumnsError, match="load_kw"):
        read_portfolio(d)


def test_unknown_site_in_measurements(tmp_path):
    d = write_portfolio(tmp_path, days=3)
    _edit_csv(d / "measurements.csv", lambda f: f.__setitem__(
        "site_id", f["site_id"].where(f.index != 2, "ghost")))
    with pytest.raises(UnknownSiteError, match="'ghost'.*sites.csv"):
        read_portfolio(d)


def test_load_in_watts_is_rejected_against_capacity(tmp_path):
    d = write_portfolio(tmp_path, days=3)
    _edit_csv(d / "measurements.csv", lambda f: f.__setitem__(
        "load_kw", (f["load_kw"].astype(float) * 1000).astype(str)))
    with pytest.raises(ImpossibleValueError, match="in W or MW instead of kW"):
        read_portfolio(d)


def test_negative_pv_is_rejected(tmp_path):
    d = write_portfolio(tmp_path, days=3)
    _edit_csv(d / "sites.csv", lambda f: (f.__setitem__("kind", "pv"),
                                          f.__setitem__("latitude_deg", "32"),
                                          f.__setitem__("longitude_deg", "118.8")))
    _edit_csv(d / "measurements.csv", lambda f: (
        f.rename(columns={"load_kw": "pv_power_kw"}, inplace=True),
        f.__setitem__("pv_power_kw", np.where(f.index == 4, "-300", "10"))))
    with pytest.raises(ImpossibleValueError, match="generation is >= 0"):
        read_portfolio(d)


def test_irregular_resolution(tmp_path):
    d = write_portfolio(tmp_path, days=3)
    frame = pd.read_csv(d / "measurements.csv", dtype=str)
    frame.loc[10, "timestamp"] = "2024-03-01T02:37:00+08:00"
    frame.to_csv(d / "measurements.csv", index=False)
    with pytest.raises(IrregularResolutionError):
        read_portfolio(d)


def test_weather_in_wrong_unit(tmp_path):
    d = write_portfolio(tmp_path, days=3)
    _edit_csv(d / "weather.csv", lambda f: f.__setitem__(
        "temp_air_c", (f["temp_air_c"].astype(float) + 273.15).astype(str)))
    with pytest.raises(ImpossibleValueError, match="temp_air_c.*degC not K"):
        read_portfolio(d)


def test_gaps_and_nans_are_notes_not_errors(tmp_path):
    d = write_portfolio(tmp_path, days=3)
    frame = pd.read_csv(d / "measurements.csv", dtype=str)
    frame.loc[20, "load_kw"] = np.nan
    frame.drop(index=[30, 31]).to_csv(d / "measurements.csv", index=False)
    p = read_portfolio(d)
    assert len(p.measurements) == 3 * 96 - 3
    assert any("empty load_kw readings dropped" in n for n in p.notes)
    assert any("missing 15-minute intervals" in n for n in p.notes)


def test_missing_required_table(tmp_path):
    d = write_portfolio(tmp_path, days=3)
    (d / "sites.csv").unlink()
    with pytest.raises(MissingColumnsError, match="required table 'sites'"):
        read_portfolio(d)


def test_gzip_csv_with_offsets_roundtrip(tmp_path):
    d = write_portfolio(tmp_path, days=2, fmt="csv.gz")
    with gzip.open(d / "measurements.csv.gz", "rt") as fh:
        assert "+08:00" in fh.readlines()[1]


def test_known_at_keeps_only_what_was_known(tmp_path):
    p = read_portfolio(write_portfolio(tmp_path, days=10))
    data = p.site_data("load_x")
    issue = pd.Timestamp("2024-03-05T12:00:00+08:00")
    known = data.known_at(issue)
    # the last known interval is 11:45-12:00 local: it has ended at 12:00
    assert known.values_kw.index.max() == pd.Timestamp("2024-03-05T11:45:00+08:00")
    assert (known.weather["issue_time"] <= issue).all()
    assert known.weather["issue_time"].max() == pd.Timestamp("2024-03-05T00:00:00Z")
    with pytest.raises(NaiveTimestampError, match="issue_time"):
        data.known_at(pd.Timestamp("2024-03-05 12:00"))


def test_latest_issue_picks_latest_at_or_before():
    ts = pd.Timestamp("2024-01-02T00:00Z")
    frame = pd.DataFrame({
        "timestamp": [ts, ts, ts],
        "issue_time": pd.to_datetime(["2023-12-31T00:00Z", "2024-01-01T00:00Z",
                                      "2024-01-01T12:00Z"]),
        "temp_air_c": [1.0, 2.0, 3.0]})
    issues = pd.DatetimeIndex(pd.to_datetime(["2024-01-01T06:00Z", "2024-01-01T12:00Z",
                                              "2023-12-30T00:00Z"]))
    out = latest_issue(frame, pd.DatetimeIndex([ts] * 3), issues, ["temp_air_c"])
    assert out["temp_air_c"].tolist()[:2] == [2.0, 3.0]
    assert np.isnan(out["temp_air_c"].iloc[2])
