"""OpenEEmeter sample meters (../shared/data/eemeter_samples) read in place.

Source and licence: eemeter_samples/SOURCE.txt (eemeter 4.1.1 / opendsm samples,
Apache-2.0). The Illinois meters (``il-*``) are SYNTHETIC, generated from a known model with a
10 % lower consumption in the *reporting* period after ``blackout_end_date`` than in the
*baseline* period before ``blackout_start_date`` (metadata.json: annual baseline 10,000 kWh,
reporting 9,000 kWh): the saving a baseline must recover. Temperature ``il-tempF`` is °F
(converted to °C here). The UK meters look like real household readings of unknown
provenance (hourly kWh, UTC; temperature °C with naive stamps, taken as UTC); their
metadata are placeholders, so they only serve placebo tests.

kWh per reading interval is converted to mean kW (kWh per hour = kW; kWh per half hour x 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from inference.baseline_data import EvalDataset
from pipelines.datasets import dataset_dir

NAME = "eemeter_samples"
IL_ELECTRICITY = ("il-electricity-cdd-hdd-hourly", "il-electricity-cdd-only-hourly")
UK_ELECTRICITY = ("uk-electricity-hdd-only-hourly-sample-0",
                  "uk-electricity-hdd-only-hourly-sample-1",
                  "uk-electricity-hdd-only-hourly-sample-2")
IL_GAS = ("il-gas-hdd-only-hourly", "il-gas-intercept-only-hourly")
IL_TIMEZONE = "America/Chicago"
UK_TIMEZONE = "Europe/London"


def data_dir(root: Path | None = None) -> Path:
    """The shared data folder ``NAME`` (``$VPP_SHARED_DATA``); a clear error
    (``SharedDataMissingError``, a ``FileNotFoundError``) when it is absent."""
    return dataset_dir(NAME, root, probe="metadata.json")


def metadata(root: Path | None = None) -> dict:
    return json.loads((data_dir(root) / "metadata.json").read_text())


def read_meter(name: str, root: Path | None = None) -> tuple[pd.Series, pd.DataFrame, dict]:
    """(load kW with UTC index, weather frame with ``temp_air_c`` °C, the meter's metadata)."""
    meta = metadata(root)[name]
    path = data_dir(root)
    meter = pd.read_csv(path / meta["meter_data_filename"])
    idx = pd.DatetimeIndex(pd.to_datetime(meter["start"], utc=True))
    load = pd.Series(meter["value"].to_numpy(dtype=float), index=idx, name="load_kw")
    load = load[~load.index.duplicated()].dropna().sort_index()
    step_h = pd.Series(load.index).diff().min() / pd.Timedelta(hours=1)
    load = load / step_h  # kWh per reading -> mean kW (half-hourly UK samples: x 2)
    temp = pd.read_csv(path / meta["temperature_filename"])
    if "tempF" in temp.columns:
        ts = pd.to_datetime(temp["dt"], utc=True)
        celsius = (temp["tempF"].to_numpy(dtype=float) - 32.0) * 5.0 / 9.0
    else:
        ts = pd.to_datetime(temp["dt"]).dt.tz_localize("UTC")
        celsius = temp["tempC"].to_numpy(dtype=float)
    weather = pd.DataFrame({"timestamp": ts, "temp_air_c": celsius}).dropna()
    weather = weather.drop_duplicates("timestamp").reset_index(drop=True)
    return load, weather, meta


def savings_cases(root: Path | None = None, include_gas: bool = True) -> list[dict]:
    """The Illinois hourly meters with their baseline/reporting split and known saving.

    Gas meters are in therms per hour; the arithmetic is the same (the unit is not kW).
    """
    cases = []
    for name in IL_ELECTRICITY + (IL_GAS if include_gas else ()):
        load, weather, meta = read_meter(name, root)
        known = 1 - meta["annual_reporting_total_load"] / meta["annual_baseline_total_load"]
        cases.append({
            "name": name, "load": load, "weather": weather, "timezone": IL_TIMEZONE,
            "holiday_country": "US",
            "baseline_end": pd.Timestamp(meta["blackout_start_date"], tz=IL_TIMEZONE),
            "reporting_start": pd.Timestamp(meta["blackout_end_date"], tz=IL_TIMEZONE),
            "known_saving": known})
    return cases


def placebo_datasets(root: Path | None = None) -> list[EvalDataset]:
    """Illinois electricity before the blackout (baseline period) and the UK meters."""
    il_loads, il_weather = {}, {}
    for name in IL_ELECTRICITY:
        load, weather, meta = read_meter(name, root)
        cut = pd.Timestamp(meta["blackout_start_date"], tz=IL_TIMEZONE)
        il_loads[name] = load[load.index < cut]
        il_weather[name] = weather
    out = [EvalDataset("eemeter_il", il_loads, IL_TIMEZONE, "US", il_weather,
                       notes="synthetic Illinois meters, baseline period only")]
    # sample-0 is hourly (2020-22), samples 1 and 2 half-hourly (2012-14): two data sets
    for label, names in (("eemeter_uk_2020", UK_ELECTRICITY[:1]),
                         ("eemeter_uk_2012", UK_ELECTRICITY[1:])):
        loads, weather = {}, {}
        for name in names:
            loads[name], weather[name], _ = read_meter(name, root)
        out.append(EvalDataset(label, loads, UK_TIMEZONE, "GB", weather,
                               notes="UK household meters of unknown provenance"))
    return out
