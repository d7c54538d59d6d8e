"""``vpp measure``, ``vpp baseline-eval`` and ``vpp baseline-train`` (mounted into
``pipelines.cli``).

``measure`` computes each customer's baseline for one event of a portfolio, the reduction,
the achievement and the settlement; ``baseline-eval`` runs the placebo evaluation of every
baseline method on a portfolio or on a public data set read in place from ../shared/data;
``baseline-train`` trains, logs and registers the ML baseline (MLflow).
Data errors end with exit code 2 and a message that says what to fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from forecasting.errors import DataError, ModelNotFoundError
from pipelines.cli_common import fail, help_text, table

app = typer.Typer(help="Customer baselines and demand-response measurement.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True)
DATASETS = ("citylearn_2022", "eemeter")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def _reporter(progress: Progress):
    tasks: dict[str, int] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    return report


DataOpt = Annotated[Path, typer.Option(
    "--data", help="portfolio directory (DATA_FORMAT.md) with events.csv", exists=True,
    file_okay=False)]
EventOpt = Annotated[str, typer.Option("--event", help="event_id in events.csv")]
MethodOpt = Annotated[str, typer.Option(
    "--method", help="similar_days | x_of_y | pre_event | ml | auto (per customer, the lowest "
    "CV(RMSE) on placebo days before the event)")]
MeasureOutOpt = Annotated[Path | None, typer.Option(
    "--out", help="CSV of every customer's intervals (baseline, actual, reduction, "
    "achievement); the per-customer results go next to it as <name>_customers.csv")]
RuleOpt = Annotated[Path | None, typer.Option(
    "--rule", help='JSON of a SettlementRule (e.g. {"min_achievement_ratio": 0.8, '
    '"max_paid_achievement_ratio": 1.2}); default: the default rule')]
EmissionFactorOpt = Annotated[float | None, typer.Option(
    "--emission-factor", help="grid emission factor, kg CO2/kWh (0 < f <= 2), for every "
    "interval; default: the portfolio's emission_factors.csv, then --grid-region, then the "
    "MEE/NBS 2023 national average 0.5306")]
GridRegionOpt = Annotated[str | None, typer.Option(
    "--grid-region", help="grid region (east_china, north_china, ...) or province (jiangsu, "
    "...) whose MEE/NBS 2023 average factor replaces the national one")]


@app.command()
def measure(data: DataOpt, event: EventOpt, method: MethodOpt = "auto",
            out: MeasureOutOpt = None, rule: RuleOpt = None,
            emission_factor: EmissionFactorOpt = None,
            grid_region: GridRegionOpt = None) -> None:
    """Measure one demand-response event: baseline, reduction, achievement, settlement and
    the emissions it avoided.

    Each customer's baseline uses only readings before the event start (day-of adjustments:
    before the notice). A response counts when achievement = mean reduction / target reaches
    the rule's threshold (default 80 %); paid achievement is capped (default 120 %). Valley
    filling (negative targets): an increase of load is a positive response. Avoided CO2 =
    reduced kWh (intervals below the baseline) x the grid emission factor; energy drawn above
    the baseline (valley filling, rebound) counts as added CO2, and the net is shown.
    """
    from forecasting.portfolio import read_portfolio
    from forecasting.settlement import SettlementRule
    from inference.measurement import (
        METHOD_CHOICES,
        measure_event,
        portfolio_emission_factors,
    )

    if method not in METHOD_CHOICES:
        fail(ValueError(f"unknown --method {method!r}, expected one of "
                         f"{', '.join(METHOD_CHOICES)}"))
    try:
        settlement_rule = (SettlementRule.model_validate_json(rule.read_text()) if rule
                           else SettlementRule())
        portfolio = read_portfolio(data)
        factors = portfolio_emission_factors(portfolio, grid_region, emission_factor)
        with _progress() as progress:
            result = measure_event(portfolio, event, method, settlement_rule,
                                   progress=_reporter(progress), emission_factors=factors)
    except (DataError, ModelNotFoundError, ValueError, OSError) as err:
        fail(err)
    cols = {"customer_id": "customer", "method": "method", "target_kw": "target kW",
            "baseline_kw": "baseline kW", "actual_kw": "actual kW",
            "reduction_kw": "reduction kW", "achievement": "achieved", "counts": "counts",
            "paid_response_kw": "paid kW", "reduced_kwh": "reduced kWh",
            "net_avoided_co2_kg": "net CO2 avoided kg"}
    if "operator_actual_kw" in result.customers:
        cols["operator_actual_kw"] = "operator kW"
    shown = result.customers[list(cols)].rename(columns=cols)
    console.print(table(shown, f"event {event} (rule {result.rule.name})",
                         {"achieved": ".1%", "target kW": ".0f", "baseline kW": ".0f",
                          "actual kW": ".0f", "reduction kW": ".0f", "paid kW": ".0f",
                          "operator kW": ".0f", "reduced kWh": ".1f",
                          "net CO2 avoided kg": ".1f"}))
    total = result.portfolio
    console.print(f"portfolio: target {total['target_kw']:.1f} kW, reduction "
                  f"{total['reduction_kw']:.1f} kW, achievement {total['achievement']:.1%}, "
                  f"{total['n_counting']} of {total['n_customers']} customers count")
    factor = result.customers["emission_factor_kg_per_kwh"].mean()
    console.print(f"emissions: {total['reduced_kwh']:.1f} kWh reduced -> "
                  f"{total['avoided_co2_kg']:.1f} kg CO2 avoided; {total['increased_kwh']:.1f}"
                  f" kWh above the baseline -> {total['added_co2_kg']:.1f} kg added; net "
                  f"{total['net_avoided_co2_kg']:.1f} kg (factor {factor:.4f} kg CO2/kWh: "
                  f"{total['emission_factor_source']})")
    for cid, reason in result.failures.items():
        console.print(f"[yellow]{cid} not measured:[/yellow] {reason}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        result.intervals.to_csv(out, index=False)
        result.customers.to_csv(out.with_name(out.stem + "_customers.csv"), index=False)
        console.print(f"wrote {out} and {out.with_name(out.stem + '_customers.csv')}")


def eval_datasets(data: Path | None, dataset: str | None, limit: int | None = None):
    """The ``EvalDataset`` list for ``--data`` or ``--dataset``."""
    from inference.baseline_data import dataset_from_portfolio

    if (data is None) == (dataset is None):
        raise DataError("give exactly one of --data DIR or --dataset "
                        f"{'|'.join(DATASETS)}")
    if data is not None:
        from forecasting.portfolio import read_portfolio

        portfolio = read_portfolio(data)
        found = dataset_from_portfolio(portfolio, name=data.name)
        if limit:
            found.loads = dict(list(found.loads.items())[:limit])
        return [found]
    if dataset == "citylearn_2022":
        from pipelines.datasets import citylearn as mod

        buildings = list(range(1, (limit or 17) + 1))
        return [mod.load_dataset(buildings=buildings)]
    if dataset == "eemeter":
        from pipelines.datasets import eemeter

        return eemeter.placebo_datasets()
    raise DataError(f"unknown --dataset {dataset!r}, expected one of {', '.join(DATASETS)}")


EvalDataOpt = Annotated[Path | None, typer.Option(
    "--data", help="portfolio directory (its real events are skipped; placebo events go on "
    "other days)", exists=True, file_okay=False)]
DatasetOpt = Annotated[str | None, typer.Option(
    "--dataset", help="public data set read in place from ../shared/data ($VPP_SHARED_DATA): "
    "citylearn_2022 | eemeter")]
EventsOpt = Annotated[int, typer.Option("--events", help="placebo events per customer")]
EvalDaysOpt = Annotated[int, typer.Option(
    "--eval-days", help="placebo events fall in the last N days of the data")]
MethodsOpt = Annotated[str | None, typer.Option(
    "--methods", help="comma-separated subset of similar_days,similar_days_high4of5,x_of_y,"
    "x_of_y_additive,pre_event,ml,ml_adjusted (default: all)")]
CustomersOpt = Annotated[int | None, typer.Option(
    "--customers", help="use only the first N customers")]
SeedOpt = Annotated[int, typer.Option("--seed", help="seed of the placebo draw")]
EvalOutOpt = Annotated[Path | None, typer.Option(
    "--out", help="CSV of the summary (one row per data set and method)")]


@app.command("baseline-eval")
def baseline_eval(data: EvalDataOpt = None, dataset: DatasetOpt = None, events: EventsOpt = 20,
                  eval_days: EvalDaysOpt = 120, methods: MethodsOpt = None,
                  customers: CustomersOpt = None, seed: SeedOpt = 0, out: EvalOutOpt = None
                  ) -> None:
    """Placebo evaluation of every baseline method (CV(RMSE), NMBE, reduction error).

    Placebo events are drawn like real peak events (2-4 h starting 13:00-19:00 local on
    working days without an event, notice 1-4 h ahead); nobody responded there, so the
    metered load is the truth. Each baseline sees only data from before each event (the ML
    model is refitted every 30 days on earlier data). A known reduction (15 % of the load)
    is injected to score the estimated reduction.
    """
    from pipelines.baseline_eval import ALL_METHODS, PlaceboConfig, evaluate_core, ml_target_check

    chosen = tuple(m.strip() for m in methods.split(",")) if methods else ALL_METHODS
    try:
        config = PlaceboConfig(n_events_per_customer=events, eval_days=eval_days, seed=seed)
        sets = eval_datasets(data, dataset, customers)
        summaries = []
        for ds in sets:
            with _progress() as progress:
                result = evaluate_core(ds, config, chosen, progress=_reporter(progress))
            summary = result.summary.assign(dataset=ds.name)
            summaries.append(summary)
            console.print(table(result.summary, f"{ds.name}: placebo evaluation "
                                 f"({len(result.events)} events)"))
            if "ml" in result.summary.index and any(m in result.summary.index
                                                    for m in ("similar_days", "x_of_y")):
                console.print(json.dumps(ml_target_check(result.summary), indent=None))
    except (DataError, ValueError, OSError) as err:
        fail(err)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.concat(summaries).to_csv(out)
        console.print(f"wrote {out}")


CustomerListOpt = Annotated[str | None, typer.Option(
    "--customers", help="comma-separated customer ids (default: every customer, pooled)")]
TrainEndOpt = Annotated[str | None, typer.Option(
    "--train-end", help="end of the data used, ISO with offset (default: the last reading)")]
HoldoutOpt = Annotated[int, typer.Option(
    "--holdout-days", help="held-out days before the end, scored with placebo events")]


SkipTrainedOpt = Annotated[bool, typer.Option(
    "--skip-trained", help="do nothing when the model to train already has a champion")]


@app.command("baseline-train")
def baseline_train(data: DataOpt, customers: CustomerListOpt = None,
                   train_end: TrainEndOpt = None, holdout_days: HoldoutOpt = 30,
                   skip_trained: SkipTrainedOpt = False) -> None:
    """Train the ML baseline, log it to MLflow (experiment vpp-baseline) and register it.

    One customer is registered as baseline-<customer_id>, several as baseline-pooled. A
    fit made before the held-out days is scored there on placebo events (next to the
    similar-days and X-of-Y baselines); the same configuration is then refitted on all
    readings before the train end, and that model is registered: champion when there is
    none or when the held-out CV(RMSE) beats the champion's on the same events, else
    challenger.
    """
    from forecasting.portfolio import read_portfolio
    from inference.baseline_data import dataset_from_portfolio
    from pipelines.baselines import (
        BaselineTrainingConfig,
        registered_baseline_name,
        train_baselines,
    )
    from pipelines.tracking import TrackingUnavailableError, existing_champion

    ids = [c.strip() for c in customers.split(",")] if customers else None
    try:
        portfolio = read_portfolio(data)
        if skip_trained:
            name = registered_baseline_name(sorted(dataset_from_portfolio(portfolio,
                                                                          ids).loads))
            if version := existing_champion(name):
                console.print(f"{name} has a champion (v{version}); skipped (--skip-trained)")
                return
        config = BaselineTrainingConfig(holdout_days=holdout_days)
        with console.status("training the ML baseline"):
            decision = train_baselines(portfolio, ids, config, train_end)
    except (DataError, ValueError, OSError, TrackingUnavailableError) as err:
        fail(err)
    m = decision["metrics"]
    console.print(f"{decision['name']} v{decision['version']} -> {decision['alias']} "
                  f"({decision['reason']}); held-out CV(RMSE) {m['cvrmse']:.3f}, NMBE "
                  f"{m['nmbe']:+.2%}; rules: " + ", ".join(
                      f"{k} {v['cvrmse']:.3f}" for k, v in decision["rule_metrics"].items()))
    scored, final = decision["scoring_fit_window"], decision["final_fit_window"]
    stamp = "%Y-%m-%d %H:%M"
    console.print(f"scored: a fit on readings to {scored[1]:{stamp}} UTC; registered: "
                  f"refitted on readings {final[0]:{stamp}} .. {final[1]:{stamp}} UTC")


measure.__doc__ = help_text(measure.__doc__)
baseline_train.__doc__ = help_text(baseline_train.__doc__)
baseline_eval.__doc__ = help_text(baseline_eval.__doc__)
