"""Rule baselines on hand-made series whose answers are computed by hand in the comments."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from forecasting.errors import (
    InsufficientDataError,
    IrregularResolutionError,
    NaiveTimestampError,
)
from models.baselines import (
    PreEventAverageBaseline,
    SimilarDaysBaseline,
    XofYBaseline,
    make_baseline,
)
from models.baselines.common import pool_of_day

TZ = "Asia/Shanghai"


def day_coded_load(start="2025-01-01", end="2025-03-01", freq="1h") -> pd.Series:
    """Load constant over each local day: 100 * month + day of month (kW).

    2025-02-08 -> 208 kW, 2025-01-27 -> 127 kW: a pool's mean is easy to compute by hand.
    """
    idx = pd.date_range(start, end, freq=freq, tz=TZ, inclusive="left")
    values = 100.0 * idx.month + idx.day
    return pd.Series(values, index=idx.tz_convert("UTC"), name="load_kw")


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def test_pool_of_day_follows_the_chinese_calendar():
    assert pool_of_day(dt.date(2025, 2, 8), "CN") == "working"   # swapped working Saturday
    assert pool_of_day(dt.date(2025, 1, 29), "CN") == "holiday"  # Spring Festival
    assert pool_of_day(dt.date(2025, 2, 1), "CN") == "holiday"   # Saturday inside the break
    assert pool_of_day(dt.date(2025, 2, 15), "CN") == "weekend"
    assert pool_of_day(dt.date(2025, 2, 10), "CN") == "working"


def test_similar_days_pool_skips_holidays_and_event_days_and_takes_swapped_saturday():
    # Event Mon 2025-02-10 14:00-16:00. Going back: 02-09 Sun (weekend, skip), 02-08 Sat
    # swapped working day (take, 208), 02-07 (207), 02-06 earlier event day (skip), 02-05
    # (205), 02-04..01-28 Spring Festival (skip), 01-27 (127), 01-26 swapped Sunday (126).
    load = day_coded_load()
    model = SimilarDaysBaseline().fit(load, timezone=TZ, holiday_country="CN",
                                      event_days={dt.date(2025, 2, 6)})
    details = model.predict_details(at("2025-02-10 14:00"), at("2025-02-10 16:00"))
    assert details.pool_days == (dt.date(2025, 2, 8), dt.date(2025, 2, 7), dt.date(2025, 2, 5),
                                 dt.date(2025, 1, 27), dt.date(2025, 1, 26))
    frame = details.frame
    assert list(frame.columns) == ["baseline_kw"]
    assert len(frame) == 2 and frame.index.tz is not None
    assert frame.index[0] == at("2025-02-10 14:00")
    np.testing.assert_allclose(frame["baseline_kw"], (208 + 207 + 205 + 127 + 126) / 5)


def test_similar_days_high_4_of_5_drops_the_lowest_day():
    load = day_coded_load()
    model = SimilarDaysBaseline(n_days=5, high_x=4).fit(
        load, timezone=TZ, holiday_country="CN", event_days=["2025-02-06"])
    frame = model.predict(at("2025-02-10 14:00"), at("2025-02-10 16:00"))
    np.testing.assert_allclose(frame["baseline_kw"], (208 + 207 + 205 + 127) / 4)


def test_weekend_event_uses_ordinary_weekend_days_only():
    # Sun 2025-02-16: 02-15 Sat (215), 02-09 Sun (209), 02-08 swapped Saturday (working,
    # skip), 02-02/02-01 inside the Spring Festival break (holiday pool, skip), 01-26 swapped
    # (skip), 01-25 Sat (125). Mean of 3: 183.
    model = SimilarDaysBaseline().fit(day_coded_load(), timezone=TZ, holiday_country="CN")
    details = model.predict_details(at("2025-02-16 18:00"), at("2025-02-16 20:00"))
    assert details.pool_days == (dt.date(2025, 2, 15), dt.date(2025, 2, 9), dt.date(2025, 1, 25))
    np.testing.assert_allclose(details.frame["baseline_kw"], 183.0)


def test_without_holiday_country_every_weekday_is_a_working_day():
    model = SimilarDaysBaseline(n_days=2).fit(day_coded_load(), timezone=TZ,
                                              holiday_country=None)
    details = model.predict_details(at("2025-01-29 14:00"), at("2025-01-29 15:00"))
    assert details.pool_days == (dt.date(2025, 1, 28), dt.date(2025, 1, 27))


def test_incomplete_days_are_skipped():
    load = day_coded_load()
    load = load.drop(at("2025-02-07 14:00").tz_convert("UTC"))  # a gap inside the window
    model = SimilarDaysBaseline(n_days=1).fit(load, timezone=TZ, holiday_country="CN")
    details = model.predict_details(at("2025-02-10 14:00"), at("2025-02-10 16:00"))
    assert details.pool_days == (dt.date(2025, 2, 8),)
    details = model.predict_details(at("2025-02-11 14:00"), at("2025-02-11 16:00"))
    assert details.pool_days == (dt.date(2025, 2, 10),)


def flat_with_morning(level_kw: float, morning_kw: float) -> pd.Series:
    """100 kW on every day; on 2025-02-12 ``morning_kw`` from 06:00 to 09:00 local and
    ``level_kw`` from 09:00 on (the hours after the notice)."""
    idx = pd.date_range("2025-02-01", "2025-02-13", freq="15min", tz=TZ, inclusive="left")
    values = pd.Series(100.0, index=idx)
    values[(idx >= at("2025-02-12 06:00")) & (idx < at("2025-02-12 09:00"))] = morning_kw
    values[idx >= at("2025-02-12 09:00")] = level_kw
    return values.tz_convert("UTC")


@pytest.mark.parametrize("kind, cap, morning, expected", [
    ("multiplicative", 0.2, 110.0, 110.0),   # factor 110/100 = 1.1, inside the cap
    ("multiplicative", 0.2, 150.0, 120.0),   # factor 1.5 capped at 1.2
    ("multiplicative", 0.2, 50.0, 80.0),     # factor 0.5 capped at 0.8
    ("multiplicative", None, 150.0, 150.0),  # no cap
    ("additive", 0.2, 150.0, 120.0),         # +50 kW capped at 0.2 * 100 kW
    ("additive", 0.2, 90.0, 90.0),           # -10 kW inside the cap
    (None, 0.2, 150.0, 100.0),               # no adjustment
])
def test_x_of_y_day_of_adjustment_and_cap(kind, cap, morning, expected):
    # Notice 10:00, start 14:00: adjustment window = 06:00-09:00 (3 h ending 1 h before the
    # notice); the pool days are 100 kW there, the event day `morning` kW.
    load = flat_with_morning(level_kw=500.0, morning_kw=morning)
    model = XofYBaseline(x=3, y=3, adjustment=kind, adjustment_cap=cap).fit(
        load, timezone=TZ, holiday_country="CN")
    details = model.predict_details(at("2025-02-12 14:00"), at("2025-02-12 16:00"),
                                    notice_time=at("2025-02-12 10:00"))
    np.testing.assert_allclose(details.frame["baseline_kw"], expected)
    assert details.adjustment_kind == kind
    assert len(details.pool_days) == 3


def test_day_ahead_notice_compares_the_evening_before_with_its_own_day_type():
    # Weekdays 100 kW, weekends 50 kW. Event Mon 2025-03-17 14:00, notice Sun 19:00: the
    # adjustment window is Sun 15:00-18:00, where the customer drew 55 kW. Earlier Sundays
    # drew 50 kW there, so the factor is 55 / 50 = 1.1 (not 55 / 100, which comparing with
    # the weekdays before the pool days would give).
    idx = pd.date_range("2025-02-10", "2025-03-18", freq="15min", tz=TZ, inclusive="left")
    values = pd.Series(np.where(idx.day_of_week < 5, 100.0, 50.0), index=idx)
    sunday = (idx >= at("2025-03-16 15:00")) & (idx < at("2025-03-16 18:00"))
    values[sunday] = 55.0
    model = XofYBaseline(x=5, y=5).fit(values.tz_convert("UTC"), timezone=TZ,
                                       holiday_country="CN")
    details = model.predict_details(at("2025-03-17 14:00"), at("2025-03-17 16:00"),
                                    notice_time=at("2025-03-16 19:00"))
    assert details.adjustment == pytest.approx(1.1)
    np.testing.assert_allclose(details.frame["baseline_kw"], 110.0)


def test_adjustment_ignores_load_after_the_notice():
    # Between the notice (10:00) and the start (14:00) the customer pre-cools: 500 kW or 0 kW
    # must give the same baseline.
    base = XofYBaseline(x=3, y=3)
    a = clone(base).fit(flat_with_morning(500.0, 110.0), timezone=TZ, holiday_country="CN")
    b = clone(base).fit(flat_with_morning(0.0, 110.0), timezone=TZ, holiday_country="CN")
    window = (at("2025-02-12 14:00"), at("2025-02-12 16:00"), at("2025-02-12 10:00"))
    pd.testing.assert_frame_equal(a.predict(*window), b.predict(*window))


@pytest.mark.parametrize("method", ["similar_days", "x_of_y", "pre_event"])
def test_no_leakage_load_after_the_start_does_not_move_the_baseline(method):
    load = day_coded_load("2025-03-01", "2025-05-01", freq="15min")
    start, end = at("2025-04-15 14:00"), at("2025-04-15 17:00")
    changed = load.copy()
    changed[changed.index >= start] *= 3.0  # the event and everything after it
    a = make_baseline(method).fit(load, timezone=TZ, holiday_country="CN")
    b = make_baseline(method).fit(changed, timezone=TZ, holiday_country="CN")
    pd.testing.assert_frame_equal(a.predict(start, end), b.predict(start, end))
    # ... whereas load before the start does move it (the test can fail)
    earlier = load.copy()
    earlier[earlier.index < start] *= 2.0
    c = make_baseline(method).fit(earlier, timezone=TZ, holiday_country="CN")
    assert not np.allclose(a.predict(start, end)["baseline_kw"],
                           c.predict(start, end)["baseline_kw"])


def test_pre_event_average_is_the_mean_of_the_15_minutes_before_the_start():
    idx = pd.date_range("2025-02-10 12:00", "2025-02-10 16:00", freq="5min", tz=TZ,
                        inclusive="left")
    values = pd.Series(100.0, index=idx)
    values[at("2025-02-10 13:45")] = 60.0
    values[at("2025-02-10 13:50")] = 90.0
    values[at("2025-02-10 13:55")] = 120.0
    values[idx >= at("2025-02-10 14:00")] = 10.0
    model = PreEventAverageBaseline().fit(values, timezone=TZ, holiday_country="CN")
    frame = model.predict(at("2025-02-10 14:00"), at("2025-02-10 15:00"))
    assert len(frame) == 12  # 5-minute intervals
    np.testing.assert_allclose(frame["baseline_kw"], (60 + 90 + 120) / 3)


def test_pre_event_average_on_hourly_data_uses_the_last_hour():
    model = PreEventAverageBaseline().fit(day_coded_load(), timezone=TZ, holiday_country="CN")
    frame = model.predict(at("2025-02-10 00:00"), at("2025-02-10 02:00"))
    np.testing.assert_allclose(frame["baseline_kw"], 209.0)  # 2025-02-09 23:00-24:00


def test_event_without_history_raises_a_clear_error():
    model = SimilarDaysBaseline().fit(day_coded_load(), timezone=TZ, holiday_country="CN",
                                      customer_id="c07")
    with pytest.raises(InsufficientDataError, match=r"customer c07: no similar-day pool.*"
                                                    r"found 0 of the 1 day"):
        model.predict(at("2024-06-03 14:00"), at("2024-06-03 16:00"))
    with pytest.raises(InsufficientDataError, match="no reading in the 15 min before"):
        PreEventAverageBaseline().fit(day_coded_load(), timezone=TZ).predict(
            at("2024-06-03 14:00"), at("2024-06-03 16:00"))


def test_pool_made_only_of_event_days_is_empty():
    load = day_coded_load()
    events = {dt.date(2025, 2, 1) + dt.timedelta(days=k) for k in range(27)}
    model = SimilarDaysBaseline(lookback_days=20).fit(load, timezone=TZ, holiday_country="CN",
                                                      event_days=events)
    with pytest.raises(InsufficientDataError, match=r"earlier event day\(s\)"):
        model.predict(at("2025-02-28 14:00"), at("2025-02-28 15:00"))


def test_bad_inputs_are_refused_with_the_reason():
    naive = day_coded_load().tz_localize(None)
    with pytest.raises(NaiveTimestampError, match="naive"):
        SimilarDaysBaseline().fit(naive, timezone=TZ)
    load = day_coded_load()
    with pytest.raises(NaiveTimestampError, match="start"):
        SimilarDaysBaseline().fit(load, timezone=TZ).predict("2025-02-10 14:00",
                                                              at("2025-02-10 16:00"))
    shifted = load.index.to_series()
    shifted.iloc[5] += pd.Timedelta(minutes=7)  # one reading off the hourly grid
    irregular = pd.Series(load.to_numpy(), index=pd.DatetimeIndex(shifted))
    with pytest.raises(IrregularResolutionError, match="irregular grid"):
        SimilarDaysBaseline().fit(irregular, timezone=TZ)
    with pytest.raises(ValueError, match="high_x=6 exceeds n_days=5"):
        SimilarDaysBaseline(high_x=6).fit(load, timezone=TZ)
    with pytest.raises(ValueError, match="unknown adjustment 'ratio'"):
        XofYBaseline(adjustment="ratio").fit(load, timezone=TZ)
    with pytest.raises(ValueError, match="unknown baseline method 'magic'"):
        make_baseline("magic")
    with pytest.raises(ValueError, match="not after its start"):
        SimilarDaysBaseline().fit(load, timezone=TZ).predict(at("2025-02-10 16:00"),
                                                              at("2025-02-10 14:00"))


def test_daylight_saving_zone_is_handled():
    idx = pd.date_range("2024-10-01", "2024-11-20", freq="1h", tz="America/Chicago")
    load = pd.Series(1.0 + (idx.hour >= 12), index=idx.tz_convert("UTC"))
    model = XofYBaseline().fit(load, timezone="America/Chicago", holiday_country="US")
    start = pd.Timestamp("2024-11-06 14:00", tz="America/Chicago")
    frame = model.predict(start, start + pd.Timedelta(hours=2))
    np.testing.assert_allclose(frame["baseline_kw"], 2.0)
