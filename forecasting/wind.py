"""Physical wind features: direction encoding, vertical extrapolation, air density, power curves.

Plain functions over numpy arrays or pandas Series (a Series in gives a Series out, same
index). NaN input propagates as NaN and never raises. Units: speed m/s, height m, direction
degrees clockwise from north that the wind blows FROM (meteorological), temperature degC,
pressure hPa, density kg/m3, power kW.

Turbine power curves come from windpowerlib's turbine library (the OpenEnergy Database
snapshot the package ships, read from the installed package, no network) through
:func:`turbine_power_curve`, and are applied by windpowerlib's ``power_curve`` (with its
density correction where the air density is known); a site that names no
``turbine_type`` gets the generic 3/12/25 m/s curve (:func:`power_curve_kw`).

References
----------
.. [1] Hellmann power law; Peterson, E. W., Hennessey, J. P. (1978). On the use of power laws
   for estimates of wind power potential. J. Appl. Meteorol. 17(3), 390-394 (alpha = 1/7).
.. [2] Manwell, J. F., McGowan, J. G., Rogers, A. L. (2009). Wind Energy Explained, 2nd ed.,
   Wiley, section 2.3 (log law, power law, power curve with cut-in, rated and cut-out speeds).
.. [3] IEC 61400-12-1:2017, Power performance measurements of electricity producing wind
   turbines (density normalisation of wind speed for pitch-regulated turbines,
   v (rho / 1.225)^(1/3)).
.. [4] Haas, S., Krien, U., Schachler, B., et al. (2021). windpowerlib - a Python library to
   model wind power plants. Journal of Open Source Software (turbine library: the
   OpenEnergy Database snapshot shipped with windpowerlib 0.2.2).
"""

from __future__ import annotations

import difflib
import logging
from functools import lru_cache

import numpy as np
import pandas as pd

from forecasting.errors import (
    ImpossibleValueError,
    MissingColumnsError,
    NaiveTimestampError,
    UnknownValueError,
)

log = logging.getLogger(__name__)

DEFAULT_HUB_HEIGHT_M = 100.0
"""Hub height used by :func:`wind_features` when the site does not give one."""
DEFAULT_SHEAR_EXPONENT = 1.0 / 7.0
"""Neutral-stability power-law exponent [1]."""
R_DRY_AIR = 287.05
"""Specific gas constant of dry air, J/(kg K)."""
RHO_STANDARD_KGM3 = 1.225
"""ISA sea-level air density, kg/m3, the reference of power curves [3]."""


def _wrap(values: np.ndarray, like) -> np.ndarray | pd.Series | float:
    """Return ``values`` as a Series on ``like``'s index when ``like`` is a Series."""
    if isinstance(like, pd.Series):
        return pd.Series(values, index=like.index)
    if np.ndim(values) == 0:
        return float(values)
    return values


def _positive(value: float, name: str) -> float:
    if not float(value) > 0:
        raise ImpossibleValueError(f"{name}={value} must be positive")
    return float(value)


# --------------------------------------------------------------------------- direction, shear
def direction_sector_speeds(speed_mps, dir_deg, n_sectors: int) -> np.ndarray:
    """The speed split by direction sector, shape (n, n_sectors), m/s: row i holds its speed
    in the column of its sector (sector 0 centred on north, clockwise) and 0 elsewhere, so a
    tree can learn one power curve per sector. NaN speed or direction gives NaN in all."""
    if int(n_sectors) != n_sectors or n_sectors < 2:
        raise ImpossibleValueError(f"n_sectors={n_sectors} must be a whole number >= 2")
    s = np.clip(np.asarray(speed_mps, dtype=float), 0.0, None)
    d = np.asarray(dir_deg, dtype=float)
    width = 360.0 / n_sectors
    known = ~np.isnan(s) & ~np.isnan(d)
    sector = np.floor(np.mod(np.where(known, d, 0.0) + width / 2, 360.0) / width).astype(int)
    out = np.zeros((len(s), int(n_sectors)))
    out[np.arange(len(s)), sector] = np.where(known, s, 0.0)
    out[~known] = np.nan
    return out


def wind_direction_sincos(dir_deg) -> tuple:
    """(sin, cos) of a wind direction in degrees; (1, 0) for an east wind (90 deg).

    sin is the east-west and cos the north-south part of the direction the wind blows from;
    together they remove the 359/0 deg discontinuity. NaN gives NaN.
    """
    rad = np.radians(np.asarray(dir_deg, dtype=float))
    return _wrap(np.sin(rad), dir_deg), _wrap(np.cos(rad), dir_deg)


def hub_height_speed(
    speed_mps, height_m: float, hub_height_m: float, shear_exponent=DEFAULT_SHEAR_EXPONENT
):
    """Power-law extrapolation ``v_hub = v (hub / h)^alpha`` [1], m/s.

    ``shear_exponent`` may be a scalar or an array/Series aligned with ``speed_mps`` (e.g. from
    :func:`shear_exponent_from_two_heights`). Negative speeds count as 0; NaN gives NaN.
    """
    ratio = _positive(hub_height_m, "hub_height_m") / _positive(height_m, "height_m")
    v = np.clip(np.asarray(speed_mps, dtype=float), 0.0, None)
    alpha = np.asarray(shear_exponent, dtype=float)
    return _wrap(v * ratio**alpha, speed_mps)


def shear_exponent_from_two_heights(
    speed_low_mps,
    speed_high_mps,
    low_height_m: float = 10.0,
    high_height_m: float = 100.0,
    min_speed_mps: float = 0.5,
    bounds: tuple[float, float] = (0.0, 1.0),
):
    """Power-law exponent ``alpha = ln(v_high / v_low) / ln(h_high / h_low)`` [1].

    NaN where either speed is below ``min_speed_mps`` (calm: the ratio means nothing) or NaN;
    otherwise clipped to ``bounds`` (stable nights reach 0.5+, negative shear is rare).
    """
    h_lo, h_hi = _positive(low_height_m, "low_height_m"), _positive(high_height_m, "high_height_m")
    if h_lo == h_hi:
        raise ImpossibleValueError("low_height_m and high_height_m must differ")
    lo = np.asarray(speed_low_mps, dtype=float)
    hi = np.asarray(speed_high_mps, dtype=float)
    ok = (lo >= min_speed_mps) & (hi >= min_speed_mps)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.log(np.where(ok, hi, 1.0) / np.where(ok, lo, 1.0)) / np.log(h_hi / h_lo)
    alpha = np.where(ok, np.clip(alpha, *bounds), np.nan)
    return _wrap(alpha, speed_low_mps)


def log_law_speed(speed_mps, height_m: float, target_height_m: float, roughness_length_m: float):
    """Logarithmic profile ``v_target = v ln(z_target / z0) / ln(z / z0)`` (neutral) [2], m/s."""
    z0 = _positive(roughness_length_m, "roughness_length_m")
    z, zt = _positive(height_m, "height_m"), _positive(target_height_m, "target_height_m")
    if z <= z0 or zt <= z0:
        raise ImpossibleValueError("heights must exceed the roughness length")
    v = np.clip(np.asarray(speed_mps, dtype=float), 0.0, None)
    return _wrap(v * np.log(zt / z0) / np.log(z / z0), speed_mps)


def air_density_kgm3(temp_air_c, pressure_hpa):
    """Dry-air density ``rho = p / (R_d T)``, kg/m3, from degC and hPa (ideal gas)."""
    t_k = np.asarray(temp_air_c, dtype=float) + 273.15
    p_pa = np.asarray(pressure_hpa, dtype=float) * 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(t_k > 0, p_pa / (R_DRY_AIR * t_k), np.nan)
    return _wrap(rho, temp_air_c)


# --------------------------------------------------------------------------- power curves
def power_curve_kw(
    speed_mps,
    capacity_kw: float,
    cut_in_mps: float = 3.0,
    rated_mps: float = 12.0,
    cut_out_mps: float = 25.0,
):
    """Generic power curve, kW [2]: 0 below cut-in, cubic up to rated, capacity up to cut-out.

    ``P = capacity (v^3 - v_in^3) / (v_r^3 - v_in^3)`` for cut-in <= v < rated, capacity for
    rated <= v <= cut-out, and 0 above cut-out (storm shutdown is a step, not smoothed).
    ``capacity_kw=1`` gives the normalised curve. NaN speed gives NaN.
    """
    cap = _positive(capacity_kw, "capacity_kw")
    if not 0.0 <= cut_in_mps < rated_mps < cut_out_mps:
        raise ImpossibleValueError(
            f"need 0 <= cut_in_mps < rated_mps < cut_out_mps, got {cut_in_mps}, {rated_mps}, "
            f"{cut_out_mps}"
        )
    v = np.asarray(speed_mps, dtype=float)
    ramp = (v**3 - cut_in_mps**3) / (rated_mps**3 - cut_in_mps**3)
    p = np.select(
        [v < cut_in_mps, v < rated_mps, v <= cut_out_mps],
        [0.0, cap * ramp, cap],
        default=0.0,
    )
    return _wrap(np.where(np.isnan(v), np.nan, p), speed_mps)


@lru_cache(maxsize=32)
def _library_curve(turbine_type: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from windpowerlib.data import get_turbine_types
    from windpowerlib.wind_turbine import WindTurbine

    known = get_turbine_types(print_out=False)
    known = known.loc[known["has_power_curve"], "turbine_type"].astype(str).tolist()
    if turbine_type not in known:
        close = [t for t in known if t.lower().startswith(turbine_type.lower())][:5]
        close = close or difflib.get_close_matches(turbine_type, known, n=5)
        raise UnknownValueError(
            f"turbine_type {turbine_type!r} is not in windpowerlib's turbine library "
            f"({len(known)} types with a power curve); close matches: {close}; leave "
            "sites.turbine_type empty for the generic curve")
    curve = WindTurbine(hub_height=DEFAULT_HUB_HEIGHT_M, turbine_type=turbine_type).power_curve
    curve = curve.dropna().sort_values("wind_speed")
    return (tuple(curve["wind_speed"].astype(float)), tuple(curve["value"].astype(float) / 1e3))


def turbine_power_curve(turbine_type: str) -> pd.DataFrame:
    """A turbine's power curve from windpowerlib's turbine library [4], e.g. ``"E-101/3050"``.

    Returns ``wind_speed_mps`` and ``power_kw`` sorted by speed; an unknown type raises
    ``UnknownValueError`` naming the closest known types.
    """
    speeds, power = _library_curve(str(turbine_type))
    return pd.DataFrame({"wind_speed_mps": speeds, "power_kw": power})


@lru_cache(maxsize=32)
def site_power_curve(turbine_type: str | None) -> pd.DataFrame | None:
    """The curve a site's ``turbine_type`` names in windpowerlib's library, or None (the
    generic curve) when it names none or one the library does not know (logged once)."""
    if not turbine_type:
        return None
    try:
        return turbine_power_curve(turbine_type)
    except UnknownValueError as err:
        log.warning("%s; using the generic 3/12/25 m/s power curve", err)
        return None


def power_curve_description(turbine_type: str | None) -> str:
    """Which power curve a site's features use (logged with its model)."""
    if site_power_curve(turbine_type) is not None:
        return f"windpowerlib {windpowerlib_version()} turbine library: {turbine_type}"
    if turbine_type:
        return f"generic 3/12/25 m/s ({turbine_type!r} is not in windpowerlib's library)"
    return "generic 3/12/25 m/s (no turbine_type)"


def windpowerlib_version() -> str:
    from importlib.metadata import version

    return version("windpowerlib")


def tabulated_power_kw(speed_mps, power_curve: pd.DataFrame, capacity_kw: float | None = None,
                       density_kgm3=None):
    """Power (kW) from a tabulated curve (windpowerlib's ``power_curve``), 0 outside its range.

    ``power_curve`` has ``wind_speed_mps`` and ``power_kw`` (as from
    :func:`turbine_power_curve`). With ``capacity_kw`` the curve is rescaled so its maximum
    equals the capacity (a farm of identical turbines); without, the curve's own kW. Where
    ``density_kgm3`` is given (not NaN), windpowerlib's density-corrected curve is used.
    """
    from windpowerlib.power_output import power_curve as wpl_power_curve

    missing = [c for c in ("wind_speed_mps", "power_kw") if c not in power_curve.columns]
    if missing:
        raise MissingColumnsError(f"power_curve lacks columns {missing}", missing)
    curve = power_curve.sort_values("wind_speed_mps")
    speeds = curve["wind_speed_mps"].to_numpy(float)
    power = curve["power_kw"].to_numpy(float)
    if capacity_kw is not None:
        power = power * _positive(capacity_kw, "capacity_kw") / power.max()
    v = np.atleast_1d(np.asarray(speed_mps, dtype=float))
    p = np.asarray(wpl_power_curve(np.nan_to_num(v), speeds, power), dtype=float)
    if density_kgm3 is not None:
        rho = np.broadcast_to(np.asarray(density_kgm3, dtype=float), v.shape)
        known = ~np.isnan(rho) & ~np.isnan(v)
        if known.any():
            p[known] = wpl_power_curve(v[known], speeds, power, density=rho[known],
                                       density_correction=True)
    p = np.where(np.isnan(v), np.nan, p)
    return _wrap(p if np.ndim(speed_mps) else p[0], speed_mps)


# --------------------------------------------------------------------------- entry point
def _hub_speed(weather: pd.DataFrame, hub_m: float, alpha) -> np.ndarray:
    """Hub speed from the measured height nearest (in log height) to the hub, NaN-filled
    from the other height row by row."""
    heights = {10.0: "wind_speed_10m_mps", 100.0: "wind_speed_100m_mps"}
    order = sorted(
        (h for h, c in heights.items() if c in weather.columns),
        key=lambda h: abs(np.log(hub_m / h)),
    )
    out = np.full(len(weather), np.nan)
    for h in order:
        a = np.where(np.isnan(alpha), DEFAULT_SHEAR_EXPONENT, alpha)
        v = np.asarray(hub_height_speed(weather[heights[h]].to_numpy(float), h, hub_m, a))
        out = np.where(np.isnan(out), v, out)
    return out


def wind_features(
    times: pd.DatetimeIndex,
    weather: pd.DataFrame | None,
    hub_height_m: float | None = None,
    capacity_kw: float | None = None,
    power_curve: pd.DataFrame | None = None,
    turbine_type: str | None = None,
    direction_sectors: int = 0,
) -> pd.DataFrame:
    """Physical wind features for the intervals starting at ``times``.

    ``weather`` is indexed by exactly ``times`` (NaN where missing), with any subset of
    ``wind_speed_10m_mps``, ``wind_dir_10m_deg``, ``wind_speed_100m_mps``, ``wind_dir_100m_deg``,
    ``temp_air_c``, ``pressure_hpa``; ``None`` means no weather. ``hub_height_m`` defaults to
    100 m (``DEFAULT_HUB_HEIGHT_M``) when the site does not give one. ``turbine_type`` names
    a turbine of windpowerlib's library (:func:`site_power_curve`: an unknown name is
    logged and gets the generic curve), or ``power_curve`` gives a tabulated curve; with
    neither, the generic 3/12/25 m/s curve.

    Columns (set by which weather columns exist and the arguments, never by the values):

    - ``wind_speed_10m_mps``, ``wind_speed_100m_mps``: when given, negatives clipped to 0
      (same names as the weather columns: do not concatenate both frames)
    - ``wind_dir_10m_sin``/``_cos``, ``wind_dir_100m_sin``/``_cos``: when the direction is given
    - ``wind_speed_{h}_sector{k}of{n}_mps`` with ``direction_sectors=n`` (k = 0..n-1), when
      the speed and direction of the height are given (:func:`direction_sector_speeds`)
    - ``wind_shear_exponent``: when both speeds are given (NaN in calm rows)
    - ``wind_speed_hub_mps``: power law from the height nearest the hub, with the row's shear
      exponent where known, else 1/7; always present (all NaN without speeds)
    - ``wind_speed_hub_cubed_m3s3``: always present
    - ``wind_air_density_kgm3``: when both ``temp_air_c`` and ``pressure_hpa`` are given
      (surface values, no lapse to hub height)
    - ``wind_power_curve_kw`` when ``capacity_kw`` is given, else ``wind_power_curve_frac``
      (0..1 of the curve's maximum): the power curve at the hub speed, density-normalised [3]
      where the density is known. Always present.
    """
    if not isinstance(times, pd.DatetimeIndex):
        raise TypeError(f"times must be a pandas DatetimeIndex, got {type(times).__name__}")
    if times.tz is None:
        raise NaiveTimestampError(
            "times has naive timestamps; give them a UTC offset or a timezone "
            "(e.g. times.tz_localize('UTC') if they are UTC)"
        )
    if weather is None:
        weather = pd.DataFrame(index=times)
    elif not weather.index.equals(times):
        raise ValueError(
            "weather must be indexed by exactly `times` (aligned to the target intervals, "
            "NaN where missing); reindex it first, e.g. weather.reindex(times)"
        )
    hub_m = (
        DEFAULT_HUB_HEIGHT_M if hub_height_m is None else _positive(hub_height_m, "hub_height_m")
    )
    used = (
        "wind_speed_10m_mps",
        "wind_dir_10m_deg",
        "wind_speed_100m_mps",
        "wind_dir_100m_deg",
        "temp_air_c",
        "pressure_hpa",
    )
    col = {c: weather[c].to_numpy(float) for c in used if c in weather.columns}
    feats: dict[str, np.ndarray] = {}
    for h in ("10m", "100m"):
        if f"wind_speed_{h}_mps" in col:
            feats[f"wind_speed_{h}_mps"] = np.clip(col[f"wind_speed_{h}_mps"], 0.0, None)
        if f"wind_dir_{h}_deg" in col:
            s, c = wind_direction_sincos(col[f"wind_dir_{h}_deg"])
            feats[f"wind_dir_{h}_sin"], feats[f"wind_dir_{h}_cos"] = s, c
        pair = f"wind_speed_{h}_mps" in col and f"wind_dir_{h}_deg" in col
        if pair and direction_sectors:
            split = direction_sector_speeds(col[f"wind_speed_{h}_mps"],
                                            col[f"wind_dir_{h}_deg"], direction_sectors)
            for k in range(int(direction_sectors)):
                feats[f"wind_speed_{h}_sector{k}of{direction_sectors}_mps"] = split[:, k]

    alpha = np.full(len(times), np.nan)
    if "wind_speed_10m_mps" in col and "wind_speed_100m_mps" in col:
        alpha = shear_exponent_from_two_heights(
            col["wind_speed_10m_mps"], col["wind_speed_100m_mps"]
        )
        feats["wind_shear_exponent"] = alpha
    hub = _hub_speed(weather, hub_m, alpha)
    feats["wind_speed_hub_mps"] = hub
    feats["wind_speed_hub_cubed_m3s3"] = hub**3

    curve_speed, rho = hub, None
    if "temp_air_c" in col and "pressure_hpa" in col:
        rho = air_density_kgm3(col["temp_air_c"], col["pressure_hpa"])
        feats["wind_air_density_kgm3"] = rho
        corrected = hub * np.cbrt(rho / RHO_STANDARD_KGM3)
        curve_speed = np.where(np.isnan(rho), hub, corrected)

    scale = 1.0 if capacity_kw is None else _positive(capacity_kw, "capacity_kw")
    if power_curve is None:
        power_curve = site_power_curve(turbine_type)
    if power_curve is not None:  # windpowerlib corrects the curve for density itself
        power = tabulated_power_kw(hub, power_curve, capacity_kw=scale, density_kgm3=rho)
    else:
        power = power_curve_kw(curve_speed, scale)
    name = "wind_power_curve_frac" if capacity_kw is None else "wind_power_curve_kw"
    feats[name] = np.asarray(power, dtype=float)
    return pd.DataFrame(feats, index=times)
