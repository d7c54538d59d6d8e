"""Small synthetic inputs for unit tests (hand-made, not the sample portfolio generator)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.portfolio import Site, SiteData

TZ = "Asia/Shanghai"


def load_series(days: int = 60, start: str = "2024-03-01", seed: int = 0,
                noise_kw: float = 20.0) -> pd.Series:
    """15-minute load (kW): a working-hours block, a weekend dip, temperature-free noise."""
    idx = pd.date_range(start, periods=days * 96, freq="15min", tz=TZ).tz_convert("UTC")
    local = idx.tz_convert(TZ)
    hour = local.hour + local.minute / 60
    working = (local.day_of_week < 5) & (hour >= 8) & (hour < 20)
    rng = np.random.default_rng(seed)
    values = 500 + 400 * working + rng.normal(0, noise_kw, len(idx))
    return pd.Series(values, index=idx, name="load_kw")


def weather_forecasts(index: pd.DatetimeIndex, seed: int = 1) -> pd.DataFrame:
    """Hourly temperature forecasts issued daily at 00:00 UTC for 72 h."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range(index[0].floor("D"), index[-1] + pd.Timedelta(days=3), freq="1h")
    rows = []
    for issue in pd.date_range(hours[0], index[-1], freq="1D"):
        ts = hours[(hours >= issue) & (hours < issue + pd.Timedelta(hours=72))]
        temp = 15 + 8 * np.sin(2 * np.pi * (ts.hour - 9) / 24) + rng.normal(0, 1, len(ts))
        rows.append(pd.DataFrame({"timestamp": ts, "issue_time": issue, "temp_air_c": temp}))
    return pd.concat(rows, ignore_index=True)


def empty_prices() -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
                         "issue_time": pd.Series(dtype="datetime64[ns, UTC]"),
                         "market": pd.Series(dtype="string")})


def site_data(days: int = 60, seed: int = 0) -> SiteData:
    values = load_series(days, seed=seed)
    site = Site("load_x", "load", TZ, 15, capacity_kw=2000.0, holiday_country="CN")
    return SiteData(site, values, weather_forecasts(values.index), empty_prices())


def write_portfolio(directory: Path, days: int = 30, fmt: str = "csv") -> Path:
    """A one-site portfolio on disk (sites.csv, measurements, weather) in ``fmt``."""
    directory.mkdir(parents=True, exist_ok=True)
    values = load_series(days)
    pd.DataFrame([{"site_id": "load_x", "kind": "load", "timezone": TZ, "capacity_kw": 2000,
                   "customer_id": "cx", "holiday_country": "CN"}]).to_csv(
        directory / "sites.csv", index=False)
    meas = pd.DataFrame({"site_id": "load_x", "timestamp": values.index.tz_convert(TZ),
                         "load_kw": values.to_numpy()})
    wx = weather_forecasts(values.index)
    wx.insert(0, "site_id", "load_x")
    if fmt == "parquet":
        meas.to_parquet(directory / "measurements.parquet")
        wx.to_parquet(directory / "weather.parquet")
    else:
        suffix = ".csv.gz" if fmt == "csv.gz" else ".csv"
        for frame, name in ((meas, "measurements"), (wx, "weather")):
            out = frame.copy()
            for c in ("timestamp", "issue_time"):
                if c in out:
                    out[c] = pd.DatetimeIndex(out[c]).tz_convert(TZ).map(lambda t: t.isoformat())
            out.to_csv(directory / f"{name}{suffix}", index=False)
    return directory


def forget_bentoml_metrics() -> None:
    """BentoML registers its request metrics in the default Prometheus registry once per app
    it builds: a second app in one process fails on duplicated time series."""
    from prometheus_client import REGISTRY

    for collector, names in list(REGISTRY._collector_to_names.items()):
        if any(name.startswith("bentoml_") for name in names):
            REGISTRY.unregister(collector)


def asgi_client(**kwargs):
    """``TestClient(VPPService.to_asgi(), **kwargs)``, the service built from the current
    environment; use it as a context manager (it runs the app's start-up and shut-down)."""
    from starlette.testclient import TestClient

    from serving.service import VPPService

    forget_bentoml_metrics()
    return TestClient(VPPService.to_asgi(), **kwargs)
