"""Tests of forecasting.wind: hand-checked extrapolation, power curves and features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting import wind
from forecasting.errors import ImpossibleValueError, NaiveTimestampError, UnknownValueError

SHARED_CURVES = (
    Path(__file__).resolve().parents[2] / "shared/data/windpowerlib_data/power_curves.csv"
)


def _times(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")


# --------------------------------------------------------------------------- direction, shear
def test_direction_sincos():
    s, c = wind.wind_direction_sincos(90.0)
    assert (s, c) == pytest.approx((1.0, 0.0))
    s, c = wind.wind_direction_sincos(pd.Series([0.0, 180.0, 360.0, np.nan], index=list("abcd")))
    np.testing.assert_allclose(s.to_numpy(), [0.0, 0.0, 0.0, np.nan], atol=1e-12)
    np.testing.assert_allclose(c.to_numpy(), [1.0, -1.0, 1.0, np.nan], atol=1e-12)
    assert list(s.index) == list("abcd")


def test_hub_height_power_law_one_seventh():
    assert wind.hub_height_speed(10.0, 10.0, 100.0) == pytest.approx(13.895, abs=1e-3)
    out = wind.hub_height_speed(pd.Series([5.0, np.nan, -1.0]), 10.0, 100.0)
    np.testing.assert_allclose(out.to_numpy(), [5 * 10 ** (1 / 7), np.nan, 0.0])
    with pytest.raises(ImpossibleValueError):
        wind.hub_height_speed(5.0, 0.0, 100.0)


def test_shear_exponent_round_trip_and_calm():
    v10 = np.array([5.0, 8.0, 0.1, np.nan])
    v100 = np.array([5.0 * 10**0.2, 8.0 * 10**0.3, 3.0, 4.0])
    alpha = wind.shear_exponent_from_two_heights(v10, v100)
    np.testing.assert_allclose(alpha, [0.2, 0.3, np.nan, np.nan])
    back = wind.hub_height_speed(v10[:2], 10.0, 100.0, alpha[:2])
    np.testing.assert_allclose(back, v100[:2])


def test_log_law():
    # z0 = 0.03 m (open farmland): ln(100/0.03) / ln(10/0.03) = 8.1117 / 5.8091
    assert wind.log_law_speed(5.0, 10.0, 100.0, 0.03) == pytest.approx(5 * 1.39638, rel=1e-4)


def test_air_density_standard_atmosphere():
    assert wind.air_density_kgm3(15.0, 1013.25) == pytest.approx(1.225, abs=1e-3)
    assert np.isnan(wind.air_density_kgm3(np.nan, 1013.25))


# --------------------------------------------------------------------------- power curves
def test_generic_power_curve_regions():
    v = np.array([0.0, 2.9, 3.0, 7.5, 12.0, 20.0, 25.0, 25.1, 30.0, np.nan])
    p = wind.power_curve_kw(v, 2000.0)
    ramp = (7.5**3 - 27) / (12**3 - 27)
    np.testing.assert_allclose(p, [0, 0, 0, 2000 * ramp, 2000, 2000, 2000, 0, 0, np.nan])
    with pytest.raises(ImpossibleValueError, match="cut_in"):
        wind.power_curve_kw(v, 1.0, cut_in_mps=5, rated_mps=4)


def test_tabulated_curve_interpolates_scales_and_steps_at_cut_out():
    curve = pd.DataFrame({"wind_speed_mps": [0.0, 3.0, 10.0, 25.0, 25.5],
                          "power_kw": [0.0, 0.0, 2000.0, 2000.0, 0.0]})
    p = wind.tabulated_power_kw(np.array([6.5, 25.0, 30.0, np.nan]), curve)
    np.testing.assert_allclose(p, [1000.0, 2000.0, 0.0, np.nan])
    scaled = wind.tabulated_power_kw(np.array([10.0]), curve, capacity_kw=10_000)
    np.testing.assert_allclose(scaled, [10_000.0])
    assert wind.tabulated_power_kw(6.5, curve) == pytest.approx(1000.0)


def test_turbine_curve_from_windpowerlib_library_and_unknown_type():
    curve = wind.turbine_power_curve("E-101/3050")
    assert list(curve.columns) == ["wind_speed_mps", "power_kw"]
    assert curve["power_kw"].max() == pytest.approx(3050.0, rel=0.02)
    assert curve["wind_speed_mps"].is_monotonic_increasing and not curve.isna().any().any()
    with pytest.raises(UnknownValueError, match="E-101/3050"):
        wind.turbine_power_curve("E-101")


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_CURVES.exists(), reason="shared windpowerlib data absent")
def test_library_curve_equals_the_shared_oedb_snapshot():
    row = pd.read_csv(SHARED_CURVES, index_col="turbine_type").loc["E-101/3050"].dropna()
    curve = wind.turbine_power_curve("E-101/3050")
    np.testing.assert_allclose(curve["wind_speed_mps"], row.index.astype(float))
    np.testing.assert_allclose(curve["power_kw"], row.to_numpy(float) / 1000.0)


def test_wind_features_use_the_sites_turbine_and_correct_for_density():
    t = _times(2)
    w = pd.DataFrame({"wind_speed_100m_mps": [8.0, 8.0], "temp_air_c": [-20.0, 30.0],
                      "pressure_hpa": [1013.25, 1013.25]}, index=t)
    f = wind.wind_features(t, w, capacity_kw=3050.0, turbine_type="E-101/3050")
    plain = wind.tabulated_power_kw(np.array([8.0]), wind.turbine_power_curve("E-101/3050"),
                                    capacity_kw=3050.0)[0]
    cold, warm = f["wind_power_curve_kw"]
    assert cold > plain > warm  # dense cold air gives more power at the same speed
    generic = wind.wind_features(t, w, capacity_kw=3050.0)["wind_power_curve_kw"]
    assert not np.allclose(generic, f["wind_power_curve_kw"])
    unknown = wind.wind_features(t, w, capacity_kw=3050.0, turbine_type="generic 2.5 MW")
    np.testing.assert_allclose(unknown["wind_power_curve_kw"], generic)
    assert wind.power_curve_description("E-101/3050").startswith("windpowerlib")
    assert "not in windpowerlib" in wind.power_curve_description("generic 2.5 MW")
    assert wind.power_curve_description(None).startswith("generic")


# --------------------------------------------------------------------------- wind_features
def test_wind_features_columns_and_values():
    t = _times(4)
    w = pd.DataFrame(
        {
            "wind_speed_10m_mps": [5.0, 8.0, np.nan, 30.0],
            "wind_dir_10m_deg": [90.0, 0.0, np.nan, 180.0],
            "wind_speed_100m_mps": [5.0 * 10**0.2, 8.0 * 10**0.2, 10.0, 40.0],
            "temp_air_c": 15.0,
            "pressure_hpa": 1013.25,
            "site_id": "w1",  # other columns are ignored
        },
        index=t,
    )
    f = wind.wind_features(t, w, capacity_kw=1000.0)
    assert list(f.columns) == [
        "wind_speed_10m_mps",
        "wind_dir_10m_sin",
        "wind_dir_10m_cos",
        "wind_speed_100m_mps",
        "wind_shear_exponent",
        "wind_speed_hub_mps",
        "wind_speed_hub_cubed_m3s3",
        "wind_air_density_kgm3",
        "wind_power_curve_kw",
    ]
    np.testing.assert_allclose(f["wind_speed_hub_mps"], w["wind_speed_100m_mps"])  # 100 m default
    np.testing.assert_allclose(f["wind_speed_hub_cubed_m3s3"], w["wind_speed_100m_mps"] ** 3)
    assert f["wind_dir_10m_sin"].iloc[0] == pytest.approx(1.0)
    assert np.isnan(f["wind_dir_10m_sin"].iloc[2])
    assert f["wind_shear_exponent"].iloc[0] == pytest.approx(0.2)
    assert np.isnan(f["wind_shear_exponent"].iloc[2])
    assert f["wind_power_curve_kw"].iloc[3] == 0.0  # 40 m/s: above cut-out
    assert f["wind_power_curve_kw"].iloc[2] == pytest.approx(
        1000 * (10**3 - 27) / (12**3 - 27),
        rel=1e-3,  # density 1.225: no correction
    )


def test_wind_features_hub_from_10m_only_and_fraction_without_capacity():
    t = _times(3)
    w = pd.DataFrame({"wind_speed_10m_mps": [2.0, 10.0, np.nan]}, index=t)
    f = wind.wind_features(t, w)
    assert list(f.columns) == [
        "wind_speed_10m_mps",
        "wind_speed_hub_mps",
        "wind_speed_hub_cubed_m3s3",
        "wind_power_curve_frac",
    ]
    np.testing.assert_allclose(
        f["wind_speed_hub_mps"], [2 * 10 ** (1 / 7), 13.895, np.nan], rtol=1e-4
    )
    assert f["wind_power_curve_frac"].iloc[0] == 0.0  # 2.78 m/s < cut-in
    assert f["wind_power_curve_frac"].iloc[1] == 1.0
    assert np.isnan(f["wind_power_curve_frac"].iloc[2])
    f80 = wind.wind_features(t, w, hub_height_m=80)
    assert f80["wind_speed_hub_mps"].iloc[0] == pytest.approx(2 * 8 ** (1 / 7))


def test_wind_features_density_normalises_power_curve_speed():
    t = _times(1)
    cold = pd.DataFrame(
        {"wind_speed_100m_mps": [8.0], "temp_air_c": [-20.0], "pressure_hpa": [1013.25]}, index=t
    )
    f = wind.wind_features(t, cold, capacity_kw=1.0)
    rho = 101325 / (287.05 * 253.15)
    assert f["wind_air_density_kgm3"].iloc[0] == pytest.approx(rho)
    expected = wind.power_curve_kw(8.0 * (rho / 1.225) ** (1 / 3), 1.0)
    assert f["wind_power_curve_kw"].iloc[0] == pytest.approx(expected)
    assert f["wind_power_curve_kw"].iloc[0] > wind.power_curve_kw(8.0, 1.0)  # dense air


def test_wind_features_with_tabulated_curve():
    t = _times(2)
    curve = pd.DataFrame(
        {
            "wind_speed_mps": [0.0, 4.0, 10.0, 25.0, 25.5],
            "power_kw": [0.0, 0.0, 3000.0, 3000.0, 0.0],
        }
    )
    w = pd.DataFrame({"wind_speed_100m_mps": [7.0, 26.0]}, index=t)
    f = wind.wind_features(t, w, capacity_kw=6000.0, power_curve=curve)
    np.testing.assert_allclose(f["wind_power_curve_kw"], [3000.0, 0.0])


def test_wind_features_empty_none_naive_misaligned():
    empty = pd.DatetimeIndex([], tz="UTC")
    w = pd.DataFrame({"wind_speed_10m_mps": [], "wind_speed_100m_mps": []}, index=empty)
    f = wind.wind_features(empty, w, capacity_kw=10.0)
    assert f.empty and "wind_power_curve_kw" in f.columns
    none = wind.wind_features(_times(2), None)
    assert none["wind_speed_hub_mps"].isna().all()
    with pytest.raises(NaiveTimestampError, match="naive"):
        wind.wind_features(pd.date_range("2024-01-01", periods=2, freq="h"), None)
    with pytest.raises(ValueError, match="reindex"):
        wind.wind_features(_times(2), pd.DataFrame({"wind_speed_10m_mps": [1.0]}, index=_times(1)))


# --------------------------------------------------------------------------- direction terms
def test_direction_sector_speeds():
    split = wind.direction_sector_speeds(np.array([4.0, 6.0, 7.0, 3.0, np.nan]),
                                         np.array([350.0, 22.4, 22.6, 180.0, 90.0]), 8)
    expected = np.zeros((5, 8))
    expected[0, 0], expected[1, 0], expected[2, 1], expected[3, 4] = 4.0, 6.0, 7.0, 3.0
    expected[4] = np.nan
    np.testing.assert_allclose(split, expected)
    with pytest.raises(ImpossibleValueError, match="n_sectors"):
        wind.direction_sector_speeds(np.ones(2), np.ones(2), 1)


def test_wind_features_sector_columns_only_when_asked():
    t = _times(2)
    w = pd.DataFrame({"wind_speed_10m_mps": [5.0, 8.0], "wind_dir_10m_deg": [90.0, 180.0]},
                     index=t)
    plain = wind.wind_features(t, w)
    assert not [c for c in plain.columns if "sector" in c]
    f = wind.wind_features(t, w, direction_sectors=4)
    np.testing.assert_allclose(f[[f"wind_speed_10m_sector{k}of4_mps" for k in range(4)]],
                               [[0, 5, 0, 0], [0, 0, 8, 0]])
    pd.testing.assert_frame_equal(f[plain.columns], plain)
