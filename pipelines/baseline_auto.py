"""Automatic baseline choice scored out of sample: ``auto`` and the weighted combination.

In the placebo evaluation (``pipelines.baseline_eval``) every single method is scored on
every placebo window. ``auto`` is one more method made from those rows: for a window ``i``
of customer ``c`` it takes the method with the lowest CV(RMSE) over the placebo windows
that **ended by the notice time of** ``i`` (a window that ends later is never looked at,
``prior_windows`` is the one place that decides it) and is scored on ``i`` itself with
that method's baseline. Each single method's baseline on a prior window was itself computed
only from data before that window, so the choice is out of sample twice over.

Which prior windows count (``choose``):

- the customer's own, when at least ``min_own_windows`` exist (``source='own'``);
- otherwise the prior windows of *all* customers of the data set, CV(RMSE) per customer
  averaged (``'pooled'``): early in the evaluation a customer has few windows of its own;
- with no prior window at all, the first candidate in the given order (``'default'``).

Only windows on which every candidate of window ``i`` has a baseline are compared, so that
no method is scored on easier windows than another.

``auto_weighted`` combines the candidates instead of picking one: the baseline is
``sum w_m b_m`` with ``w_m`` proportional to ``1 / CV_m^2`` over the same prior windows
(inverse mean squared error, Bates and Granger 1969 for uncorrelated errors), over the
``top_k`` best candidates. The benchmark reports both; ``auto`` is what ``/baseline`` does.

References: Bates, J. M. and Granger, C. W. J. (1969) "The combination of forecasts",
Operational Research Quarterly 20(4).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

AUTO = "auto"
COMBINED = "auto_weighted"
MIN_OWN_WINDOWS = 3
TOP_K = 3


def window_table(intervals: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """One row per (event_no, method): squared error, intervals, metered sum, window times.

    ``intervals``: ``EvalResult.intervals`` rows; ``events``: ``EvalResult.events`` (its
    index is ``event_no``).
    """
    g = intervals.dropna(subset=["actual_kw", "baseline_kw"])
    err2 = (g["baseline_kw"] - g["actual_kw"]) ** 2
    table = g.assign(err2=err2).groupby(["event_no", "method"], sort=False).agg(
        customer_id=("customer_id", "first"), sse=("err2", "sum"), n=("err2", "size"),
        actual_sum=("actual_kw", "sum")).reset_index()
    ev = events[["start", "end", "notice_time"]]
    return table.join(ev, on="event_no")


def prior_windows(table: pd.DataFrame, notice: pd.Timestamp) -> pd.DataFrame:
    """The rows of windows that ended by ``notice``: all the choice may see."""
    return table[table["end"] <= notice]


def _scores(prior: pd.DataFrame, candidates: list[str]) -> pd.Series:
    """CV(RMSE) per candidate over ``prior``, per customer then averaged over customers,
    on the windows where every candidate has a baseline."""
    wide = prior[prior["method"].isin(candidates)]
    complete = wide.groupby("event_no")["method"].nunique() == len(candidates)
    wide = wide[wide["event_no"].isin(complete.index[complete])]
    if wide.empty:
        return pd.Series(dtype=float)
    per = wide.groupby(["method", "customer_id"]).agg(sse=("sse", "sum"), n=("n", "sum"),
                                                     a=("actual_sum", "sum"))
    cv = np.sqrt(per["sse"] / per["n"]) / (per["a"] / per["n"]).abs()
    return cv.groupby(level="method").mean().reindex(candidates)


def choose(table: pd.DataFrame, events: pd.DataFrame, candidates: tuple[str, ...],
           min_own_windows: int = MIN_OWN_WINDOWS, top_k: int = TOP_K) -> pd.DataFrame:
    """The choice for every placebo window (see module doc).

    Returns one row per ``event_no``: ``method`` (auto's pick), ``weights`` (method ->
    weight of the combination), ``source`` (own / pooled / default), ``n_windows`` (prior
    windows compared) and ``last_window_end`` (the latest end among them, NaT if none).
    """
    rows = []
    have = table.groupby("event_no")["method"].agg(set)
    for ev in events.itertuples():
        avail = [m for m in candidates if m in have.get(ev.Index, set())]
        if not avail:
            continue
        prior = prior_windows(table, ev.notice_time)
        own = prior[prior["customer_id"] == ev.customer_id]
        source, scores = "default", pd.Series(dtype=float)
        for name, sub in (("own", own), ("pooled", prior)):
            if name == "own" and own["event_no"].nunique() < min_own_windows:
                continue
            scores = _scores(sub, avail).dropna()
            if len(scores) == len(avail):
                source, used = name, sub[sub["method"].isin(avail)]
                break
        if source == "default":
            rows.append({"event_no": ev.Index, "method": avail[0], "weights": {avail[0]: 1.0},
                         "source": source, "n_windows": 0, "last_window_end": pd.NaT})
            continue
        best = min(avail, key=lambda m: (scores[m], avail.index(m)))
        top = scores.sort_values(kind="stable").iloc[:top_k]
        inv = 1.0 / np.maximum(top.to_numpy(), 1e-12) ** 2
        rows.append({"event_no": ev.Index, "method": best,
                     "weights": dict(zip(top.index, inv / inv.sum(), strict=True)),
                     "source": source, "n_windows": int(used["event_no"].nunique()),
                     "last_window_end": used["end"].max()})
    return pd.DataFrame(rows, columns=["event_no", "method", "weights", "source", "n_windows",
                                       "last_window_end"]).set_index("event_no")


def auto_rows(intervals: pd.DataFrame, choices: pd.DataFrame) -> pd.DataFrame:
    """Interval rows of ``auto`` and ``auto_weighted`` from the chosen methods' rows."""
    if choices.empty:
        return intervals.iloc[:0]
    pick = intervals.join(choices["method"].rename("chosen"), on="event_no")
    auto = pick[pick["method"] == pick["chosen"]].drop(columns="chosen").assign(method=AUTO)
    weights = pd.DataFrame([{"event_no": e, "method": m, "w": w}
                            for e, ws in choices["weights"].items() for m, w in ws.items()])
    mixed = intervals.merge(weights, on=["event_no", "method"])
    mixed = mixed.assign(wb=mixed["w"] * mixed["baseline_kw"])
    combined = mixed.groupby(["event_no", "timestamp"], sort=False).agg(
        customer_id=("customer_id", "first"), actual_kw=("actual_kw", "first"),
        baseline_kw=("wb", "sum"), w=("w", "sum")).reset_index()
    combined["baseline_kw"] = combined["baseline_kw"] / combined["w"]
    combined = combined.drop(columns="w").assign(method=COMBINED, baseline_p10_kw=np.nan,
                                                 baseline_p90_kw=np.nan)
    return pd.concat([auto, combined[intervals.columns]], ignore_index=True)


def add_auto(intervals: pd.DataFrame, events: pd.DataFrame, candidates: tuple[str, ...],
             **params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``intervals`` with the ``auto`` and ``auto_weighted`` rows appended, and the choices."""
    choices = choose(window_table(intervals, events), events, candidates, **params)
    return pd.concat([intervals, auto_rows(intervals, choices)], ignore_index=True), choices
