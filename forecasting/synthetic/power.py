"""Synthetic PV and wind power from the synthetic weather truth.

Synthetic: simple physical chains that turn the generator's weather into plausible plant
output; they are not calibrated to any real plant.

- PV: plane-of-array irradiance by Hay-Davies transposition (pvlib [1]), cell temperature
  by the Faiman model [2], a PVWatts-style DC model with -0.35 %/K temperature coefficient
  and 14 % system losses [3], 97 % inverter efficiency and clipping at the AC nameplate.
- Wind: hub-height speed by power-law extrapolation with the exponent taken from the
  10 m and 100 m speeds, air-density correction ``v * (rho / 1.225)**(1/3)`` (IEC 61400-12-1),
  a generic turbine curve (cut-in 3 m/s, cubic to the rated speed, cut-out 25 m/s)
  averaged over a +/-10 % spread of speeds across the farm, and 7 % wake/electrical losses.

References
----------
[1] Hay, J. E., Davies, J. A. (1980). Calculations of the solar radiation incident on an
    inclined surface. Proc. First Canadian Solar Radiation Data Workshop.
[2] Faiman, D. (2008). Assessing the outdoor operating temperature of photovoltaic
    modules. Progress in Photovoltaics 16(4), 307-315.
[3] Dobos, A. P. (2014). PVWatts Version 5 Manual. NREL/TP-6A20-62641.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib

PV_TEMP_COEFF_PER_K = -0.0035
PV_SYSTEM_LOSS_FRACTION = 0.14
INVERTER_EFFICIENCY = 0.97
WIND_CUT_IN_MPS = 3.0
WIND_CUT_OUT_MPS = 25.0
WIND_FARM_LOSS_FRACTION = 0.07
AIR_DENSITY_STD_KGM3 = 1.225
GAS_CONSTANT_DRY_AIR = 287.05  # J/(kg K)


def pv_power_kw(
    times: pd.DatetimeIndex,
    solar_zenith_deg: np.ndarray,
    solar_azimuth_deg: np.ndarray,
    ghi_wm2: np.ndarray,
    dni_wm2: np.ndarray,
    dhi_wm2: np.ndarray,
    temp_air_c: np.ndarray,
    wind_speed_10m_mps: np.ndarray,
    tilt_deg: float,
    azimuth_deg: float,
    capacity_kw: float,
    dc_ac_ratio: float = 1.2,
) -> np.ndarray:
    """AC power (kW) of a fixed-tilt PV plant.

    ``times`` are the instants of the irradiance values (interval midpoints), tz-aware;
    ``azimuth_deg`` 180 faces south; ``capacity_kw`` is the AC (inverter) nameplate and
    ``dc_ac_ratio`` the DC array nameplate over it. Output is in ``[0, capacity_kw]`` and
    exactly 0 when the sun is below the horizon.
    """
    poa = pvlib.irradiance.get_total_irradiance(
        tilt_deg,
        azimuth_deg,
        solar_zenith_deg,
        solar_azimuth_deg,
        dni_wm2,
        ghi_wm2,
        dhi_wm2,
        dni_extra=np.asarray(pvlib.irradiance.get_extra_radiation(times.day_of_year.to_numpy())),
        model="haydavies",
        albedo=0.2,
    )
    poa_wm2 = np.clip(np.nan_to_num(np.asarray(poa["poa_global"], dtype=float)), 0.0, None)
    cell_c = pvlib.temperature.faiman(poa_wm2, temp_air_c, wind_speed_10m_mps)
    dc_kw = capacity_kw * dc_ac_ratio * poa_wm2 / 1000.0 * (1 + PV_TEMP_COEFF_PER_K * (cell_c - 25))
    ac_kw = dc_kw * (1 - PV_SYSTEM_LOSS_FRACTION) * INVERTER_EFFICIENCY
    ac_kw = np.where(np.asarray(solar_zenith_deg) >= 90.0, 0.0, ac_kw)
    return np.clip(ac_kw, 0.0, capacity_kw)


def hub_wind_speed_mps(
    wind_speed_10m_mps: np.ndarray, wind_speed_100m_mps: np.ndarray, hub_height_m: float
) -> np.ndarray:
    """Speed at hub height by the power law, exponent ``ln(v100/v10)/ln(10)`` (0.05..0.6)."""
    ratio = np.maximum(wind_speed_100m_mps, 0.01) / np.maximum(wind_speed_10m_mps, 0.01)
    shear = np.clip(np.log(ratio) / np.log(10.0), 0.05, 0.6)
    return wind_speed_100m_mps * np.power(hub_height_m / 100.0, shear)


def turbine_curve_fraction(speed_mps: np.ndarray, rated_speed_mps: float) -> np.ndarray:
    """Generic single-turbine power curve as a fraction of rated power (0..1)."""
    v = np.asarray(speed_mps, dtype=float)
    rising = (v**3 - WIND_CUT_IN_MPS**3) / (rated_speed_mps**3 - WIND_CUT_IN_MPS**3)
    out = np.where(v < WIND_CUT_IN_MPS, 0.0, np.clip(rising, 0.0, 1.0))
    return np.where(v >= WIND_CUT_OUT_MPS, 0.0, out)


def wind_power_kw(
    wind_speed_10m_mps: np.ndarray,
    wind_speed_100m_mps: np.ndarray,
    temp_air_c: np.ndarray,
    pressure_hpa: np.ndarray,
    hub_height_m: float,
    capacity_kw: float,
    rated_speed_mps: float,
) -> np.ndarray:
    """Farm output (kW) in ``[0, capacity_kw]`` from 10 m / 100 m wind speeds (m/s)."""
    hub_mps = hub_wind_speed_mps(wind_speed_10m_mps, wind_speed_100m_mps, hub_height_m)
    density = pressure_hpa * 100.0 / (GAS_CONSTANT_DRY_AIR * (temp_air_c + 273.15))
    equivalent_mps = hub_mps * np.cbrt(density / AIR_DENSITY_STD_KGM3)
    # spread of speeds over the turbines of the farm: Gauss-Hermite nodes, +/- 10 % std
    nodes, weights = np.polynomial.hermite_e.hermegauss(5)
    weights = weights / weights.sum()
    fraction = sum(
        w * turbine_curve_fraction(equivalent_mps * (1 + 0.10 * x), rated_speed_mps)
        for x, w in zip(nodes, weights, strict=True)
    )
    return np.clip(capacity_kw * (1 - WIND_FARM_LOSS_FRACTION) * fraction, 0.0, capacity_kw)
