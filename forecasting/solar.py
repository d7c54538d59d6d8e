"""Physical PV features: solar geometry, clear sky, NWP de-accumulation, plane-of-array irradiance.

Plain functions over pandas objects; the numeric work is done by pvlib. Conventions:

- ``times`` is a tz-aware ``DatetimeIndex`` whose labels are interval **starts** (the portfolio
  contract); solar geometry is evaluated at the interval **middle**, ``start + resolution/2``.
  Naive times are refused (``NaiveTimestampError``); any zone is accepted, pvlib gets UTC.
- Angles in degrees: zenith from vertical, elevation above the horizon (both apparent, i.e.
  refraction-corrected), azimuth clockwise from north (180 = south).
- Irradiance in W/m2 (mean over the interval), temperature in degC, power in kW.
- *Night* is an interval whose clear-sky GHI is below ``NIGHT_CLEARSKY_WM2`` (10 W/m2, the sun
  a degree or two above the horizon at most). At night the clear-sky index, the POA
  irradiance and the physical PV estimate are 0 by definition, whatever the weather says.

References
----------
.. [1] Reda, I., Andreas, A. (2004). Solar position algorithm for solar radiation
   applications. Solar Energy 76(5), 577-589 (NREL SPA, ``pvlib.solarposition``).
.. [2] Ineichen, P., Perez, R. (2002). A new airmass independent formulation for the Linke
   turbidity coefficient. Solar Energy 73(3), 151-157 (``pvlib.clearsky.ineichen``; monthly
   Linke turbidity from the SoDa climatology bundled with pvlib as LinkeTurbidities.h5).
.. [3] Erbs, D. G., Klein, S. A., Duffie, J. A. (1982). Estimation of the diffuse radiation
   fraction for hourly, daily and monthly-average global radiation. Solar Energy 28(4), 293-302.
.. [4] Hay, J. E., Davies, J. A. (1980). Calculations of the solar radiation incident on an
   inclined surface. Proc. First Canadian Solar Radiation Data Workshop, 59-72.
.. [5] Kasten, F., Czeplak, G. (1980). Solar and terrestrial radiation dependent on the amount
   and type of cloud. Solar Energy 24(2), 177-189.
.. [6] Ross, R. G. (1980). Flat-plate photovoltaic array design optimization. 14th IEEE PVSC,
   1126-1127 (NOCT cell temperature, ``pvlib.temperature.ross``).
.. [7] Dobos, A. P. (2014). PVWatts Version 5 Manual. NREL/TP-6A20-62641 (``pvwatts_dc``;
   temperature coefficient -0.47 %/K of the "standard" module).
.. [8] ECMWF IFS documentation: surface radiation (SSRD, STRD, TSR) in J/m2 and total
   precipitation (TP) in m, accumulated from the start of the forecast.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pvlib

from forecasting.errors import ImpossibleValueError, NaiveTimestampError, UnknownValueError

NIGHT_CLEARSKY_WM2 = 10.0
"""Clear-sky GHI (W/m2) below which an interval counts as night."""
MAX_CLEARSKY_INDEX = 1.5
"""Upper clip of the clear-sky index (cloud enhancement rarely exceeds this for >=5 min means)."""
NOCT_C = 45.0
"""Nominal operating cell temperature of a generic c-Si module, degC [6]."""
GAMMA_PDC_PER_K = -0.0047
"""Power temperature coefficient of a generic c-Si module, 1/K [7]."""
POA_MODELS = ("isotropic", "haydavies")


# --------------------------------------------------------------------------- validation
def _require_aware(times: pd.DatetimeIndex, name: str = "times") -> None:
    if not isinstance(times, pd.DatetimeIndex):
        raise TypeError(f"{name} must be a pandas DatetimeIndex, got {type(times).__name__}")
    if times.tz is None:
        raise NaiveTimestampError(
            f"{name} has naive timestamps; give them a UTC offset or a timezone "
            "(e.g. '2024-01-15T14:30:00+08:00' or times.tz_localize('UTC') if they are UTC)"
        )


def _check_location(latitude_deg: float, longitude_deg: float) -> None:
    if not -90.0 <= float(latitude_deg) <= 90.0:
        raise ImpossibleValueError(f"latitude_deg={latitude_deg} is outside -90..90")
    if not -180.0 <= float(longitude_deg) <= 180.0:
        raise ImpossibleValueError(f"longitude_deg={longitude_deg} is outside -180..180")


def _check_resolution(resolution_minutes: float) -> None:
    if not float(resolution_minutes) > 0:
        raise ImpossibleValueError(
            f"resolution_minutes={resolution_minutes} must be positive (5, 15, 30 or 60)"
        )


def _check_weather_index(weather: pd.DataFrame | None, times: pd.DatetimeIndex) -> pd.DataFrame:
    if weather is None:
        return pd.DataFrame(index=times)
    if not weather.index.equals(times):
        raise ValueError(
            "weather must be indexed by exactly `times` (aligned to the target intervals, "
            "NaN where missing); reindex it first, e.g. weather.reindex(times)"
        )
    return weather


def _column(weather: pd.DataFrame, name: str) -> pd.Series | None:
    return weather[name].astype(float) if name in weather.columns else None


# --------------------------------------------------------------------------- geometry
def solar_position(
    times: pd.DatetimeIndex,
    latitude_deg: float,
    longitude_deg: float,
    resolution_minutes: float,
    altitude_m: float = 0.0,
) -> pd.DataFrame:
    """Sun position at the middle of each interval (NREL SPA [1] via pvlib).

    Parameters
    ----------
    times : tz-aware DatetimeIndex, interval starts.
    latitude_deg, longitude_deg : site location, degrees north / east.
    resolution_minutes : interval width, minutes; the sun is placed at ``start + width/2``.
    altitude_m : site altitude above sea level, m (refraction and pressure; default 0).

    Returns
    -------
    DataFrame indexed by ``times``: ``solar_zenith_deg`` and ``solar_elevation_deg`` (apparent,
    refraction-corrected, degrees), ``solar_azimuth_deg`` (degrees clockwise from north) and
    ``extra_radiation_wm2`` (extraterrestrial normal irradiance, W/m2, Spencer 1971).
    """
    _require_aware(times)
    _check_location(latitude_deg, longitude_deg)
    _check_resolution(resolution_minutes)
    mid = times.tz_convert("UTC") + pd.Timedelta(minutes=float(resolution_minutes) / 2)
    sp = pvlib.solarposition.get_solarposition(
        mid, latitude_deg, longitude_deg, altitude=altitude_m
    )
    # day of year, not the index: pvlib would call DatetimeIndex.dayofyear, deprecated in pandas 3
    extra = pvlib.irradiance.get_extra_radiation(mid.day_of_year.to_numpy(float))
    return pd.DataFrame(
        {
            "solar_zenith_deg": sp["apparent_zenith"].to_numpy(float),
            "solar_azimuth_deg": sp["azimuth"].to_numpy(float),
            "solar_elevation_deg": sp["apparent_elevation"].to_numpy(float),
            "extra_radiation_wm2": np.asarray(extra, dtype=float),
        },
        index=times,
    )


# --------------------------------------------------------------------------- clear sky
@functools.lru_cache(maxsize=256)
def _linke_by_day_of_year(latitude_deg: float, longitude_deg: float) -> tuple[np.ndarray, ...]:
    """Linke turbidity of every day of year (index 0 = 1 January), non-leap and leap year.

    pvlib's lookup reads the bundled climatology file on every call and interpolates the
    monthly values by day of year only, so one read per location (here, cached) gives the
    same numbers for any time of any year.
    """
    out = []
    for year in (2015, 2016):  # a non-leap and a leap year
        days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D", tz="UTC")
        with warnings.catch_warnings():  # pvlib 0.16 calls DatetimeIndex.dayofyear (pandas 3)
            warnings.simplefilter("ignore", DeprecationWarning)
            values = pvlib.clearsky.lookup_linke_turbidity(days, latitude_deg, longitude_deg)
        out.append(values.to_numpy(float))
    return tuple(out)


def linke_turbidity(times: pd.DatetimeIndex, latitude_deg: float, longitude_deg: float
                    ) -> np.ndarray:
    """Linke turbidity (dimensionless) at ``times`` (UTC day of year), SoDa climatology
    bundled with pvlib, interpolated to the day [2]; cached per location."""
    no_leap, leap = _linke_by_day_of_year(float(latitude_deg), float(longitude_deg))
    day = times.day_of_year.to_numpy() - 1
    return np.where(times.is_leap_year, leap[day], no_leap[np.minimum(day, 364)])


def clear_sky_irradiance(
    times: pd.DatetimeIndex,
    latitude_deg: float,
    longitude_deg: float,
    resolution_minutes: float,
    altitude_m: float = 0.0,
    solar_pos: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Clear-sky GHI, DNI and DHI (W/m2) at the interval middles, Ineichen-Perez model [2].

    Linke turbidity is the monthly SoDa climatology bundled with pvlib (no network access),
    interpolated to the day. ``solar_pos`` may pass a result of :func:`solar_position` for the
    same arguments to avoid computing it twice. Night values are 0.

    Returns a DataFrame indexed by ``times`` with ``clearsky_ghi_wm2``, ``clearsky_dni_wm2``,
    ``clearsky_dhi_wm2``.
    """
    if solar_pos is None:
        solar_pos = solar_position(
            times, latitude_deg, longitude_deg, resolution_minutes, altitude_m
        )
    _require_aware(times)
    mid = times.tz_convert("UTC") + pd.Timedelta(minutes=float(resolution_minutes) / 2)
    zenith = solar_pos["solar_zenith_deg"].to_numpy(float)
    linke = linke_turbidity(mid, latitude_deg, longitude_deg)
    with np.errstate(divide="ignore", invalid="ignore"):  # night rows; set to 0 below
        am_rel = pvlib.atmosphere.get_relative_airmass(zenith)
        pressure_pa = pvlib.atmosphere.alt2pres(altitude_m)
        am_abs = pvlib.atmosphere.get_absolute_airmass(am_rel, pressure_pa)
        cs = pvlib.clearsky.ineichen(
            zenith,
            am_abs,
            linke,
            altitude=altitude_m,
            dni_extra=solar_pos["extra_radiation_wm2"].to_numpy(float),
        )
    up = zenith < 90.0
    out = {
        f"clearsky_{k}_wm2": np.where(up, np.nan_to_num(np.asarray(cs[k], dtype=float)), 0.0).clip(
            0
        )
        for k in ("ghi", "dni", "dhi")
    }
    return pd.DataFrame(out, index=times)


def clear_sky_ghi(
    times: pd.DatetimeIndex,
    latitude_deg: float,
    longitude_deg: float,
    resolution_minutes: float,
    altitude_m: float = 0.0,
    solar_pos: pd.DataFrame | None = None,
) -> pd.Series:
    """Clear-sky GHI (W/m2) at the interval middles; see :func:`clear_sky_irradiance`."""
    cs = clear_sky_irradiance(
        times, latitude_deg, longitude_deg, resolution_minutes, altitude_m, solar_pos
    )
    return cs["clearsky_ghi_wm2"]


def clear_sky_index(
    ghi_wm2: pd.Series,
    clearsky_ghi_wm2: pd.Series,
    night_threshold_wm2: float = NIGHT_CLEARSKY_WM2,
    max_index: float = MAX_CLEARSKY_INDEX,
) -> pd.Series:
    """Clear-sky index k* = GHI / clear-sky GHI (dimensionless), clipped to ``[0, max_index]``.

    Defined everywhere: 0 where the clear-sky GHI is below ``night_threshold_wm2`` (night,
    whatever GHI says), NaN only where GHI is missing in daytime. Negative GHI counts as 0.
    Returns a Series named ``clearsky_index`` on the index of ``ghi_wm2``.
    """
    ghi = np.asarray(ghi_wm2, dtype=float)
    cs = np.asarray(clearsky_ghi_wm2, dtype=float)
    night = ~(cs >= night_threshold_wm2)  # NaN clear sky counts as night
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.clip(ghi / np.where(night, 1.0, cs), 0.0, max_index)
    k = np.where(night, 0.0, k)
    index = ghi_wm2.index if isinstance(ghi_wm2, pd.Series) else None
    return pd.Series(k, index=index, name="clearsky_index")


def ghi_from_cloud_cover(cloud_cover_frac: pd.Series, clearsky_ghi_wm2: pd.Series) -> pd.Series:
    """GHI (W/m2) estimated from total cloud cover N (0..1): GHI_cs * (1 - 0.75 N^3.4) [5].

    NaN cloud cover gives NaN; cover outside 0..1 is clipped. Named ``ghi_from_cloud_wm2``.
    """
    n = np.clip(np.asarray(cloud_cover_frac, dtype=float), 0.0, 1.0)
    cs = np.asarray(clearsky_ghi_wm2, dtype=float)
    index = cloud_cover_frac.index if isinstance(cloud_cover_frac, pd.Series) else None
    return pd.Series(cs * (1.0 - 0.75 * n**3.4), index=index, name="ghi_from_cloud_wm2")


# --------------------------------------------------------------------------- NWP de-accumulation
def _issue_from_hours(valid: pd.DatetimeIndex, issue_hours_utc: Sequence[int]) -> pd.DatetimeIndex:
    """Latest issue (one of the daily UTC hours) strictly before each valid time."""
    utc = valid.tz_convert("UTC")
    best = None
    for h in issue_hours_utc:
        if not 0 <= int(h) <= 23:
            raise ImpossibleValueError(f"issue_hours_utc contains {h}; expected hours 0..23")
        shift = pd.Timedelta(hours=int(h))
        cand = (utc - shift - pd.Timedelta(1, "ns")).floor("D") + shift
        best = cand if best is None else best.where(best >= cand, cand)
    return best


def deaccumulate(
    data: pd.Series | pd.DataFrame,
    *,
    issue_time: str | Sequence | None = None,
    issue_hours_utc: Sequence[int] | None = None,
    columns: Sequence[str] | None = None,
    unit_factor: float = 1.0,
    per_seconds: float = 1.0,
    max_span_minutes: float | None = None,
) -> pd.Series | pd.DataFrame:
    """Mean per-interval rates from NWP fields accumulated since the forecast issue [8].

    The index holds the **valid times** (end of accumulation, as in NWP files and the
    GEFCom2014 "hour-ending" stamps); it must be tz-aware. Each output row is the mean rate
    over the span from the previous valid time of the same issue (or from the issue itself for
    the first step) to this row's valid time::

        rate = max(acc_t - acc_prev, 0) * unit_factor * per_seconds / span_seconds

    so J/m2 gives W/m2 with the defaults, and precipitation in m gives mm/h with
    ``unit_factor=1000, per_seconds=3600``. The output keeps the input's rows and index: shift
    the index by one step afterwards if you need interval-start labels.

    Accumulations restart at each issue. Say where issues are with one of

    - ``issue_time``: name of a column of ``data`` (or an array aligned with it) holding each
      row's issue time; rows are grouped by it (several issues may cover the same valid time);
    - ``issue_hours_utc``: daily issue hours, e.g. ``(0,)`` for GEFCom2014 solar (ECMWF 00 UTC
      run, accumulated since 00 UTC: the 01:00 row is the first step, the 00:00 row the 24th);
    - neither: the whole series is one accumulation, and its first row is NaN (unknown start).

    Negative differences (rounding, or an undeclared reset) are clipped to 0. Missing values
    are skipped: the next valid row then gets the mean over the longer span (also the first
    row of an issue that starts late, e.g. 23 h after it); rows whose span exceeds
    ``max_span_minutes`` are NaN instead (``60`` for hourly data keeps only true 1 h means).
    Rows at the issue time itself (step 0, no span) are NaN. ``columns`` picks the accumulated columns of a frame
    (default: all numeric columns except ``issue_time``); other columns are returned unchanged.
    """
    if not isinstance(data.index, pd.DatetimeIndex):
        raise TypeError("deaccumulate needs a DatetimeIndex of valid times")
    _require_aware(data.index, "data.index")
    if issue_time is not None and issue_hours_utc is not None:
        raise ValueError("give issue_time or issue_hours_utc, not both")

    valid = data.index.tz_convert("UTC")
    if isinstance(issue_time, str):
        if not isinstance(data, pd.DataFrame) or issue_time not in data.columns:
            raise ValueError(f"issue_time column {issue_time!r} is not in the data")
        issues = pd.DatetimeIndex(pd.to_datetime(data[issue_time]))
    elif issue_time is not None:
        issues = pd.DatetimeIndex(pd.to_datetime(issue_time))
    elif issue_hours_utc is not None:
        issues = _issue_from_hours(data.index, issue_hours_utc)
    else:
        issues = None
    if issues is not None:
        if len(issues) != len(data):
            raise ValueError("issue_time must have one value per row of data")
        _require_aware(issues, "issue_time")
        issues = issues.tz_convert("UTC")

    def one(values: pd.Series) -> np.ndarray:
        frame = pd.DataFrame(
            {
                "valid": valid,
                "issue": issues if issues is not None else pd.Timestamp(0, tz="UTC"),
                "acc": np.asarray(values, dtype=float),
                "row": np.arange(len(values)),
            }
        ).dropna(subset=["acc", "issue"])
        frame = frame.sort_values(["issue", "valid"], kind="stable")
        grouped = frame.groupby("issue", sort=False)
        prev_acc = grouped["acc"].shift(1)
        prev_valid = grouped["valid"].shift(1)
        if issues is not None:  # the accumulation is 0 at the issue time
            prev_acc = prev_acc.fillna(0.0)
            prev_valid = prev_valid.fillna(frame["issue"])
        span_s = (frame["valid"] - prev_valid).dt.total_seconds().to_numpy(float)
        diff = np.clip(frame["acc"].to_numpy(float) - prev_acc.to_numpy(float), 0.0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(span_s > 0, diff * unit_factor * per_seconds / span_s, np.nan)
        if max_span_minutes is not None:
            rate = np.where(span_s <= float(max_span_minutes) * 60.0, rate, np.nan)
        out = np.full(len(values), np.nan)
        out[frame["row"].to_numpy()] = rate
        return out

    if isinstance(data, pd.Series):
        return pd.Series(one(data), index=data.index, name=data.name)
    if columns is None:
        columns = [
            c
            for c in data.select_dtypes("number").columns
            if not (isinstance(issue_time, str) and c == issue_time)
        ]
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the data")
    result = data.copy()
    for c in columns:
        result[c] = one(data[c])
    return result


# --------------------------------------------------------------------------- decomposition, POA
def erbs_decomposition(ghi_wm2: pd.Series, solar_pos: pd.DataFrame) -> pd.DataFrame:
    """DNI and DHI (W/m2) from GHI with the Erbs diffuse-fraction model [3] (pvlib).

    ``solar_pos`` is the :func:`solar_position` frame on the same index. NaN GHI gives NaN;
    near the horizon (zenith > 87 deg) all irradiance is diffuse. Returns ``dni_wm2``, ``dhi_wm2``.
    """
    ghi = pd.Series(np.clip(np.asarray(ghi_wm2, dtype=float), 0.0, None), index=solar_pos.index)
    doy = solar_pos.index.tz_convert("UTC").day_of_year.to_numpy(float)
    res = pvlib.irradiance.erbs(ghi, solar_pos["solar_zenith_deg"], doy)
    return pd.DataFrame(
        {"dni_wm2": np.asarray(res["dni"], float), "dhi_wm2": np.asarray(res["dhi"], float)},
        index=solar_pos.index,
    )


def plane_of_array_irradiance(
    ghi_wm2: pd.Series,
    dni_wm2: pd.Series,
    dhi_wm2: pd.Series,
    solar_pos: pd.DataFrame,
    tilt_deg: float,
    azimuth_deg: float,
    model: str = "haydavies",
    albedo: float = 0.25,
) -> pd.Series:
    """Total irradiance on the module plane, W/m2 (pvlib ``get_total_irradiance``).

    ``tilt_deg`` from horizontal (0..90), ``azimuth_deg`` clockwise from north (180 = south).
    ``model`` is the sky-diffuse model: ``"isotropic"`` or ``"haydavies"`` [4]; ground
    reflection with ``albedo``. 0 at night (see module doc), NaN where an input is NaN in
    daytime. Returns a Series named ``poa_global_wm2``.
    """
    if model not in POA_MODELS:
        raise UnknownValueError(f"unknown POA model {model!r}, expected one of {POA_MODELS}")
    if not 0.0 <= float(tilt_deg) <= 90.0:
        raise ImpossibleValueError(f"tilt_deg={tilt_deg} is outside 0..90")
    if not 0.0 <= float(azimuth_deg) <= 360.0:
        raise ImpossibleValueError(f"azimuth_deg={azimuth_deg} is outside 0..360")
    idx = solar_pos.index
    irr = pvlib.irradiance.get_total_irradiance(
        surface_tilt=float(tilt_deg),
        surface_azimuth=float(azimuth_deg),
        solar_zenith=solar_pos["solar_zenith_deg"],
        solar_azimuth=solar_pos["solar_azimuth_deg"],
        dni=pd.Series(np.asarray(dni_wm2, dtype=float), index=idx),
        ghi=pd.Series(np.asarray(ghi_wm2, dtype=float), index=idx),
        dhi=pd.Series(np.asarray(dhi_wm2, dtype=float), index=idx),
        dni_extra=solar_pos["extra_radiation_wm2"],
        albedo=albedo,
        model=model,
    )
    poa = np.clip(np.asarray(irr["poa_global"], dtype=float), 0.0, None)
    night = solar_pos["solar_zenith_deg"].to_numpy(float) >= 90.0
    return pd.Series(np.where(night, 0.0, poa), index=idx, name="poa_global_wm2")


def physical_pv_kw(
    irradiance_wm2: pd.Series, capacity_kw: float, temp_air_c: pd.Series | None = None
) -> pd.Series:
    """PVWatts-style DC estimate, kW: ``capacity * G/1000 * (1 + gamma (T_cell - 25))`` [7].

    ``irradiance_wm2`` is POA (or GHI for a horizontal/unknown orientation). Cell temperature
    from the NOCT model [6] when ``temp_air_c`` is given and not NaN, otherwise 25 degC (no
    derate). Clipped to ``[0, capacity_kw]``; NaN irradiance gives NaN.
    """
    g = pd.Series(np.asarray(irradiance_wm2, dtype=float))
    if temp_air_c is None:
        t_cell = pd.Series(25.0, index=g.index)
    else:
        t_air = pd.Series(np.asarray(temp_air_c, dtype=float))
        t_cell = pvlib.temperature.ross(g, t_air, noct=NOCT_C).fillna(25.0)
    p = pvlib.pvsystem.pvwatts_dc(g, t_cell, float(capacity_kw), GAMMA_PDC_PER_K)
    index = irradiance_wm2.index if isinstance(irradiance_wm2, pd.Series) else None
    return pd.Series(
        np.clip(np.asarray(p, dtype=float), 0.0, float(capacity_kw)),
        index=index,
        name="physical_kw",
    )


# --------------------------------------------------------------------------- entry point
def pv_features(
    times: pd.DatetimeIndex,
    weather: pd.DataFrame | None,
    latitude_deg: float,
    longitude_deg: float,
    resolution_minutes: float,
    tilt_deg: float | None = None,
    azimuth_deg: float | None = None,
    capacity_kw: float | None = None,
) -> pd.DataFrame:
    """Physical PV features for the intervals starting at ``times``.

    ``weather`` is indexed by exactly ``times`` (NaN where missing) with any subset of the
    contract columns; used here: ``ghi_wm2``, ``dni_wm2``, ``dhi_wm2``, ``cloud_cover_frac``,
    ``temp_air_c``. ``None`` means no weather. The orientation counts only when both
    ``tilt_deg`` and ``azimuth_deg`` are given; no orientation is guessed.

    Columns (which ones depends on which weather *columns* exist and on the arguments, never
    on the values, so train and predict frames match when their inputs have the same columns):

    always
        ``pv_solar_zenith_deg``, ``pv_solar_elevation_deg`` (apparent, at interval middle),
        ``pv_cos_zenith`` (unclipped, negative at night), ``pv_solar_azimuth_sin``,
        ``pv_solar_azimuth_cos``, ``pv_toa_ghi_wm2`` (extraterrestrial on the horizontal, >= 0),
        ``pv_clearsky_ghi_wm2`` (Ineichen), ``pv_is_night`` (0/1, clear-sky GHI < 10 W/m2)
    ``ghi_wm2`` given
        ``pv_clearsky_index`` (0 at night, clipped to 0..1.5)
    no ``ghi_wm2`` but ``cloud_cover_frac``
        ``pv_ghi_from_cloud_wm2`` (Kasten-Czeplak [5])
    orientation given
        ``pv_clearsky_poa_wm2``; and ``pv_poa_global_wm2`` when an irradiance source exists
    ``capacity_kw`` given
        ``pv_physical_kw``: PVWatts with NOCT temperature derate on POA (oriented) or GHI.

    Irradiance source, first available column: ``ghi_wm2``; ``dni_wm2`` + ``dhi_wm2`` (GHI by
    closure); ``cloud_cover_frac``. DNI/DHI come from the weather when both columns exist,
    else from Erbs. Without any source, ``pv_physical_kw`` uses clear-sky irradiance. Night
    rows are 0 in every irradiance and power column; weather NaN in daytime propagates as NaN.
    """
    _require_aware(times)
    weather = _check_weather_index(weather, times)
    sp = solar_position(times, latitude_deg, longitude_deg, resolution_minutes)
    cs = clear_sky_irradiance(times, latitude_deg, longitude_deg, resolution_minutes, solar_pos=sp)
    zen = sp["solar_zenith_deg"].to_numpy(float)
    az = np.radians(sp["solar_azimuth_deg"].to_numpy(float))
    cos_z = np.cos(np.radians(zen))
    night = cs["clearsky_ghi_wm2"].to_numpy(float) < NIGHT_CLEARSKY_WM2
    feats: dict[str, np.ndarray | pd.Series] = {
        "pv_solar_zenith_deg": zen,
        "pv_solar_elevation_deg": sp["solar_elevation_deg"].to_numpy(float),
        "pv_cos_zenith": cos_z,
        "pv_solar_azimuth_sin": np.sin(az),
        "pv_solar_azimuth_cos": np.cos(az),
        "pv_toa_ghi_wm2": sp["extra_radiation_wm2"].to_numpy(float) * np.clip(cos_z, 0.0, None),
        "pv_clearsky_ghi_wm2": cs["clearsky_ghi_wm2"].to_numpy(float),
        "pv_is_night": night.astype(np.int8),
    }

    ghi, dni, dhi = (_column(weather, c) for c in ("ghi_wm2", "dni_wm2", "dhi_wm2"))
    cloud = _column(weather, "cloud_cover_frac")
    if ghi is not None:
        feats["pv_clearsky_index"] = clear_sky_index(ghi, cs["clearsky_ghi_wm2"]).to_numpy()
    elif dni is not None and dhi is not None:
        ghi = dhi + dni * np.clip(cos_z, 0.0, None)
    elif cloud is not None:
        ghi = ghi_from_cloud_cover(cloud, cs["clearsky_ghi_wm2"])
        feats["pv_ghi_from_cloud_wm2"] = ghi.to_numpy()
    if ghi is not None:
        ghi = pd.Series(np.where(night, 0.0, ghi.clip(lower=0.0).to_numpy(float)), index=times)
        if dni is None or dhi is None:
            split = erbs_decomposition(ghi, sp)
            dni, dhi = split["dni_wm2"], split["dhi_wm2"]

    oriented = tilt_deg is not None and azimuth_deg is not None
    source = ghi  # irradiance on the module (POA when oriented), W/m2
    if oriented:
        cs_poa = plane_of_array_irradiance(
            cs["clearsky_ghi_wm2"],
            cs["clearsky_dni_wm2"],
            cs["clearsky_dhi_wm2"],
            sp,
            tilt_deg,
            azimuth_deg,
        )
        feats["pv_clearsky_poa_wm2"] = cs_poa.to_numpy()
        if ghi is not None:
            source = plane_of_array_irradiance(ghi, dni, dhi, sp, tilt_deg, azimuth_deg)
            feats["pv_poa_global_wm2"] = source.to_numpy()
    if capacity_kw is not None:
        if not float(capacity_kw) > 0:
            raise ImpossibleValueError(f"capacity_kw={capacity_kw} must be positive")
        if source is None:
            source = pd.Series(feats.get("pv_clearsky_poa_wm2", feats["pv_clearsky_ghi_wm2"]))
        power = physical_pv_kw(source, capacity_kw, _column(weather, "temp_air_c")).to_numpy()
        feats["pv_physical_kw"] = np.where(night, 0.0, power)
    return pd.DataFrame(feats, index=times)
