"""CalTRACK hourly saving on the eemeter Illinois meters, run INSIDE the OpenDSM venv.

Called by ``benchmarks/opendsm_reference.py``::

    var/opendsm-venv/bin/python benchmarks/opendsm/caltrack_savings.py EEMETER_DIR NAMES

Fits ``HourlyModel`` on the 365 days before each meter's ``blackout_start_date`` and
predicts the reporting period from ``blackout_end_date`` (``predict`` mutates the model:
predict on a copy). Prints one line ``OPENDSM_JSON {name: {"saving", "hours"}}`` with
``saving = 1 - observed / predicted`` summed over the hours with both.
"""

import copy
import json
import sys

import pandas as pd
from opendsm.eemeter.models.hourly_caltrack.data import HourlyBaselineData, HourlyReportingData
from opendsm.eemeter.models.hourly_caltrack.wrapper import HourlyModel

TZ = "America/Chicago"


def main(root: str, names: list[str]) -> None:
    with open(f"{root}/metadata.json") as fh:
        meta = json.load(fh)
    out = {}
    for name in names:
        m = meta[name]
        raw = pd.read_csv(f"{root}/{m['meter_data_filename']}")
        meter = pd.Series(raw["value"].to_numpy(), name="observed",
                          index=pd.to_datetime(raw["start"], utc=True)).tz_convert(TZ)
        raw = pd.read_csv(f"{root}/{m['temperature_filename']}")
        temp = pd.Series(raw["tempF"].to_numpy(), name="temperature",
                         index=pd.to_datetime(raw["dt"], utc=True)).tz_convert(TZ)
        b_end = pd.Timestamp(m["blackout_start_date"], tz=TZ)
        r_start = pd.Timestamp(m["blackout_end_date"], tz=TZ)
        b_start = b_end - pd.Timedelta(days=365)
        bm = meter[(meter.index >= b_start) & (meter.index < b_end)]
        bt = temp[(temp.index >= b_start) & (temp.index < b_end)]
        rm = meter[meter.index >= r_start]
        rt = temp[(temp.index >= r_start) & (temp.index <= rm.index.max())]
        model = HourlyModel().fit(HourlyBaselineData.from_series(bm, bt,
                                                                 is_electricity_data=True))
        pred = copy.deepcopy(model).predict(
            HourlyReportingData.from_series(rm, rt, is_electricity_data=True))
        ok = pred["observed"].notna() & pred["predicted"].notna()
        out[name] = {"saving": 1 - pred.loc[ok, "observed"].sum()
                     / pred.loc[ok, "predicted"].sum(), "hours": int(ok.sum())}
    print("OPENDSM_JSON " + json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","))
