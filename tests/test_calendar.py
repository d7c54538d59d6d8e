"""Chinese calendar: holidays, swapped working weekends, Spring Festival."""

import datetime as dt

import pandas as pd
import pytest

from forecasting.calendar import calendar_features, day_type, is_working_day, spring_festival
from forecasting.errors import NaiveTimestampError


@pytest.mark.parametrize("date", ["2025-01-26", "2025-02-08", "2024-02-04", "2026-01-04"])
def test_swapped_working_weekend_is_a_working_day(date):
    d = dt.date.fromisoformat(date)
    assert d.weekday() >= 5
    assert day_type(d, "CN") == "swapped_workday"
    assert is_working_day(d, "CN")


@pytest.mark.parametrize("date", ["2025-01-29", "2025-01-30", "2024-02-12", "2025-10-01"])
def test_spring_festival_and_national_day_are_holidays(date):
    d = dt.date.fromisoformat(date)
    assert day_type(d, "CN") == "holiday"
    assert not is_working_day(d, "CN")


def test_swapped_rest_weekday_is_a_holiday():
    # 2025-02-03 (Monday) is a rest day swapped from Sunday 2025-01-26
    assert day_type(dt.date(2025, 2, 3), "CN") == "holiday"


def test_plain_days_and_other_countries():
    assert day_type(dt.date(2025, 3, 4), "CN") == "workday"
    assert day_type(dt.date(2025, 3, 8), "CN") == "weekend"
    assert day_type(dt.date(2020, 12, 25), "NL") == "holiday"
    assert day_type(dt.date(2020, 12, 25), None) == "workday"


def test_spring_festival_dates():
    assert spring_festival(2024) == dt.date(2024, 2, 10)
    assert spring_festival(2025) == dt.date(2025, 1, 29)


def test_features_use_local_time_of_the_site():
    # 2025-01-25 16:00 UTC is Sunday 2025-01-26 00:00 in Shanghai: a swapped working day
    ts = pd.DatetimeIndex([pd.Timestamp("2025-01-25T16:00Z"), pd.Timestamp("2025-01-29T02:00Z")])
    f = calendar_features(ts, "Asia/Shanghai", "CN")
    assert f["cal_is_swapped_workday"].tolist() == [1, 0]
    assert f["cal_is_working_day"].tolist() == [1, 0]
    assert f["cal_is_holiday"].tolist() == [0, 1]
    assert f["cal_minute_of_day"].tolist() == [0, 600]
    assert f["cal_days_to_spring_festival"].tolist() == [-3, 0]


def test_naive_timestamps_refused():
    with pytest.raises(NaiveTimestampError):
        calendar_features(pd.DatetimeIndex([pd.Timestamp("2025-01-01")]), "Asia/Shanghai", "CN")


def test_schedule_announced_only_where_swapped_days_are_known():
    from forecasting.calendar import schedule_announced

    assert schedule_announced("CN", 2025)  # 5 swapped working weekends (STACK_NOTES)
    assert not schedule_announced("CN", 2035)  # not announced yet
    assert schedule_announced("NL", 2035)  # no swapped working days to announce
    assert schedule_announced(None, 2035)


def test_a_subdivision_adds_its_own_bank_holidays():
    easter_monday, summer = dt.date(2013, 4, 1), dt.date(2013, 8, 26)  # England, not Scotland
    assert day_type(easter_monday, "GB-ENG") == "holiday"
    assert day_type(summer, "GB-ENG") == "holiday"
    assert day_type(summer, "GB-SCT") == "workday"  # Scotland's is on 5 August
