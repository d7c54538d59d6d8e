"""SYNTHETIC sample portfolio: invented demo data in the portfolio format, never real measurements.

The generator writes a complete portfolio (``../shared/DATA_FORMAT.md``) for a fictitious
virtual power plant around Nanjing, Jiangsu: about 20 industrial and commercial customers
(2- and 3-shift factories, continuous process plants, offices, malls, cold storage, a data
centre, ...), 3 PV plants and 2 wind farms, with 18 months of 15-minute metered power,
hourly weather observations and day-ahead NWP forecasts, day-ahead and real-time prices,
demand-response events with settled responses, and each customer's controllable
resources. It exists so that load/PV/wind forecasting, baselines, response-likelihood
models and dispatch can be developed, demonstrated and tested without customer data. Every
value comes from the seeded stochastic models in the other modules of this package (listed
in ``forecasting/synthetic/__init__.py``); this module puts them together and writes the files.

Public API: ``generate_portfolio_frames`` (tables as frames), ``write_portfolio`` (files),
``generate_portfolio`` (both); ``simulate_portfolio`` also returns the hidden truth that
real data never has (load without events, customer reliability), for testing baselines
and response models. The same seed gives identical frames.

The default data are clean: they pass contract validation (no gaps, duplicates, NaNs,
naive stamps or impossible values). To test how code copes with bad data, corrupt a copy
of the frames, for example::

    frames = generate_portfolio_frames(start="2024-06-01", end="2024-07-01")
    m = frames["measurements"]
    gaps = m.drop(m.index[1000:1096])                              # one missing day
    dupes = pd.concat([m, m.iloc[:10]])                            # duplicate keys
    naive = m.assign(timestamp=m["timestamp"].dt.tz_localize(None))  # naive stamps
    nan = m.copy(); nan.loc[nan.index[5], "load_kw"] = float("nan")  # NaN value
    pv = m["site_id"] == "pv_01"
    negative = m.copy(); negative.loc[pv, "pv_power_kw"] *= -1     # sign error
    watts = m.copy(); watts.loc[pv, "pv_power_kw"] *= 1000         # W instead of kW
    irregular = m[~((m["site_id"] == "load_c01") & (m["timestamp"].dt.minute == 15))]
    cutoff = pd.Timestamp("2024-06-10", tz="UTC")
    stale = frames["weather"][frames["weather"]["timestamp"] < cutoff]  # old weather

and write the result with ``write_portfolio`` to exercise the file readers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.synthetic.events import simulate_events
from forecasting.synthetic.grid import make_grid
from forecasting.synthetic.load import simulate_load
from forecasting.synthetic.minute import event_readings, write_event_readings
from forecasting.synthetic.nwp import MAX_LEAD_HOURS, forecast_frame
from forecasting.synthetic.power import pv_power_kw, wind_power_kw
from forecasting.synthetic.prices import simulate_prices
from forecasting.synthetic.random import stream
from forecasting.synthetic.resources import build_resources, resources_frame
from forecasting.synthetic.sites import HOLIDAY_COUNTRY, TIMEZONE, build_sites, sites_frame
from forecasting.synthetic.truth import write_settlement_extras
from forecasting.synthetic.weather import hourly_truth, observation_frame, simulate_weather

TABLES = ("sites", "measurements", "weather", "prices", "events", "resources")
CSV_TABLES = ("sites", "events", "resources")
PARQUET_TABLES = ("measurements", "weather", "prices")
CSV_TIMESTAMP_COLUMNS = {"events": ("notice_time", "start", "end")}
POWER_DECIMALS = 1
ATTRS_KEY = "synthetic_generator"


@dataclass(frozen=True)
class SyntheticPortfolio:
    """A generated portfolio with its hidden truth.

    ``frames`` the tables (see ``generate_portfolio_frames``); ``load_kw_without_events``
    the counterfactual net load of each load site (columns site ids, UTC 15-minute index):
    the perfect baseline, ``load_kw_without_events - load_kw`` averages ``actual_kw`` over
    each event; ``customer_reliability`` the per-customer factor of the response model.
    """

    frames: dict[str, pd.DataFrame]
    load_kw_without_events: pd.DataFrame
    customer_reliability: dict[str, float]
    resource_events: pd.DataFrame | None = None  # optional table resource_events.csv
    response_truth: pd.DataFrame | None = None  # truth.py: P(deliver) per row


def simulate_portfolio(
    seed: int = 7,
    start: str = "2024-01-01",
    end: str = "2025-07-01",
    n_customers: int = 20,
    n_pv: int = 3,
    n_wind: int = 2,
) -> SyntheticPortfolio:
    """Generate the portfolio and keep the hidden truth (see ``SyntheticPortfolio``)."""
    grid = make_grid(start, end, TIMEZONE, HOLIDAY_COUNTRY)
    sites = build_sites(stream(seed, "sites"), n_customers, n_pv, n_wind)
    truth = simulate_weather(stream(seed, "weather"), grid, sites)
    hourly = hourly_truth(truth)
    weather = pd.concat(
        [
            observation_frame(truth, hourly, grid),
            forecast_frame(stream(seed, "nwp"), grid, truth.site_ids, hourly),
        ],
        ignore_index=True,
    )
    times_mid = grid.index_15min + pd.Timedelta(minutes=7.5)
    load_sites = [s for s in sites if s.kind == "load"]
    load_rng = stream(seed, "load")
    loads = {
        s.customer_id: simulate_load(load_rng, grid, s, truth.site(s.site_id)) for s in load_sites
    }
    resources = build_resources(
        stream(seed, "resources"),
        load_sites,
        {c: float(load.gross_kw.mean()) for c, load in loads.items()},
    )
    regional_temp_c = truth.regional_mean("temp_air_c")
    outcome = simulate_events(
        stream(seed, "events"), grid, load_sites, loads, resources, regional_temp_c
    )

    values: dict[str, np.ndarray] = {}
    for site in sites:
        w = truth.site(site.site_id)
        if site.kind == "load":
            values[site.site_id] = (
                loads[site.customer_id].load_kw - outcome.response_kw[site.customer_id]
            )
        elif site.kind == "pv":
            values[site.site_id] = pv_power_kw(
                times_mid,
                w["solar_zenith_deg"],
                w["solar_azimuth_deg"],
                w["ghi_wm2"],
                w["dni_wm2"],
                w["dhi_wm2"],
                w["temp_air_c"],
                w["wind_speed_10m_mps"],
                site.tilt_deg,
                site.azimuth_deg,
                site.capacity_kw,
                site.dc_ac_ratio,
            )
        else:
            values[site.site_id] = wind_power_kw(
                w["wind_speed_10m_mps"],
                w["wind_speed_100m_mps"],
                w["temp_air_c"],
                w["pressure_hpa"],
                site.hub_height_m,
                site.capacity_kw,
                site.rated_speed_mps,
            )
    frames = {
        "sites": sites_frame(sites),
        "measurements": _measurements_frame(sites, grid.index_15min, values),
        "weather": weather,
        "prices": simulate_prices(
            stream(seed, "prices"), grid, regional_temp_c, truth.regional_mean("ghi_wm2")
        ),
        "events": outcome.events,
        "resources": resources_frame(resources),
    }
    frames["sites"].attrs[ATTRS_KEY] = {
        "seed": int(seed),
        "start": str(start),
        "end": str(end),
        "n_customers": n_customers,
        "n_pv": n_pv,
        "n_wind": n_wind,
    }
    counterfactual = pd.DataFrame(
        {s.site_id: loads[s.customer_id].load_kw for s in load_sites}, index=grid.index_15min
    )
    return SyntheticPortfolio(
        frames, counterfactual, outcome.reliability, outcome.resource_events, outcome.truth
    )


def _measurements_frame(
    sites, index: pd.DatetimeIndex, values: dict[str, np.ndarray]
) -> pd.DataFrame:
    n = len(index)
    frame = pd.DataFrame(
        {
            "site_id": np.repeat(np.array([s.site_id for s in sites], dtype=object), n),
            "timestamp": np.tile(index, len(sites)),
        }
    )
    column_of_kind = {"load": "load_kw", "pv": "pv_power_kw", "wind": "wind_power_kw"}
    for kind, column in column_of_kind.items():
        out = np.full(n * len(sites), np.nan)
        for i, site in enumerate(sites):
            if site.kind == kind:
                out[i * n : (i + 1) * n] = np.round(values[site.site_id], POWER_DECIMALS)
        frame[column] = out
    return frame


def generate_portfolio_frames(
    seed: int = 7,
    start: str = "2024-01-01",
    end: str = "2025-07-01",
    n_customers: int = 20,
    n_pv: int = 3,
    n_wind: int = 2,
) -> dict[str, pd.DataFrame]:
    """Synthetic portfolio tables keyed ``sites``, ``measurements``, ``weather``, ``prices``,
    ``events``, ``resources`` (columns per DATA_FORMAT.md, timestamps tz-aware UTC).

    ``start``/``end`` are local dates in Asia/Shanghai, ``end`` exclusive. ``sites`` has one
    extra column, ``segment`` (customer segment, or ``pv``/``wind``). Units are in the
    column names (kW, W/m2, degC, m/s, hPa, mm per hour, CNY/MWh, CNY/MW).
    """
    return simulate_portfolio(seed, start, end, n_customers, n_pv, n_wind).frames


def _local_iso(values: pd.Series, timezone: str) -> pd.Series:
    """``2024-01-15T14:30:00+08:00`` strings of tz-aware stamps in ``timezone``."""
    text = values.dt.tz_convert(timezone).dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    return text.str[:-2] + ":" + text.str[-2:]


def _description(frames: dict[str, pd.DataFrame]) -> str:
    """Text of ``SYNTHETIC.txt``: what the directory holds and that it is invented."""
    sites, meas, weather = frames["sites"], frames["measurements"], frames["weather"]
    events, resources, prices = frames["events"], frames["resources"], frames["prices"]
    meta = sites.attrs.get(ATTRS_KEY, {})
    first = meas["timestamp"].min().tz_convert(TIMEZONE)
    stop = meas["timestamp"].max().tz_convert(TIMEZONE) + pd.Timedelta(minutes=15)
    period = f"{first:%Y-%m-%d %H:%M} to {stop:%Y-%m-%d %H:%M} (end exclusive)"
    kinds = sites["kind"].value_counts()
    site_counts = (
        f"{len(sites)} sites: {kinds.get('load', 0)} load (customers), "
        f"{kinds.get('pv', 0)} pv, {kinds.get('wind', 0)} wind"
    )
    n_forecasts = int(weather["issue_time"].notna().sum())
    n_observations = len(weather) - n_forecasts
    negative = ", ".join(sorted(meas.loc[meas["load_kw"] < 0, "site_id"].unique())) or "none"
    n_events = events["event_id"].nunique()
    n_resource_customers = resources["customer_id"].nunique()
    seed = meta.get("seed", "unknown (frames were not made by generate_portfolio_frames)")
    call = (
        f"generate_portfolio(out_dir, seed={meta['seed']}, start={meta['start']!r}, "
        f"end={meta['end']!r}, n_customers={meta['n_customers']}, n_pv={meta['n_pv']}, "
        f"n_wind={meta['n_wind']})"
        if meta
        else "unknown"
    )
    return f"""SYNTHETIC DEMO DATA - NOT REAL MEASUREMENTS

Every site, customer, meter reading, weather value, forecast, price, demand-response event
and resource in this directory is invented. It was written by the synthetic sample-portfolio
generator of the vpp-forecasting project (the forecasting/synthetic/ package) for
demonstrations and tests. It must never be used as, or mixed with, real operational data.

generator call: {call}
seed:           {seed}
period:         {period}, local time {TIMEZONE}
location:       fictitious sites around Nanjing, Jiangsu (about 32.0 N, 118.8 E)
holidays:       CN (public holidays and swapped working weekends)

contents (format: ../shared/DATA_FORMAT.md, version 1):
  sites.csv             {site_counts};
                        extra column `segment`: synthetic customer segment (not in the contract)
  measurements.parquet  {len(meas):,} rows of 15-minute mean power in kW (load_kw,
                        pv_power_kw, wind_power_kw); timestamp = interval start, UTC.
                        load_kw is net of behind-the-meter PV; negative at times for: {negative}
  weather.parquet       {n_observations:,} hourly observations (issue_time empty) and
                        {n_forecasts:,} day-ahead NWP forecast rows (one issue per day at
                        00:00 UTC, leads 0-{MAX_LEAD_HOURS} h), for every site
  prices.parquet        {len(prices):,} rows: 15-minute day_ahead (issue_time = the day
                        before, 17:00 local) and real_time prices in CNY/MWh
  events.csv            {n_events} demand-response events, {len(events)} customer rows with
                        target_kw and settled actual_kw; timestamps in local time (+08:00)
  resources.csv         {len(resources)} controllable resources of {n_resource_customers} customers

The data are clean (no gaps, duplicates or impossible values). Measured load, PV and wind
follow the observed weather; the forecasts carry realistic, lead-dependent errors.
"""


def write_portfolio(frames: dict[str, pd.DataFrame], out_dir: Path) -> Path:
    """Write the tables to ``out_dir`` (created if needed) and return it.

    ``sites.csv``, ``events.csv``, ``resources.csv`` as CSV with ISO 8601 local stamps
    (``2024-01-15T14:30:00+08:00``); ``measurements``, ``weather``, ``prices`` as Parquet
    with tz-aware UTC stamps; plus ``SYNTHETIC.txt`` describing the synthetic content.
    """
    missing = [name for name in TABLES if name not in frames]
    if missing:
        raise ValueError(f"frames lacks the tables {missing}; expected keys {list(TABLES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in CSV_TABLES:
        table = frames[name].copy()
        for column in CSV_TIMESTAMP_COLUMNS.get(name, ()):
            table[column] = _local_iso(table[column], TIMEZONE)
        table.to_csv(out_dir / f"{name}.csv", index=False)
    for name in PARQUET_TABLES:
        frames[name].to_parquet(out_dir / f"{name}.parquet", index=False, compression="zstd")
    (out_dir / "SYNTHETIC.txt").write_text(_description(frames), encoding="utf-8")
    return out_dir


def generate_portfolio(out_dir: Path, seed: int = 7, **kwargs) -> Path:
    """Generate the synthetic portfolio (``generate_portfolio_frames`` keywords) and write
    it to ``out_dir``, with ``resource_events.csv`` and the generator's truth
    ``truth/response_truth.csv`` (``forecasting.synthetic.truth``); returns ``out_dir``."""
    portfolio = simulate_portfolio(seed=seed, **kwargs)
    out = write_portfolio(portfolio.frames, Path(out_dir))
    write_settlement_extras(out, portfolio.resource_events, portfolio.response_truth)
    write_event_readings(event_readings(stream(seed, "minute_readings"), portfolio.frames,
                                        portfolio.load_kw_without_events), out)
    return out


if __name__ == "__main__":  # timing and sizes of the default portfolio
    import sys
    import tempfile

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    generate_portfolio(target)
    print(f"wrote {target} in {time.perf_counter() - t0:.1f} s")
    for path in sorted(target.iterdir()):
        print(f"  {path.name:24s} {path.stat().st_size / 1e6:8.2f} MB")
