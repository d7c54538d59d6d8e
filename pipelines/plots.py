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
