"""Month-ahead forecasts without a weather forecast: shifted-date weather scenarios.

Beyond the horizon of the latest weather forecast known at the issue time, the weather of
the target window is unknown. Following the temperature-scenario practice of GEFCom2014
load (Hong et al. 2016, IJF 32(3); Xie & Hong 2018, "Temperature scenario generation for
probabilistic load forecasting", IEEE TSG 9(3)), each scenario is the site's own weather
of the same calendar window ``y`` years earlier, shifted by ``d`` days (``shifts_days``,
-3..+3 by default): the value at target time ``t`` is the history at
``t - y years + d days`` (UTC; pandas' ``DateOffset`` maps 29 February to 28 February of a
common year). Only history known at the issue time is read (``weather_history``:
observations whose interval has ended, else the freshest forecast issued by then for a
time before the issue), and a scenario is kept only where it covers at least
``min_coverage`` of the window.

Each scenario is given to the fitted ``SiteForecaster`` as a weather forecast issued at
the issue time (and once a day earlier, for the previous-issue features), and the model
answers its own predictive distribution on ``POOL_LEVELS`` (equal-probability strata).
The scenario distributions, equally weighted, form a mixture; its quantiles at the
requested levels are the Hazen quantiles of the pooled strata (for one scenario, exactly
its own quantiles), sorted, hence non-crossing.

Leads beyond the model's longest trained lead (``buckets_``, D+3 by default): lags shorter
than the lead are unknown there and the model never learnt from rows missing them all.
``far_features`` gives such a row the lags (and lead) of the latest interval at the same
time of day that the model reaches, as known at the issue — persistence of the known level
at that time of day; the weather, calendar and same-time-of-day profiles stay the target's
own. An approximation, stated here and in the README.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecasting.features import Grid
from forecasting.portfolio import SiteData, as_utc, known_rows
from models.quantile import check_quantiles

SHIFTS_DAYS = (-3, -2, -1, 0, 1, 2, 3)
MAX_YEARS = 10
MIN_COVERAGE = 0.9
POOL_LEVELS = tuple((np.arange(40) + 0.5) / 40)
CONTEXT = pd.Timedelta(hours=6)  # weather around the window the features read (+-3 h)
DAY_MINUTES = 1440
POOL_CHUNK_ROWS = 512


@dataclass(frozen=True)
class Scenario:
    """One weather scenario: the history ``years_back`` earlier, shifted ``shift_days``;
    ``values`` indexed by the window's weather grid times (UTC), one column per variable."""

    years_back: int
    shift_days: int
    values: pd.DataFrame


def model_weather_columns(forecaster) -> tuple[str, ...]:
    """The weather columns a fitted ``SiteForecaster`` reads."""
    spec = forecaster.spec_
    return (*spec.weather_columns, *spec.extra_weather_columns)


def nwp_end(weather_known: pd.DataFrame, columns) -> pd.Timestamp | None:
    """Last valid time of the latest weather forecast (with a value in ``columns``) in a
    table already cut to what was known at the issue; None when none is known."""
    if weather_known.empty or not len(columns):
        return None
    cols = [c for c in columns if c in weather_known.columns]
    fc = weather_known[weather_known["issue_time"].notna()]
    fc = fc.dropna(subset=cols, how="all") if cols else fc.iloc[0:0]
    if fc.empty:
        return None
    latest = fc["issue_time"].max()
    return pd.Timestamp(fc.loc[fc["issue_time"] == latest, "timestamp"].max())


def weather_history(weather: pd.DataFrame, issue_time, columns) -> pd.DataFrame:
    """The site's weather before ``issue_time`` as known then, indexed by UTC timestamp.

    Observations whose interval has ended; for times without one, the freshest forecast
    (latest issue) issued by the issue time. Only ``columns`` present in the table.
    """
    issue = as_utc(issue_time, "issue_time")
    cols = [c for c in columns if c in weather.columns]
    if weather.empty or not cols:
        return pd.DataFrame(columns=cols, index=pd.DatetimeIndex([], tz="UTC"))
    known = known_rows(weather, issue)
    known = known[known["timestamp"] < issue]
    obs = known[known["issue_time"].isna()].dropna(subset=cols, how="all")
    fc = known[known["issue_time"].notna()].dropna(subset=cols, how="all")
    fc = fc.sort_values(["timestamp", "issue_time"]).drop_duplicates("timestamp", keep="last")
    obs = obs.drop_duplicates("timestamp", keep="last")
    both = pd.concat([fc[~fc["timestamp"].isin(obs["timestamp"])], obs])
    out = both.set_index(pd.DatetimeIndex(both["timestamp"]).tz_convert("UTC"))[cols]
    return out.sort_index()


def source_times(times: pd.DatetimeIndex, years_back: int, shift_days: int
                 ) -> pd.DatetimeIndex:
    """History times a scenario reads: ``times - years_back years + shift_days days``."""
    utc = pd.DatetimeIndex(times).tz_convert("UTC")
    return utc - pd.DateOffset(years=years_back) + pd.Timedelta(days=shift_days)


def window_grid(history: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
                ) -> pd.DatetimeIndex:
    """The history's weather grid over [start - CONTEXT, end + CONTEXT]."""
    grid = Grid.of(history.index.as_unit("ns").asi8)
    width = pd.Timedelta(grid.width_ns, unit="ns")
    lo = pd.Timestamp(int(grid.floor(np.array([(start - CONTEXT).value]))[0]), tz="UTC")
    return pd.date_range(lo, end + CONTEXT, freq=width)


def build_scenarios(history: pd.DataFrame, start, end, issue_time,
                    shifts_days=SHIFTS_DAYS, max_years: int = MAX_YEARS,
                    min_coverage: float = MIN_COVERAGE) -> list[Scenario]:
    """Shifted-date scenarios of the window [start, end) from ``history`` (see module doc).

    Years back from 1 to ``max_years``; a scenario needs every time it reads before the
    issue and ``min_coverage`` of the window's grid with a value. Empty when the history
    holds no past-year window (under a year of weather).
    """
    issue = as_utc(issue_time, "issue_time")
    s, e = as_utc(start, "start"), as_utc(end, "end")
    if history.empty:
        return []
    history = history[history.index < issue]
    if history.empty:
        return []
    grid = window_grid(history, s, e)
    inside = (grid >= s) & (grid < e)
    out = []
    for years in range(1, max_years + 1):
        for shift in shifts_days:
            src = source_times(grid, years, shift)
            if src.max() >= issue:
                continue  # would read weather not yet known: never
            values = history.reindex(src)
            if values.notna().any(axis=1)[inside].mean() < min_coverage:
                continue
            out.append(Scenario(years, int(shift), values.set_axis(grid)))
    return out


def scenario_weather(scenario: Scenario, issue: pd.Timestamp, site_id: str) -> pd.DataFrame:
    """A scenario as weather-table rows: a forecast issued at the issue time, and the same
    values issued a day earlier (the features' previous issue)."""
    v = scenario.values
    base = v.reset_index(names="timestamp")
    base.insert(0, "site_id", site_id)
    rows = []
    for when in (issue - pd.Timedelta(days=1), issue):
        part = base.copy()
        part.insert(2, "issue_time", when)
        rows.append(part)
    return pd.concat(rows, ignore_index=True)


def far_features(forecaster, data: SiteData, issue: pd.Timestamp,
                 targets: pd.DatetimeIndex) -> pd.DataFrame:
    """Feature rows of ``targets``; rows beyond the model's longest lead take the lags and
    lead of the latest interval at the same time of day within it (module doc)."""
    X = forecaster.features(data, issue, targets)
    reach = max(b[2] for b in forecaster.buckets_)
    lead = X["lead_minutes"].to_numpy(dtype=float)
    far = lead > reach
    if not far.any():
        return X
    days = np.zeros(len(lead), dtype=np.int64)
    days[far] = np.ceil((lead[far] - reach) / DAY_MINUTES).astype(np.int64)
    proxies = targets[far] - pd.to_timedelta(days[far], unit="D")
    P = forecaster.features(data, issue, proxies)
    cols = [c for c in X.columns if c.startswith("lag_")] + ["lead_minutes"]
    X = X.copy()
    rows = np.flatnonzero(far)
    for c in cols:
        X.iloc[rows, X.columns.get_loc(c)] = P[c].to_numpy()
    if "wx_age_minutes" in X:
        j = X.columns.get_loc("wx_age_minutes")
        X.iloc[rows, j] = X.iloc[rows, j].to_numpy() - days[far] * DAY_MINUTES
    return X


def pool_quantiles(per_scenario: np.ndarray, levels) -> np.ndarray:
    """Quantiles at ``levels`` of the equal-weight mixture of scenario distributions.

    ``per_scenario``: shape (scenarios, rows, len(POOL_LEVELS)), each scenario's quantiles
    at the equal-probability strata ``POOL_LEVELS``. Returns (rows, len(levels)), sorted.
    """
    levels = np.asarray(check_quantiles(levels), dtype=float)
    n_s, n, k = per_scenario.shape
    out = np.empty((n, len(levels)))
    for lo in range(0, n, POOL_CHUNK_ROWS):
        block = per_scenario[:, lo:lo + POOL_CHUNK_ROWS, :]
        pooled = block.transpose(1, 0, 2).reshape(block.shape[1], n_s * k)
        out[lo:lo + POOL_CHUNK_ROWS] = np.quantile(pooled, levels, axis=1,
                                                   method="hazen").T
    return np.sort(out, axis=1)


@dataclass
class ScenarioForecast:
    """Pooled quantiles (columns ``q<level>``) and the scenarios that made them."""

    quantiles: pd.DataFrame
    scenarios: list[Scenario]


def forecast_scenarios(forecaster, data: SiteData, issue_time, targets: pd.DatetimeIndex,
                       levels, shifts_days=SHIFTS_DAYS, max_years: int = MAX_YEARS
                       ) -> ScenarioForecast | None:
    """Forecast ``targets`` from the weather scenarios; None when there are none (under a
    year of weather history known at the issue, or a model that reads no weather)."""
    issue = as_utc(issue_time, "issue_time")
    levels = check_quantiles(levels)
    columns = model_weather_columns(forecaster)
    if not columns or not len(targets):
        return None
    known = data.known_at(issue)
    history = weather_history(known.weather, issue, columns)
    res = pd.Timedelta(minutes=data.site.resolution_minutes)
    scenarios = build_scenarios(history, targets.min(), targets.max() + res, issue,
                                shifts_days, max_years)
    if not scenarios:
        return None
    per = np.empty((len(scenarios), len(targets), len(POOL_LEVELS)), dtype=np.float32)
    for i, sc in enumerate(scenarios):
        wx = scenario_weather(sc, issue, data.site.site_id)
        X = far_features(forecaster, replace(known, weather=wx), issue, targets)
        per[i] = forecaster.predict_features(X, POOL_LEVELS).to_numpy(dtype=np.float32)
    values = pool_quantiles(per, levels)
    cols = [f"q{float(q):g}" for q in levels]
    return ScenarioForecast(pd.DataFrame(values, index=targets, columns=cols), scenarios)
