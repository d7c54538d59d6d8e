"""Explanations of forecasts: per-timestamp feature contributions and the run's summary plot.

``explain_core`` explains what ``inference.forecast.forecast_core`` forecasts: the same
checks (window, stale readings), the same quality-cleaned inputs (``forecasting.quality``)
and the same feature rows (``SiteForecaster.features``), then the median model's TreeSHAP
contributions (``models.explain``). Where the forecast is not one model run on one feature
row per timestamp, ``ExplanationUnavailableError`` says so: the flagged climatology
fallback answered, or a load window lies beyond the NWP or the longest lead (pooled
weather scenarios).

``contribution_figure`` is the SHAP-style summary (mean |contribution| per feature, and a
beeswarm-like scatter of every row's contribution coloured by the feature's value);
``log_contribution_plot`` logs it in the active MLflow training run as
``plots/feature_contributions.png``, computed with the registered (final) model on the
feature rows of the held-out day-ahead forecasts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.errors import DataError
from forecasting.features import build_features
from forecasting.portfolio import Portfolio, SiteData, as_utc
from forecasting.quality import assess
from inference.forecast import (
    ask,
    check_fresh,
    needs_fallback,
    target_index,
    weather_columns_of,
    write_forecast_csv,
)
from inference.registry import LoadedModel, ModelRegistry
from models.explain import feature_contributions, mean_abs_contributions, top_contributions
from pipelines.plots import plt

PLOT_ARTIFACT = "plots/feature_contributions.png"
PLOT_MAX_ROWS = 300  # held-out rows explained for the run's plot (TreeSHAP: ~4 ms a row
# at the default 150 rounds, one thread; drawn in every training run)


class ExplanationUnavailableError(DataError):
    """The forecast came from the climatology fallback, which has no features to explain."""


def explain_core(model: LoadedModel, data: SiteData, issue_time, start, end, top: int = 5
                 ) -> pd.DataFrame:
    """Top ``top`` contributions per timestamp of the champion's median forecast (long).

    Columns: ``site_id``, ``issue_time``, ``timestamp``, ``rank``, ``feature``,
    ``feature_value``, ``contribution_kw``, ``bias_kw``, ``raw_kw`` (see
    ``models.explain``: contributions of all features + bias = raw median, kW).
    """
    issue = as_utc(issue_time, "issue_time")
    targets = target_index(data.site, start, end)
    forecaster = model.forecaster
    uses_history = forecaster.spec_.uses_history
    if uses_history:
        check_fresh(data, issue)
    report = assess(data, issue, targets, weather_columns_of(data))
    flags = list(dict.fromkeys(report.flags))
    if needs_fallback(data.site.kind, flags, uses_history):
        raise ExplanationUnavailableError(
            f"site {data.site.site_id}: the forecast issued {issue.isoformat()} comes from the "
            f"climatology fallback ({', '.join(flags)}), not from model {model.label}: there "
            "are no feature contributions to report; fix the inputs the flags name")
    reach = pd.Timedelta(minutes=max(b[2] for b in forecaster.buckets_))
    if data.site.kind == "load" and ("missing_weather" in flags or targets[-1] - issue > reach):
        raise ExplanationUnavailableError(
            f"site {data.site.site_id}: the window {targets[0].isoformat()} .. "
            f"{targets[-1].isoformat()} lies beyond the weather forecast or the model's "
            f"longest lead ({reach}) at issue {issue.isoformat()}: that forecast pools runs "
            "over past years' weather (or climatology), not one row of features per "
            "timestamp; ask --explain for a window inside the NWP horizon")
    X = forecaster.features(report.data, issue, targets)
    out = top_contributions(feature_contributions(forecaster, X), X, top)
    out.insert(0, "issue_time", issue)
    out.insert(0, "site_id", data.site.site_id)
    return out


def explain_site(portfolio: Portfolio, kind: str, site_id: str, issue_time, start=None,
                 end=None, top: int = 5, registry: ModelRegistry | None = None, *,
                 horizon: str | None = None) -> pd.DataFrame:
    """``explain_core`` with the site's registered champion (``vpp forecast --explain``),
    for the request ``vpp forecast`` answers (``inference.forecast.ask``)."""
    q = ask(portfolio, site_id, issue_time, kind=kind, horizon=horizon, start=start, end=end)
    model = (registry or ModelRegistry()).champion(q.site.kind, site_id)
    return explain_core(model, portfolio.site_data(site_id), q.issue, q.start, q.end, top)


def write_explanation_csv(frame: pd.DataFrame, path, timezone: str) -> None:
    """The long frame as CSV, times in the site's zone with their offset (as the forecast)."""
    write_forecast_csv(frame, path, timezone)


def default_explain_path(out):
    """``forecast.csv`` -> ``forecast_explain.csv`` beside it."""
    from pathlib import Path

    out = Path(out)
    return out.with_name(f"{out.stem}_explain.csv")


# ------------------------------------------------------------------------- the run's plot
def contribution_figure(contributions: pd.DataFrame, X: pd.DataFrame, title: str,
                        top: int = 15, seed: int = 0):
    """Bar of mean |contribution| (kW) per feature beside a beeswarm-like scatter.

    The scatter has one dot per row and feature at its contribution (kW), spread
    vertically in proportion to how many rows lie near it (as SHAP's beeswarm), coloured
    by the feature's value as a percentile within the rows (blue low, red high, grey
    unknown at the issue). One scatter call for all features keeps it cheap: it is drawn
    in every training run.
    """
    order = mean_abs_contributions(contributions).head(top)
    names = list(order.index)[::-1]  # largest on top
    rng = np.random.default_rng(seed)
    xs, ys, colours = [], [], []
    for i, name in enumerate(names):
        c = contributions[name].to_numpy(dtype=float)
        v = X[name].to_numpy(dtype=float) if name in X else np.full(len(c), np.nan)
        known = ~np.isnan(v)
        colour = np.full(len(c), np.nan)
        if known.any():
            colour[known] = pd.Series(v[known]).rank(pct=True).to_numpy()
        xs.append(c)
        ys.append(i + _swarm_offsets(c, rng))
        colours.append(colour)
    x, y, colour = (np.concatenate(a) if a else np.zeros(0) for a in (xs, ys, colours))
    known = ~np.isnan(colour)
    fig, (bar, swarm) = plt.subplots(1, 2, figsize=(11, 0.3 * len(names) + 1.4), sharey=True,
                                     gridspec_kw={"width_ratios": [1, 2]})
    fig.subplots_adjust(left=0.2, right=0.97, bottom=0.6 / (0.3 * len(names) + 1.4) + 0.05,
                        top=1 - 0.5 / (0.3 * len(names) + 1.4), wspace=0.05)
    ypos = np.arange(len(names))
    bar.barh(ypos, order[names].to_numpy(), color="#1f77b4")
    bar.set_yticks(ypos, names, fontsize=8)
    bar.set_xlabel("mean |contribution| (kW)", fontsize=8)
    swarm.scatter(x[~known], y[~known], s=3, color="0.7", alpha=0.6, linewidths=0)
    points = swarm.scatter(x[known], y[known], s=3, c=colour[known], cmap="coolwarm", vmin=0,
                           vmax=1, alpha=0.7, linewidths=0)
    swarm.axvline(0.0, color="0.4", lw=0.8)
    swarm.set_xlabel("contribution to the median forecast (kW); colour: feature value, "
                     "blue low, red high, grey unknown", fontsize=8)
    fig.suptitle(title, fontsize=9)
    points.set_rasterized(True)
    return fig


def _swarm_offsets(values: np.ndarray, rng, width: float = 0.38, bins: int = 40
                   ) -> np.ndarray:
    """Vertical offsets within a row of the swarm, wider where dots are dense."""
    if len(values) == 0:
        return np.zeros(0)
    lo, hi = float(np.min(values)), float(np.max(values))
    if hi <= lo:
        return rng.uniform(-width, width, len(values))
    idx = np.minimum(((values - lo) / (hi - lo) * bins).astype(int), bins - 1)
    density = np.bincount(idx, minlength=bins)[idx] / len(values) * bins / 4
    return rng.uniform(-1, 1, len(values)) * width * np.minimum(density, 1.0)


def holdout_features(forecaster, forecasts: pd.DataFrame, data: SiteData,
                     max_rows: int = PLOT_MAX_ROWS, seed: int = 0) -> pd.DataFrame:
    """Feature rows of (at most ``max_rows`` random) held-out forecast rows (output format:
    ``timestamp``, ``issue_time``), built as the forecasts were (leak-free per row)."""
    rows = forecasts
    if len(rows) > max_rows:
        rows = rows.sample(max_rows, random_state=seed).sort_values("timestamp")
    return build_features(data, pd.DatetimeIndex(rows["timestamp"]),
                          pd.DatetimeIndex(rows["issue_time"]), forecaster.spec_)


def log_contribution_plot(forecaster, forecasts: pd.DataFrame, data: SiteData) -> None:
    """Log ``plots/feature_contributions.png`` in the active MLflow run (module doc)."""
    import mlflow

    X = holdout_features(forecaster, forecasts, data)
    contributions = feature_contributions(forecaster, X)
    site = data.site
    fig = contribution_figure(contributions, X, f"{site.kind} {site.site_id}: feature "
                              f"contributions to the median (TreeSHAP), {len(X)} held-out "
                              "day-ahead rows")
    mlflow.log_figure(fig, PLOT_ARTIFACT, save_kwargs={"dpi": 80})
    plt.close(fig)
