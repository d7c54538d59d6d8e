"""Figures logged with training and backtest runs (matplotlib, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from pipelines.evaluation import quantile_columns


def forecast_vs_actual(scored: pd.DataFrame, timezone: str, title: str, max_days: int = 7):
    """Median and the outermost band against the measurements, last ``max_days`` days."""
    qcols = quantile_columns(scored)
    levels = sorted(qcols)
    frame = scored.sort_values("timestamp")
    end = frame["timestamp"].max()
    frame = frame[frame["timestamp"] > end - pd.Timedelta(days=max_days)]
    t = pd.DatetimeIndex(frame["timestamp"]).tz_convert(timezone)
    fig, ax = plt.subplots(figsize=(11, 4))
    if len(levels) >= 2:
        ax.fill_between(t, frame[qcols[levels[0]]], frame[qcols[levels[-1]]], alpha=0.25,
                        label=f"P{levels[0] * 100:g}-P{levels[-1] * 100:g}")
    median = min(levels, key=lambda q: abs(q - 0.5))
    ax.plot(t, frame[qcols[median]], label=f"P{median * 100:g} forecast")
    ax.plot(t, frame["actual_kw"], color="black", lw=1, label="measured")
    ax.set_ylabel("kW")
    ax.set_title(title)
    ax.legend(loc="upper right")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def feature_importance(importances: pd.Series, title: str, top: int = 25):
    fig, ax = plt.subplots(figsize=(7, 0.28 * min(top, len(importances)) + 1))
    imp = importances.head(top)[::-1]
    ax.barh(imp.index, imp.to_numpy())
    ax.set_xlabel("share of gain")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def metric_by(table: pd.DataFrame, metric: str, title: str):
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(table.index, table[metric], marker="o")
    ax.set_xlabel(table.index.name or "")
    ax.set_ylabel(metric)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def baseline_events(intervals: pd.DataFrame, timezone: str, title: str, max_events: int = 6):
    """Baselines against the metered load on the first ``max_events`` placebo events.

    ``intervals``: rows as ``pipelines.baseline_eval`` scores them (customer_id, event_no,
    method, timestamp, actual_kw, baseline_kw and optional baseline_p10_kw/p90_kw).
    """
    events = sorted(intervals["event_no"].unique())[:max_events]
    cols = min(3, len(events)) or 1
    rows = (len(events) + cols - 1) // cols or 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, no in zip(axes.ravel(), events, strict=False):
        ev = intervals[intervals["event_no"] == no]
        first = ev[ev["method"] == ev["method"].iloc[0]].sort_values("timestamp")
        t = pd.DatetimeIndex(first["timestamp"]).tz_convert(timezone)
        ax.plot(t, first["actual_kw"], color="black", lw=1.5, label="metered")
        for method, g in ev.groupby("method", sort=False):
            g = g.sort_values("timestamp")
            tm = pd.DatetimeIndex(g["timestamp"]).tz_convert(timezone)
            line = ax.plot(tm, g["baseline_kw"], lw=1, label=method)[0]
            if "baseline_p10_kw" in g and g["baseline_p10_kw"].notna().all():
                ax.fill_between(tm, g["baseline_p10_kw"], g["baseline_p90_kw"], alpha=0.15,
                                color=line.get_color())
        ax.set_title(f"{first['customer_id'].iloc[0]} {t[0]:%Y-%m-%d %H:%M}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_ylabel("kW", fontsize=8)
    for ax in axes.ravel()[len(events):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7, loc="best")
    fig.suptitle(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
