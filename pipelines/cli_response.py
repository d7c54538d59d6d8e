"""``vpp response-train`` and ``vpp response-predict`` (mounted into ``pipelines.cli``).

``response-train`` fits the response-likelihood model (will a customer deliver at least the
settlement threshold of its commitment?) on the earlier events, scores it on the latest
25 % of the events beside the portfolio base rate and the per-customer historical rate,
refits it on every settled event, logs both to MLflow (experiment ``vpp-response``) and
registers the refitted model as ``response-likelihood``.
``response-predict`` answers p_deliver and the expected achievement per customer for an
event of the portfolio or a planned one, with what was known at its notice time.
Data errors end with exit code 2 and a message that says what to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from forecasting.errors import DataError, ModelNotFoundError
from pipelines.cli_common import fail, help_text, table

app = typer.Typer(help="Response likelihood of demand-response customers.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True)


def _rule(path: Path | None):
    from forecasting.settlement import SettlementRule

    return SettlementRule.model_validate_json(path.read_text()) if path else SettlementRule()


DataOpt = Annotated[Path, typer.Option(
    "--data", help="portfolio directory (DATA_FORMAT.md) with events.csv (settled actual_kw) "
    "and, ideally, resources.csv", exists=True, file_okay=False)]
RuleOpt = Annotated[Path | None, typer.Option(
    "--rule", help='JSON of a SettlementRule (e.g. {"min_achievement_ratio": 0.8, '
    '"max_paid_achievement_ratio": 1.2}); default: the default rule (80 %, cap 120 %)')]
TestFractionOpt = Annotated[float, typer.Option(
    "--test-fraction", help="latest share of the events (by start) held out for scoring")]
TruthOpt = Annotated[Path | None, typer.Option(
    "--truth", help="evaluation only, synthetic data: the generator's truth file "
    "(truth/response_truth.csv of a sample portfolio); scores p_deliver against the true "
    "probability too; never used to fit", exists=True, dir_okay=False)]
SkipOpt = Annotated[bool, typer.Option(
    "--skip-trained", help="do nothing when response-likelihood already has a champion")]


@app.command("response-train")
def response_train(data: DataOpt, rule: RuleOpt = None, test_fraction: TestFractionOpt = 0.25,
                   truth: TruthOpt = None, skip_trained: SkipOpt = False) -> None:
    """Train the response-likelihood model, log it to MLflow (vpp-response), register it.

    A calibrated LightGBM classifier of delivered = achievement >= the rule's threshold and
    a regressor of the expected achievement, fitted on the earlier events and scored on the
    latest ones (Brier, log loss, ROC AUC, ECE, MAE of achievement) beside the portfolio
    base rate and each customer's Beta-shrunk historical rate. The same configuration is
    then refitted on every settled event, and that model is registered as
    response-likelihood: champion when there is none or when the held-out Brier score beats
    the champion's on the same events, else challenger. Where resources are settled
    separately (resource_events.csv) a resource-level model is fitted and scored the same
    way and registered with it. With --truth (synthetic sample data only) the held-out
    probabilities are also scored against the generator's true probabilities.
    """
    from forecasting.portfolio import read_portfolio
    from pipelines.response import (
        REGISTERED_NAME,
        ResponseTrainingConfig,
        metrics_table,
        train_response,
    )
    from pipelines.tracking import TrackingUnavailableError, existing_champion

    try:
        if skip_trained and (version := existing_champion(REGISTERED_NAME)):
            console.print(f"{REGISTERED_NAME} has a champion (v{version}); skipped "
                          "(--skip-trained)")
            return
        settlement_rule = _rule(rule)
        config = ResponseTrainingConfig(test_fraction=test_fraction)
        true_p = None
        if truth is not None:
            import pandas as pd

            true_p = pd.read_csv(truth, dtype={"event_id": str, "customer_id": str,
                                               "resource_id": str}, keep_default_na=False,
                                 na_values=[""])
        with console.status("training the response-likelihood model"):
            result, decision = train_response(read_portfolio(data), settlement_rule, config,
                                              truth=true_p)
    except (DataError, ValueError, OSError, TrackingUnavailableError) as err:
        fail(err)
    metrics = _shown(metrics_table(result.metrics))
    console.print(table(metrics, f"held-out: {result.n_test_rows} rows of "
                         f"{result.n_test_events} events from {result.test_start:%Y-%m-%d} "
                         f"(scored fit: {result.n_train_rows} rows; calibration "
                         f"{result.scoring_model.calibration_})"))
    console.print("skill: Brier skill over historical_rate; ece: 10 equal-width bins of p; "
                  "ece_truth/mae_truth: against the true probability (--truth)")
    if result.resources is not None and result.resources.metrics:
        console.print(table(_shown(metrics_table(result.resources.metrics)),
                            f"per resource, held-out: {len(result.resources.predictions)} "
                            f"resource rows; answers: {result.resources.method}"))
    first, last = result.model.training_window_
    console.print(f"registered: refitted on {result.n_final_rows} rows of "
                  f"{result.n_final_events} settled events starting {first:%Y-%m-%d} .. "
                  f"{last:%Y-%m-%d} (calibration {result.model.calibration_})")
    console.print(f"{decision['name']} v{decision['version']} -> {decision['alias']} "
                  f"({decision['reason']})")


def _shown(metrics):
    """The printed columns (ECE: 10 equal-width bins; brier_skill over historical_rate; the
    log loss is in the MLflow run)."""
    cols = [c for c in ("brier", "brier_skill", "roc_auc", "ece", "ece_vs_truth",
                        "mae_vs_truth", "mae_achievement", "n") if c in metrics]
    out = metrics[cols].copy()
    out["n"] = out["n"].astype(int)
    return out.rename(columns={"brier_skill": "skill", "mae_achievement": "mae_ach",
                               "ece_vs_truth": "ece_truth", "mae_vs_truth": "mae_truth"})


EventOpt = Annotated[str | None, typer.Option(
    "--event", help="event_id in events.csv (its customers and target_kw)")]
CustomersOpt = Annotated[str | None, typer.Option(
    "--customers", help="instead of --event: comma-separated customer ids of a planned event")]
TimeOpt = Annotated[str | None, typer.Option(help="ISO time with offset "
                                             "(e.g. 2025-07-01T14:00:00+08:00)")]
TargetOpt = Annotated[str | None, typer.Option(
    "--target-kw", help="committed change in kW, one value or one per customer "
    "(comma-separated; reduction positive, valley filling negative)")]
EventTypeOpt = Annotated[str, typer.Option(
    "--event-type", help="type of the planned event: annual, day_ahead, real_time, peak, "
    "reserve, peak_shaving or valley_filling")]


@app.command("response-predict")
def response_predict(data: DataOpt, event: EventOpt = None, customers: CustomersOpt = None,
                     start: TimeOpt = None, end: TimeOpt = None, notice_time: TimeOpt = None,
                     target_kw: TargetOpt = None, event_type: EventTypeOpt = "day_ahead",
                     rule: RuleOpt = None) -> None:
    """Probability that each customer delivers, and its expected achievement.

    For --event ID (an event of events.csv) or a planned event (--customers, --start,
    --end, --notice-time, --target-kw, --event-type). Only what was known at the notice
    time is used: the customers' earlier settled events, resources and metered load. Uses
    the champion of response-likelihood; without one, the Beta-shrunk historical rate (a
    note says so).
    """
    from forecasting.portfolio import read_portfolio
    from pipelines.response import (
        hypothetical_event,
        load_champion,
        predict_resources,
        predict_rows,
        response_data,
    )
    from pipelines.tracking import TrackingUnavailableError

    planned = [customers, start, end, notice_time, target_kw]
    if (event is None) == (customers is None):
        fail(DataError("give exactly one of --event ID or --customers IDS (with --start, "
                        "--end, --notice-time, --target-kw)"))
    if customers is not None and any(v is None for v in planned):
        fail(DataError("a planned event needs --customers, --start, --end, --notice-time "
                        "and --target-kw"))
    try:
        settlement_rule = _rule(rule)
        source = response_data(read_portfolio(data))
        if event is not None:
            rows = source.events[source.events["event_id"].astype(str) == event]
            if rows.empty:
                known = sorted(source.events["event_id"].astype(str).unique())
                raise DataError(f"unknown event {event!r} in {data}/events.csv; known: "
                                f"{', '.join(known[:10])}{' ...' if len(known) > 10 else ''}")
        else:
            targets = [float(v) for v in target_kw.split(",")]
            rows = hypothetical_event([c.strip() for c in customers.split(",")], start, end,
                                      notice_time, targets, event_type)
            unknown = sorted(set(rows["customer_id"]) - set(source.loads_kw)
                             - set(source.events["customer_id"].astype(str)))
            if unknown:
                raise DataError(f"unknown customer(s) {', '.join(unknown)}; see the "
                                "customer_id column of sites.csv")
        try:
            champion = load_champion()
        except ModelNotFoundError as err:
            console.print(f"[yellow]note:[/yellow] {err}; answering with the historical "
                          "rate (each customer's delivered share, Beta-shrunk to the "
                          "portfolio's)")
            champion = None
        result = predict_rows(source, rows, settlement_rule, champion)
        per_resource = predict_resources(source, rows, result, settlement_rule, champion)
    except (DataError, ValueError, OSError, TrackingUnavailableError) as err:
        fail(err)
    shown = result.reset_index()
    if "actual_kw" in rows and rows["actual_kw"].notna().any():
        actual = rows.set_index(rows["customer_id"].astype(str))
        shown["settled_achievement"] = shown["customer_id"].map(
            actual["actual_kw"] / actual["target_kw"])
    title = (f"event {event}" if event else f"planned {event_type} event "
             f"{start} .. {end} (notice {notice_time})")
    console.print(table(shown.set_index("customer_id").drop(columns=["event_id", "source"]),
                         f"{title}; threshold {settlement_rule.min_achievement_ratio:.0%}",
                         {"p_deliver": ".1%", "expected_achievement": ".1%",
                          "settled_achievement": ".1%"}))
    console.print(f"model: {result['source'].iloc[0]}")
    if not per_resource.empty:
        shown = per_resource.set_index("resource_id")[
            ["customer_id", "target_kw", "p_deliver", "expected_achievement", "level"]]
        console.print(table(shown, "per resource (level: which answered; resource share of "
                            "target_kw by capacity)",
                            {"p_deliver": ".1%", "expected_achievement": ".1%"}))
        answered = per_resource.loc[per_resource["level"] == "resource", "source"].unique()
        if len(answered):
            console.print(f"resource level: {', '.join(answered)}")
        reasons = per_resource.dropna(subset=["fallback_reason"])
        for reason, group in reasons.groupby("fallback_reason", sort=False):
            console.print(f"customer level for {', '.join(group['resource_id'])}: {reason}")


response_train.__doc__ = help_text(response_train.__doc__)
response_predict.__doc__ = help_text(response_predict.__doc__)
