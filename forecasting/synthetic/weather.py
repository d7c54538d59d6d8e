"""Synthetic weather "truth" per site and its hourly observations.

Synthetic: a stochastic weather generator with a Nanjing-like climate, not measured data.
One regional truth (synoptic temperature anomaly, cloud and wind regimes) is shared by all
sites; each site adds its own small, autocorrelated deviations, so nearby sites see
correlated weather. The truth is simulated every 15 minutes (interval midpoints) and drives
the measured load, PV and wind; the weather table holds its hourly means.

Model, per 15-minute step (all temperatures in degC, irradiance in W/m2):

- temperature: climatology (annual mean 16 C, amplitude 12.5 C, coldest mid-January)
  + synoptic AR(1) anomaly + diurnal cycle (minimum 05:30, maximum 14:30 local, damped
  by cloud) + site offset and noise;
- cloud cover: logistic of an AR(1) latent with a plum-rain (梅雨) season in June-July;
- irradiance: pvlib Ineichen clear sky [1] scaled by the Kasten-Czeplak cloud factor
  ``1 - 0.75 * cloud**3.4`` [2], split into DNI/DHI with the Erbs model [3];
- wind: Gaussian AR(1) latent mapped to a Weibull distribution (k = 2.1) at 100 m, and to
  10 m through a power-law shear exponent larger at night (stable) than by day [4];
- humidity, pressure and precipitation: simple functions of the above plus noise.

References
----------
[1] Ineichen, P., Perez, R. (2002). A new airmass independent formulation for the Linke
    turbidity coefficient. Solar Energy 73(3), 151-157.
[2] Kasten, F., Czeplak, G. (1980). Solar and terrestrial radiation dependent on the
    amount and type of cloud. Solar Energy 24, 177-189.
[3] Erbs, D. G., Klein, S. A., Duffie, J. A. (1982). Estimation of the diffuse radiation
    fraction for hourly, daily and monthly-average global radiation. Solar Energy 28(4).
[4] Emeis, S. (2013). Wind Energy Meteorology, ch. 3 (power law, stability dependence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib
from scipy.special import expit
from scipy.stats import norm

from forecasting.synthetic.grid import TimeGrid
from forecasting.synthetic.random import ar1, smooth
from forecasting.synthetic.sites import REGION_LATITUDE_DEG, REGION_LONGITUDE_DEG, SiteSpec

WEATHER_COLUMNS = (
    "temp_air_c",
    "relative_humidity_pct",
    "cloud_cover_frac",
    "ghi_wm2",
    "dni_wm2",
    "dhi_wm2",
    "wind_speed_10m_mps",
    "wind_dir_10m_deg",
    "wind_speed_100m_mps",
    "wind_dir_100m_deg",
    "pressure_hpa",
    "precipitation_mm",
)
# decimals kept in the written tables
WEATHER_DECIMALS = {
    "temp_air_c": 1,
    "relative_humidity_pct": 1,
    "cloud_cover_frac": 3,
    "ghi_wm2": 1,
    "dni_wm2": 1,
    "dhi_wm2": 1,
    "wind_speed_10m_mps": 2,
    "wind_dir_10m_deg": 1,
    "wind_speed_100m_mps": 2,
    "wind_dir_100m_deg": 1,
    "pressure_hpa": 1,
    "precipitation_mm": 2,
}
STEPS_PER_HOUR = 4
WEIBULL_SHAPE = 2.1
SITE_ALTITUDE_M = 20.0


@dataclass(frozen=True)
class WeatherTruth:
    """15-minute weather of each site (arrays ``(n_sites, n_15min)``, rows in ``site_ids``
    order), at the interval midpoints. ``fields`` holds the ``WEATHER_COLUMNS`` (units in
    the names; ``precipitation_mm`` is the amount in the 15 minutes) plus
    ``clearsky_ghi_wm2``, ``solar_zenith_deg`` and ``solar_azimuth_deg``."""

    site_ids: tuple[str, ...]
    fields: dict[str, np.ndarray]

    def site(self, site_id: str) -> dict[str, np.ndarray]:
        """All fields of one site, 1-D arrays."""
        row = self.site_ids.index(site_id)
        return {name: values[row] for name, values in self.fields.items()}

    def regional_mean(self, name: str) -> np.ndarray:
        """Mean over sites of one field, 1-D array."""
        return self.fields[name].mean(axis=0)


def diurnal_shape(local_hour: np.ndarray) -> np.ndarray:
    """-1 at 05:30, +1 at 14:30 local, cosine in between (faster rise than fall)."""
    rising = (local_hour >= 5.5) & (local_hour < 14.5)
    return np.where(
        rising,
        -np.cos(np.pi * (local_hour - 5.5) / 9.0),
        np.cos(np.pi * ((local_hour - 14.5) % 24.0) / 15.0),
    )


def summer_weight(day_of_year: np.ndarray) -> np.ndarray:
    """0 in mid-January, 1 in mid-July."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * (day_of_year - 18.0) / 365.25)


def cloud_factor(cloud_cover_frac: np.ndarray) -> np.ndarray:
    """Kasten-Czeplak ratio of cloudy to clear-sky GHI [2]."""
    return 1.0 - 0.75 * np.power(cloud_cover_frac, 3.4)


def split_ghi(
    ghi_wm2: np.ndarray,
    zenith_deg: np.ndarray,
    day_of_year: np.ndarray,
    clearsky_dni_wm2: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """DNI and DHI (W/m2) from GHI (W/m2) and solar zenith (degrees) with the Erbs model,
    capped at the clear-sky DNI if given; closure ``ghi = dhi + dni cos z``."""
    parts = pvlib.irradiance.erbs(ghi_wm2, zenith_deg, day_of_year)
    dni = np.nan_to_num(np.asarray(parts["dni"], dtype=float))
    if clearsky_dni_wm2 is not None:
        dni = np.minimum(dni, clearsky_dni_wm2)
    cos_z = np.clip(np.cos(np.radians(zenith_deg)), 0.0, None)
    dhi = np.clip(ghi_wm2 - dni * cos_z, 0.0, None)
    return dni, dhi


def _solar(
    times_mid: pd.DatetimeIndex, site: SiteSpec, linke: np.ndarray, dni_extra: np.ndarray
) -> dict[str, np.ndarray]:
    position = pvlib.solarposition.ephemeris(times_mid, site.latitude_deg, site.longitude_deg)
    apparent_zenith = position["apparent_zenith"].to_numpy()
    airmass = pvlib.atmosphere.get_absolute_airmass(
        pvlib.atmosphere.get_relative_airmass(apparent_zenith),
        pvlib.atmosphere.alt2pres(SITE_ALTITUDE_M),
    )
    with np.errstate(divide="ignore", invalid="ignore"):  # night: cos(zenith) <= 0
        clear = pvlib.clearsky.ineichen(apparent_zenith, airmass, linke, SITE_ALTITUDE_M, dni_extra)
    return {
        "solar_zenith_deg": position["zenith"].to_numpy(),
        "solar_azimuth_deg": position["azimuth"].to_numpy(),
        "clearsky_ghi_wm2": np.nan_to_num(np.asarray(clear["ghi"], dtype=float)),
        "clearsky_dni_wm2": np.nan_to_num(np.asarray(clear["dni"], dtype=float)),
    }


def simulate_weather(
    rng: np.random.Generator, grid: TimeGrid, sites: list[SiteSpec]
) -> WeatherTruth:
    """15-minute weather truth of every site (see the module docstring for the model)."""
    n = len(grid.index_15min)
    hour = grid.local_hour_15min
    doy = grid.day_of_year_15min
    summer = summer_weight(doy)
    steps_per_day = 24 * STEPS_PER_HOUR

    # regional signals
    temp_anomaly = ar1(rng, n, 2.5 * steps_per_day, 2.8) + ar1(rng, n, 8 * STEPS_PER_HOUR, 0.8)
    plum_rain = np.exp(-(((doy - 180.0) / 18.0) ** 2))
    clear_autumn = np.exp(-(((doy - 295.0) / 30.0) ** 2))
    cloud_mean = 1.2 + 0.9 * plum_rain - 0.6 * clear_autumn
    cloud_latent = (
        cloud_mean + ar1(rng, n, 1.5 * steps_per_day, 1.3) + ar1(rng, n, 3 * STEPS_PER_HOUR, 0.6)
    )
    wind_latent = (
        ar1(rng, n, 30 * STEPS_PER_HOUR, 0.85) + ar1(rng, n, 3 * STEPS_PER_HOUR, 0.5)
    ) / np.hypot(0.85, 0.5)
    wind_dir = (
        90.0 - 45.0 * np.cos(2 * np.pi * (doy - 15.0) / 365.25) + ar1(rng, n, steps_per_day, 50.0)
    )
    rain_latent = ar1(rng, n, 2 * STEPS_PER_HOUR, 1.0)
    pressure_anomaly = ar1(rng, n, 3 * steps_per_day, 5.0)
    weibull_scale = (6.6 + 0.9 * np.cos(2 * np.pi * (doy - 75.0) / 365.25)) * (
        1.0 + 0.07 * np.cos(2 * np.pi * (hour - 3.0) / 24.0)
    )

    times_mid = grid.index_15min + pd.Timedelta(minutes=7.5)
    linke = pvlib.clearsky.lookup_linke_turbidity(
        times_mid, REGION_LATITUDE_DEG, REGION_LONGITUDE_DEG
    ).to_numpy()
    day_of_year_utc = times_mid.day_of_year.to_numpy()
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(day_of_year_utc))

    names = (*WEATHER_COLUMNS, "clearsky_ghi_wm2", "solar_zenith_deg", "solar_azimuth_deg")
    fields = {name: np.empty((len(sites), n)) for name in names}
    for row, site in enumerate(sites):
        solar = _solar(times_mid, site, linke, dni_extra)
        cloud = expit(cloud_latent + ar1(rng, n, 2 * STEPS_PER_HOUR, 0.45))
        ghi = solar["clearsky_ghi_wm2"] * cloud_factor(cloud)
        dni, dhi = split_ghi(
            ghi, solar["solar_zenith_deg"], day_of_year_utc, solar["clearsky_dni_wm2"]
        )

        cloud_day = smooth(cloud, 12 * STEPS_PER_HOUR)
        amplitude_c = 4.5 * (1.0 - 0.55 * cloud_day)
        temp = (
            16.0
            - 12.5 * np.cos(2 * np.pi * (doy - 18.0) / 365.25)
            + temp_anomaly
            - 1.5 * (cloud_day - 0.5)
            + amplitude_c * diurnal_shape(hour)
            + site.temp_offset_c
            + ar1(rng, n, 4 * STEPS_PER_HOUR, 0.4)
        )
        humidity = np.clip(
            68.0
            + 10.0 * summer
            - 2.2 * amplitude_c * diurnal_shape(hour)
            + 20.0 * (cloud - 0.5)
            + ar1(rng, n, 6 * STEPS_PER_HOUR, 5.0),
            15.0,
            100.0,
        )

        z = np.sqrt(0.88) * wind_latent + np.sqrt(0.12) * ar1(rng, n, 3 * STEPS_PER_HOUR, 1.0)
        u = np.clip(norm.cdf(z), 1e-9, 1 - 1e-9)
        speed_100m = site.exposure * weibull_scale * np.power(-np.log1p(-u), 1.0 / WEIBULL_SHAPE)
        daylight = np.clip(ghi / 400.0, 0.0, 1.0)
        shear = 0.27 - 0.13 * daylight + 0.02 * (1.0 - site.exposure)
        speed_10m = speed_100m * np.power(0.1, shear)
        dir_10m = wind_dir + ar1(rng, n, 2 * STEPS_PER_HOUR, 10.0)
        dir_100m = dir_10m + 8.0 + 15.0 * (1.0 - daylight)

        pressure = (
            1016.0
            + 9.0 * np.cos(2 * np.pi * (doy - 15.0) / 365.25)
            + pressure_anomaly
            - 2.5 * wind_latent
            - 1.5 * (site.exposure - 1.0)
            + ar1(rng, n, 6 * STEPS_PER_HOUR, 0.3)
        )
        wet = (cloud > 0.8) & (rain_latent > 0.8)
        rain = np.where(
            wet,
            0.15
            * np.exp(0.8 * rain_latent)
            * (cloud - 0.8)
            / 0.2
            * (1 + 1.5 * plum_rain + 0.5 * summer),
            0.0,
        )

        values = {
            "temp_air_c": temp,
            "relative_humidity_pct": humidity,
            "cloud_cover_frac": cloud,
            "ghi_wm2": ghi,
            "dni_wm2": dni,
            "dhi_wm2": dhi,
            "wind_speed_10m_mps": speed_10m,
            "wind_dir_10m_deg": dir_10m % 360.0,
            "wind_speed_100m_mps": speed_100m,
            "wind_dir_100m_deg": dir_100m % 360.0,
            "pressure_hpa": pressure,
            "precipitation_mm": rain,
            "clearsky_ghi_wm2": solar["clearsky_ghi_wm2"],
            "solar_zenith_deg": solar["solar_zenith_deg"],
            "solar_azimuth_deg": solar["solar_azimuth_deg"],
        }
        for name, value in values.items():
            fields[name][row] = value
    return WeatherTruth(tuple(s.site_id for s in sites), fields)


def _vector_mean_dir(speed: np.ndarray, direction_deg: np.ndarray) -> np.ndarray:
    rad = np.radians(direction_deg)
    u = (speed * np.sin(rad)).mean(axis=-1)
    v = (speed * np.cos(rad)).mean(axis=-1)
    return np.degrees(np.arctan2(u, v)) % 360.0


def hourly_truth(truth: WeatherTruth) -> dict[str, np.ndarray]:
    """Hourly means ``(n_sites, n_hours)`` of the truth (precipitation summed, directions
    vector-averaged); ``solar_zenith_deg`` at the middle of the hour."""
    out: dict[str, np.ndarray] = {}
    for name, values in truth.fields.items():
        blocks = values.reshape(values.shape[0], -1, STEPS_PER_HOUR)
        if name == "precipitation_mm":
            out[name] = blocks.sum(axis=-1)
        elif name in ("wind_dir_10m_deg", "wind_dir_100m_deg"):
            speed = truth.fields[name.replace("_dir_", "_speed_").replace("_deg", "_mps")]
            out[name] = _vector_mean_dir(speed.reshape(blocks.shape), blocks)
        elif name in ("solar_zenith_deg", "solar_azimuth_deg"):
            out[name] = blocks[..., 1:3].mean(axis=-1)
        else:
            out[name] = blocks.mean(axis=-1)
    return out


def weather_frame(
    site_ids: tuple[str, ...],
    timestamps: pd.DatetimeIndex,
    values: dict[str, np.ndarray],
    issue_times: pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """Long weather table from arrays ``(n_sites, n_rows)``; ``issue_times`` (length n_rows)
    marks forecasts, ``None`` observations (``issue_time`` NaT)."""
    n_sites, n_rows = values["temp_air_c"].shape
    frame = pd.DataFrame(
        {
            "site_id": np.repeat(np.asarray(site_ids, dtype=object), n_rows),
            "timestamp": np.tile(timestamps, n_sites),
            "issue_time": (
                pd.DatetimeIndex(np.tile(issue_times, n_sites))
                if issue_times is not None
                else pd.DatetimeIndex([pd.NaT] * (n_sites * n_rows), dtype=timestamps.dtype)
            ),
        }
    )
    for name in WEATHER_COLUMNS:
        column = np.round(values[name].reshape(-1), WEATHER_DECIMALS[name])
        if name.endswith("_deg"):
            column = column % 360.0
        frame[name] = column
    return frame


def observation_frame(
    truth: WeatherTruth, hourly: dict[str, np.ndarray], grid: TimeGrid
) -> pd.DataFrame:
    """Hourly observed weather of every site (``issue_time`` NaT), stamped at the hour start."""
    return weather_frame(truth.site_ids, grid.index_hourly, hourly)
