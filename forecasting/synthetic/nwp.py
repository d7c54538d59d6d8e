"""Synthetic day-ahead numerical weather prediction (NWP) for the sample portfolio.

Synthetic: forecasts are the generator's weather truth plus random errors, not output of a
weather model. One issue per day at 00:00 UTC (08:00 in Asia/Shanghai) covers leads 0..72 h
hourly; an issue exists for the day before the period so that its first local day has a
day-ahead forecast. Rows keep only timestamps inside the period.

Errors per issue are AR(1) along the lead (e-folding 12 h) with a standard deviation growing
linearly from lead 0 to lead 72 h (``ERROR_STD``); three quarters of the error variance is
shared by all sites (NWP errors are spatially coherent). Cloud errors act on the logit of
a 3-hour-smoothed cloud cover (NWP does not resolve single cumulus), irradiance follows
from the forecast cloud through the same clear-sky and cloud-factor chain as the truth,
so irradiance errors are large on broken-cloud days and small on clear or overcast ones.
Wind-speed errors are multiplicative (log space).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from forecasting.synthetic.grid import TimeGrid
from forecasting.synthetic.random import ar1
from forecasting.synthetic.weather import cloud_factor, split_ghi, weather_frame

MAX_LEAD_HOURS = 72
ISSUE_HOUR_UTC = 0
LEAD_CORRELATION_HOURS = 12.0
REGIONAL_ERROR_SHARE = 0.75
# error standard deviation at lead 0 and at lead 72 h, in the unit of the quantity
ERROR_STD: dict[str, tuple[float, float]] = {
    "temp_air_c": (0.6, 2.2),
    "relative_humidity_pct": (4.0, 11.0),
    "pressure_hpa": (0.5, 2.5),
    "cloud_logit": (0.6, 1.6),
    "wind_speed_log": (0.10, 0.32),
    "wind_shear_log": (0.03, 0.08),
    "wind_dir_deg": (12.0, 35.0),
    "precipitation_log": (0.5, 1.0),
}


def issue_times(grid: TimeGrid) -> pd.DatetimeIndex:
    """Daily issue times (UTC) from the day before the first local date to the last one."""
    first = pd.Timestamp(grid.dates[0]) - pd.Timedelta(days=1) + pd.Timedelta(hours=ISSUE_HOUR_UTC)
    return pd.date_range(first.tz_localize("UTC"), periods=grid.n_days + 1, freq="D").as_unit(
        grid.index_hourly.unit
    )


def _lead_errors(rng: np.random.Generator, name: str, n_sites: int, n_issues: int) -> np.ndarray:
    std0, std72 = ERROR_STD[name]
    n_leads = MAX_LEAD_HOURS + 1
    std = std0 + (std72 - std0) * np.arange(n_leads) / MAX_LEAD_HOURS
    regional = ar1(rng, (n_issues, n_leads), LEAD_CORRELATION_HOURS)
    local = ar1(rng, (n_sites, n_issues, n_leads), LEAD_CORRELATION_HOURS)
    return std * (
        np.sqrt(REGIONAL_ERROR_SHARE) * regional + np.sqrt(1 - REGIONAL_ERROR_SHARE) * local
    )


def _smooth_hours(values: np.ndarray, width: int = 3) -> np.ndarray:
    """Centred moving mean along the last axis (edges use the available neighbours)."""
    kernel = np.ones(width)
    padded_sum = np.apply_along_axis(np.convolve, -1, values, kernel, mode="same")
    counts = np.convolve(np.ones(values.shape[-1]), kernel, mode="same")
    return padded_sum / counts


def forecast_frame(
    rng: np.random.Generator,
    grid: TimeGrid,
    site_ids: tuple[str, ...],
    hourly: dict[str, np.ndarray],
) -> pd.DataFrame:
    """Hourly NWP rows of every site: ``issue_time`` <= ``timestamp`` <= issue + 72 h."""
    n_sites, n_hours = hourly["temp_air_c"].shape
    issues = issue_times(grid)
    offsets = ((issues - grid.index_hourly[0]) // pd.Timedelta(hours=1)).to_numpy()
    hour_index = offsets[:, None] + np.arange(MAX_LEAD_HOURS + 1)[None, :]
    valid = (hour_index >= 0) & (hour_index < n_hours)
    rows = hour_index[valid]  # flattened (issue, lead) pairs inside the period

    def truth(name: str, source: dict[str, np.ndarray] = hourly) -> np.ndarray:
        return source[name][:, rows]

    def error(name: str) -> np.ndarray:
        return _lead_errors(rng, name, n_sites, len(issues))[:, valid]

    values: dict[str, np.ndarray] = {
        "temp_air_c": truth("temp_air_c") + error("temp_air_c"),
        "relative_humidity_pct": np.clip(
            truth("relative_humidity_pct") + error("relative_humidity_pct"), 5.0, 100.0
        ),
        "pressure_hpa": truth("pressure_hpa") + error("pressure_hpa"),
    }
    cloud_logit = _smooth_hours(logit(np.clip(hourly["cloud_cover_frac"], 0.01, 0.99)))
    cloud = expit(cloud_logit[:, rows] + error("cloud_logit"))
    values["cloud_cover_frac"] = cloud
    ghi = truth("clearsky_ghi_wm2") * cloud_factor(cloud)
    zenith = truth("solar_zenith_deg")
    day_of_year = np.tile(grid.index_hourly[rows].day_of_year.to_numpy(), n_sites)
    dni, dhi = split_ghi(ghi.reshape(-1), zenith.reshape(-1), day_of_year)
    values.update(ghi_wm2=ghi, dni_wm2=dni.reshape(ghi.shape), dhi_wm2=dhi.reshape(ghi.shape))

    speed_error = error("wind_speed_log")
    values["wind_speed_100m_mps"] = truth("wind_speed_100m_mps") * np.exp(speed_error)
    values["wind_speed_10m_mps"] = truth("wind_speed_10m_mps") * np.exp(
        speed_error + error("wind_shear_log")
    )
    direction_error = error("wind_dir_deg")
    values["wind_dir_10m_deg"] = (truth("wind_dir_10m_deg") + direction_error) % 360.0
    values["wind_dir_100m_deg"] = (truth("wind_dir_100m_deg") + direction_error) % 360.0
    drizzle_mm = np.where(cloud > 0.92, 0.1, 0.0)
    values["precipitation_mm"] = (
        truth("precipitation_mm") * np.exp(error("precipitation_log")) + drizzle_mm
    )
    issue_of_row = np.broadcast_to(np.arange(len(issues))[:, None], valid.shape)[valid]
    return weather_frame(site_ids, grid.index_hourly[rows], values, issues[issue_of_row])
