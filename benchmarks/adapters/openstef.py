"""OpenSTEF/Alliander test data (prediction job 307): a Dutch substation's 15-minute load.

Source: ../shared/data/openstef_alliander_testdata/SOURCE.txt (OpenSTEF 3.x unit-test data,
MPL-2.0; real operational data, anonymised). ``307-train-data.csv`` and ``307-test-data.csv``
are joined (they share one row) into 2020-08-15 .. 2020-11-30, UTC, 15 minutes.

Choices made here (the data do not settle them):

- **Load**: ``load`` is MW (negative = net infeed, e.g. PV behind the substation); written
  as ``load_kw`` = MW x 1000. No contracted capacity is given.
- **Weather**: the columns are the NWP forecasts used operationally but carry no issue time.
  They are declared as forecasts **issued at 00:00 UTC of the previous day** for every
  timestamp of UTC day D (so a forecast issued 12:00 local on D-1 sees the weather of D and
  of the rest of D-1, but not of D+1). Conversions: ``radiation`` J/m2 per hour -> W/m2
  (``/3600``, negatives from interpolation clipped to 0); ``clouds`` % -> fraction (clipped
  to 0..100 % first: a few values exceed 100); ``humidity`` fraction -> %; ``pressure`` Pa
  -> hPa; ``windspeed``/``winddeg`` are near-surface (taken as 10 m), ``windspeed_100m`` at
  100 m; ``rain`` as ``precipitation_mm``. ``mxlD``, ``snowDepth``, the clear-sky and the
  standard-profile (``sjv_*``) columns are not in the contract and are left out.
- **Price**: ``day_ahead_electricity_price`` (EUR/MWh, EPEX NL) as ``price_eur_per_mwh``,
  market ``day_ahead``. The auction for delivery day D clears about 12:45 CET on D-1, so
  every hour of local day D is declared **issued 13:00 Europe/Amsterdam on D-1**: a
  forecast issued at 12:00 for the next day cannot see that day's prices.
- **Site**: timezone Europe/Amsterdam, holiday_country NL; no location (anonymised).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.adapters import cli, dataset_dir

NAME = "openstef_alliander_testdata"
SITE_ID = "openstef_307"
TIMEZONE = "Europe/Amsterdam"
PRICE_ISSUE_HOUR_LOCAL = 13


def read_raw(root=None) -> pd.DataFrame:
    """The joined train and test files, UTC index, duplicates dropped."""
    folder = dataset_dir(NAME, root, probe="307-train-data.csv")
    parts = [pd.read_csv(folder / f, index_col=0) for f in ("307-train-data.csv",
                                                            "307-test-data.csv")]
    raw = pd.concat(parts)
    raw.index = pd.to_datetime(raw.index, utc=True).astype("datetime64[ns, UTC]")
    raw = raw[~raw.index.duplicated(keep="first")].sort_index()
    raw.index.name = "timestamp"
    return raw


def frames(root=None) -> dict[str, pd.DataFrame]:
    raw = read_raw(root)
    ts = raw.index
    sites = pd.DataFrame([{"site_id": SITE_ID, "kind": "load", "timezone": TIMEZONE,
                           "holiday_country": "NL"}])
    meas = pd.DataFrame({"site_id": SITE_ID, "timestamp": ts,
                         "load_kw": raw["load"].to_numpy(float) * 1000.0})
    meas = meas[meas["load_kw"].notna()]
    weather = pd.DataFrame({
        "site_id": SITE_ID,
        "timestamp": ts,
        "issue_time": ts.floor("D") - pd.Timedelta(days=1),
        "temp_air_c": raw["temp"].to_numpy(float),
        "relative_humidity_pct": np.clip(raw["humidity"].to_numpy(float) * 100.0, 0, 100),
        "pressure_hpa": raw["pressure"].to_numpy(float) / 100.0,
        "cloud_cover_frac": np.clip(raw["clouds"].to_numpy(float), 0, 100) / 100.0,
        "ghi_wm2": np.clip(raw["radiation"].to_numpy(float), 0, None) / 3600.0,
        "precipitation_mm": np.clip(raw["rain"].to_numpy(float), 0, None),
        "wind_speed_10m_mps": raw["windspeed"].to_numpy(float),
        "wind_dir_10m_deg": np.mod(raw["winddeg"].to_numpy(float), 360.0),
        "wind_speed_100m_mps": raw["windspeed_100m"].to_numpy(float),
    })
    hourly = raw.loc[ts.minute == 0, "day_ahead_electricity_price"]
    local_day = hourly.index.tz_convert(TIMEZONE).normalize()
    issue = (local_day - pd.Timedelta(days=1) + pd.Timedelta(hours=PRICE_ISSUE_HOUR_LOCAL))
    prices = pd.DataFrame({"timestamp": hourly.index, "issue_time": issue.tz_convert("UTC"),
                           "market": "day_ahead",
                           "price_eur_per_mwh": hourly.to_numpy(float)})
    return {"sites": sites, "measurements": meas, "weather": weather, "prices": prices}


if __name__ == "__main__":
    cli(NAME, frames)
