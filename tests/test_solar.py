"""Tests of forecasting.solar: hand-checked geometry, clear sky, de-accumulation, features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import solar
from forecasting.errors import ImpossibleValueError, NaiveTimestampError, UnknownValueError

NANJING = (32.06, 118.8)


def _times(start: str, periods: int, minutes: int = 60, tz: str = "UTC") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq=f"{minutes}min", tz=tz)


# --------------------------------------------------------------------------- solar position
def test_solstice_noon_elevation_nanjing():
    # solar noon at 118.8E is 12:00 CST + 4.8 min (longitude) + 1.8 min (equation of time)
    t = pd.DatetimeIndex([pd.Timestamp("2024-06-21 12:06", tz="Asia/Shanghai")])
    sp = solar.solar_position(t, *NANJING, resolution_minutes=1)
    expected = 90.0 - 32.06 + 23.44  # 81.38 deg
    assert sp["solar_elevation_deg"].iloc[0] == pytest.approx(expected, abs=0.5)
    assert sp["solar_zenith_deg"].iloc[0] == pytest.approx(90.0 - expected, abs=0.5)
    assert sp["solar_azimuth_deg"].iloc[0] == pytest.approx(180.0, abs=3.0)  # sun due south
    # perihelion is in January: early-July extraterrestrial irradiance is ~1321 W/m2
    assert sp["extra_radiation_wm2"].iloc[0] == pytest.approx(1321.0, abs=5.0)
    assert list(sp.columns) == [
        "solar_zenith_deg",
        "solar_azimuth_deg",
        "solar_elevation_deg",
        "extra_radiation_wm2",
    ]
    assert sp.index.equals(t)


def test_nrel_spa_published_example():
    # Reda & Andreas (2004), worked example: 2003-10-17 12:30:30 -07:00, Golden CO:
    # topocentric zenith 50.11162 deg, azimuth 194.34024 deg
    t = pd.DatetimeIndex([pd.Timestamp("2003-10-17 12:30:00-07:00")])
    sp = solar.solar_position(t, 39.742476, -105.1786, resolution_minutes=1, altitude_m=1830.14)
    assert sp["solar_zenith_deg"].iloc[0] == pytest.approx(50.11162, abs=0.01)
    assert sp["solar_azimuth_deg"].iloc[0] == pytest.approx(194.34024, abs=0.01)


def test_position_is_taken_at_interval_middle():
    hourly = solar.solar_position(_times("2024-03-20 02:00", 1), *NANJING, resolution_minutes=60)
    instant = solar.solar_position(_times("2024-03-20 02:29:30", 1), *NANJING, resolution_minutes=1)
    start = solar.solar_position(_times("2024-03-20 01:59:30", 1), *NANJING, resolution_minutes=1)
    assert hourly["solar_zenith_deg"].iloc[0] == pytest.approx(
        instant["solar_zenith_deg"].iloc[0], abs=1e-6
    )
    assert abs(hourly["solar_zenith_deg"].iloc[0] - start["solar_zenith_deg"].iloc[0]) > 1.0


def test_any_zone_gives_same_geometry():
    utc = _times("2024-06-21 00:00", 24)
    local = utc.tz_convert("Asia/Shanghai")
    a = solar.solar_position(utc, *NANJING, 60)
    b = solar.solar_position(local, *NANJING, 60)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy())


def test_naive_times_refused():
    naive = pd.date_range("2024-06-21", periods=3, freq="h")
    with pytest.raises(NaiveTimestampError, match="naive"):
        solar.solar_position(naive, *NANJING, 60)
    with pytest.raises(NaiveTimestampError, match="naive"):
        solar.pv_features(naive, None, *NANJING, 60)
    with pytest.raises(NaiveTimestampError, match="naive"):
        solar.deaccumulate(pd.Series([1.0, 2.0, 3.0], index=naive))


def test_bad_location_and_resolution_refused():
    t = _times("2024-06-21", 2)
    with pytest.raises(ImpossibleValueError, match="latitude"):
        solar.solar_position(t, 95.0, 0.0, 60)
    with pytest.raises(ImpossibleValueError, match="resolution"):
        solar.solar_position(t, *NANJING, 0)


# --------------------------------------------------------------------------- clear sky
def test_clear_sky_ghi_night_zero_noon_plausible():
    t = _times("2024-06-21 00:00", 24, tz="Asia/Shanghai")
    cs = solar.clear_sky_ghi(t, *NANJING, 60)
    assert cs.index.equals(t)
    assert (cs.iloc[[0, 1, 2, 3, 21, 22, 23]] == 0).all()  # 00-04 and 21-24 local: night
    noon = cs.loc[pd.Timestamp("2024-06-21 12:00", tz="Asia/Shanghai")]
    assert 850 < noon < 1050
    toa = 1321 * np.cos(np.radians(10))
    assert (cs <= toa).all()


def test_clear_sky_index_night_day_and_clip():
    ghi = pd.Series([50.0, np.nan, 400.0, 1200.0, np.nan, -5.0])
    cs = pd.Series([0.0, 5.0, 800.0, 800.0, 800.0, 800.0])
    k = solar.clear_sky_index(ghi, cs)
    assert k.iloc[0] == 0.0  # night, even with some GHI reported
    assert k.iloc[1] == 0.0  # night, GHI missing
    assert k.iloc[2] == pytest.approx(0.5)
    assert k.iloc[3] == pytest.approx(solar.MAX_CLEARSKY_INDEX)  # clipped
    assert np.isnan(k.iloc[4])  # day with missing GHI stays missing
    assert k.iloc[5] == 0.0
    assert k.index.equals(ghi.index)


def test_ghi_from_cloud_cover_kasten_czeplak():
    cs = pd.Series([800.0, 800.0, 800.0])
    est = solar.ghi_from_cloud_cover(pd.Series([0.0, 1.0, np.nan]), cs)
    assert est.iloc[0] == pytest.approx(800.0)
    assert est.iloc[1] == pytest.approx(200.0)  # 800 * (1 - 0.75)
    assert np.isnan(est.iloc[2])


# --------------------------------------------------------------------------- de-accumulation
def test_deaccumulate_three_steps_then_reset_at_new_issue():
    d1, d2 = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-02", tz="UTC")
    valid = pd.DatetimeIndex(
        [d1 + pd.Timedelta(hours=h) for h in (1, 2, 3)] + [d2 + pd.Timedelta(hours=1)]
    )
    frame = pd.DataFrame(
        {
            "issue_time": [d1, d1, d1, d2],
            # J/m2 since issue: 100 W/m2 for 1 h, then 200 W/m2, then a rounding dip, then reset
            "ssrd": [360_000.0, 1_080_000.0, 1_079_000.0, 180_000.0],
            "name": ["a", "b", "c", "d"],
        },
        index=valid,
    )
    out = solar.deaccumulate(frame, issue_time="issue_time")
    np.testing.assert_allclose(out["ssrd"].to_numpy(), [100.0, 200.0, 0.0, 50.0])
    assert list(out["name"]) == ["a", "b", "c", "d"]  # other columns untouched
    assert out["issue_time"].equals(frame["issue_time"])
    assert frame["ssrd"].iloc[0] == 360_000.0  # input not modified


def test_deaccumulate_daily_issue_hours_gefcom_layout():
    # GEFCom2014 solar: 00 UTC run, hour-ending stamps; the 00:00 row is the 24th step of the
    # previous day's run and the 01:00 row starts the new accumulation.
    valid = pd.DatetimeIndex(
        ["2012-04-01 23:00", "2012-04-02 00:00", "2012-04-02 01:00", "2012-04-02 02:00"], tz="UTC"
    )
    acc = pd.Series([7_200_000.0, 7_236_000.0, 18_000.0, 54_000.0], index=valid, name="ssrd")
    out = solar.deaccumulate(acc, issue_hours_utc=(0,))
    # the first row has no earlier row of its run: mean over the 23 h since the 00 UTC issue
    assert out.iloc[0] == pytest.approx(7_200_000.0 / (23 * 3600))
    np.testing.assert_allclose(out.iloc[1:].to_numpy(), [10.0, 5.0, 10.0])
    assert out.name == "ssrd" and out.index.equals(valid)
    hourly_only = solar.deaccumulate(acc, issue_hours_utc=(0,), max_span_minutes=60)
    assert np.isnan(hourly_only.iloc[0])
    np.testing.assert_allclose(hourly_only.iloc[1:].to_numpy(), [10.0, 5.0, 10.0])


def test_deaccumulate_first_row_without_issue_is_nan_and_gaps_average():
    valid = _times("2024-01-01 01:00", 4)
    acc = pd.Series([3600.0, np.nan, 3600.0 * 5, 3600.0 * 6], index=valid)
    out = solar.deaccumulate(acc)
    assert np.isnan(out.iloc[0]) and np.isnan(out.iloc[1])
    assert out.iloc[2] == pytest.approx(2.0)  # (5 - 1) over the 2 h since the last value
    assert out.iloc[3] == pytest.approx(1.0)


def test_deaccumulate_precipitation_to_mm_per_hour_and_overlapping_issues():
    i0, i12 = pd.Timestamp("2024-01-01 00:00", tz="UTC"), pd.Timestamp("2024-01-01 12:00", tz="UTC")
    valid = pd.DatetimeIndex(["2024-01-01 13:00", "2024-01-01 13:00", "2024-01-01 14:00"], tz="UTC")
    frame = pd.DataFrame(
        {"issue_time": [i0, i12, i12], "tp": [0.0130, 0.0005, 0.0020]}, index=valid
    )
    out = solar.deaccumulate(frame, issue_time="issue_time", unit_factor=1000.0, per_seconds=3600)
    # issue 00: 13 mm over 13 h; issue 12: 0.5 mm in 1 h then 1.5 mm in 1 h
    np.testing.assert_allclose(out["tp"].to_numpy(), [1.0, 0.5, 1.5])


def test_deaccumulate_empty():
    empty = pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    assert solar.deaccumulate(empty, issue_hours_utc=(0, 12)).empty


# --------------------------------------------------------------------------- decomposition, POA
def test_erbs_closure_and_horizontal_poa_equals_ghi():
    t = _times("2024-06-21 00:00", 24, tz="Asia/Shanghai")
    sp = solar.solar_position(t, *NANJING, 60)
    ghi = solar.clear_sky_ghi(t, *NANJING, 60, solar_pos=sp) * 0.8
    split = solar.erbs_decomposition(ghi, sp)
    cos_z = np.cos(np.radians(sp["solar_zenith_deg"]))
    day = sp["solar_zenith_deg"] < 80
    assert (split.to_numpy() >= 0).all()
    np.testing.assert_allclose(
        (split["dhi_wm2"] + split["dni_wm2"] * cos_z)[day], ghi[day], rtol=1e-6
    )
    for model in ("isotropic", "haydavies"):
        poa = solar.plane_of_array_irradiance(
            ghi, split["dni_wm2"], split["dhi_wm2"], sp, 0.0, 180.0, model=model
        )
        np.testing.assert_allclose(poa[day], ghi[day], rtol=1e-6)
        assert (poa[sp["solar_zenith_deg"] >= 90] == 0).all()
    tilted = solar.plane_of_array_irradiance(ghi, split["dni_wm2"], split["dhi_wm2"], sp, 30, 180)
    assert tilted.name == "poa_global_wm2"
    with pytest.raises(UnknownValueError, match="expected one of"):
        solar.plane_of_array_irradiance(ghi, ghi, ghi, sp, 30, 180, model="perez")


# --------------------------------------------------------------------------- pv_features
BASE_COLUMNS = [
    "pv_solar_zenith_deg",
    "pv_solar_elevation_deg",
    "pv_cos_zenith",
    "pv_solar_azimuth_sin",
    "pv_solar_azimuth_cos",
    "pv_toa_ghi_wm2",
    "pv_clearsky_ghi_wm2",
    "pv_is_night",
]


def test_pv_features_columns_follow_inputs():
    t = _times("2024-06-21 00:00", 24, tz="Asia/Shanghai")
    assert list(solar.pv_features(t, None, *NANJING, 60).columns) == BASE_COLUMNS
    w = pd.DataFrame({"ghi_wm2": 300.0, "temp_air_c": 20.0}, index=t)
    full = solar.pv_features(t, w, *NANJING, 60, tilt_deg=25, azimuth_deg=180, capacity_kw=50)
    assert list(full.columns) == BASE_COLUMNS + [
        "pv_clearsky_index",
        "pv_clearsky_poa_wm2",
        "pv_poa_global_wm2",
        "pv_physical_kw",
    ]
    only_tilt = solar.pv_features(t, w, *NANJING, 60, tilt_deg=25)  # no azimuth: not oriented
    assert "pv_poa_global_wm2" not in only_tilt.columns
    cloud = pd.DataFrame({"cloud_cover_frac": 0.5}, index=t)
    assert "pv_ghi_from_cloud_wm2" in solar.pv_features(t, cloud, *NANJING, 60).columns


def test_pv_features_night_is_zero_and_defined():
    t = _times("2024-06-21 00:00", 24, tz="Asia/Shanghai")
    w = pd.DataFrame({"ghi_wm2": np.nan, "temp_air_c": np.nan}, index=t)
    w.iloc[12, 0] = 500.0
    f = solar.pv_features(t, w, *NANJING, 60, tilt_deg=25, azimuth_deg=180, capacity_kw=50)
    night = f["pv_is_night"] == 1
    assert night.iloc[0] and not night.iloc[12]
    for c in ("pv_clearsky_index", "pv_poa_global_wm2", "pv_physical_kw", "pv_clearsky_ghi_wm2"):
        assert (f.loc[night, c] == 0).all(), c
    assert f.loc[~night].drop(index=t[12])["pv_physical_kw"].isna().all()  # missing GHI by day
    assert f.iloc[12]["pv_physical_kw"] > 0


def test_pv_physical_kw_hand_values():
    t = pd.DatetimeIndex([pd.Timestamp("2024-06-21 12:00", tz="Asia/Shanghai")] * 1)
    no_temp = pd.DataFrame({"ghi_wm2": [500.0]}, index=t)
    f = solar.pv_features(t, no_temp, *NANJING, 60, capacity_kw=100)
    assert f["pv_physical_kw"].iloc[0] == pytest.approx(50.0)  # 500 W/m2 * 100 kW / 1000
    hot = pd.DataFrame({"ghi_wm2": [800.0], "temp_air_c": [25.0]}, index=t)
    f = solar.pv_features(t, hot, *NANJING, 60, capacity_kw=100)
    # NOCT 45: T_cell = 25 + 25/800 * 800 = 50 degC; derate 1 - 0.0047 * 25 = 0.8825
    assert f["pv_physical_kw"].iloc[0] == pytest.approx(80.0 * 0.8825)


def test_pv_features_empty_input_gives_empty_output():
    t = pd.DatetimeIndex([], tz="UTC")
    w = pd.DataFrame({"ghi_wm2": [], "temp_air_c": []}, index=t)
    f = solar.pv_features(t, w, *NANJING, 60, tilt_deg=20, azimuth_deg=180, capacity_kw=10)
    assert f.empty and "pv_physical_kw" in f.columns and "pv_poa_global_wm2" in f.columns


def test_pv_features_refuses_misaligned_weather():
    t = _times("2024-06-21", 4)
    w = pd.DataFrame({"ghi_wm2": 100.0}, index=_times("2024-06-22", 4))
    with pytest.raises(ValueError, match="reindex"):
        solar.pv_features(t, w, *NANJING, 60)


def test_cached_linke_turbidity_equals_pvlib_lookup():
    import warnings

    import pvlib

    from forecasting.solar import linke_turbidity

    # every day of a leap and a non-leap year, at two hours of the day, two locations
    times = pd.date_range("2023-12-30", "2025-01-02", freq="7h", tz="UTC")
    for lat, lon in ((32.06, 118.8), (-33.9, 151.2)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            expected = pvlib.clearsky.lookup_linke_turbidity(times, lat, lon).to_numpy(float)
        np.testing.assert_allclose(linke_turbidity(times, lat, lon), expected, rtol=1e-12)
