"""``vpp capability``: capability metrics of measured events (mounted into ``pipelines.cli``).

Regulation capacity, response time, ramp rate and adjustment accuracy per customer and for
the VPP, with pass/fail and the margin to each threshold (``models.capability``), from the
1-minute ``event_readings`` where the portfolio has them, else the 15-minute measurements
(``inference.capability``). Data errors end with exit code 2 and what to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from forecasting.errors import DataError
from pipelines.cli_common import fail, help_text, parse_time

app = typer.Typer(help="Capability metrics of demand-response events.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()


@app.callback()
def _group() -> None:
    """Capability metrics (the ``capability`` command)."""


def _opt(help: str, *names: str):
    return typer.Option(*names, help=help)


def _cell(value, fmt: str) -> str:
    return "" if value is None or pd.isna(value) else format(value, fmt)


def _verdict(row: pd.Series, name: str, fmt: str) -> str:
    passed, margin = row.get(f"{name}_pass"), row.get(f"{name}_margin")
    if passed is None or (isinstance(passed, float) and pd.isna(passed)):
        return ""
    mark = "[green]pass[/green]" if passed else "[red]FAIL[/red]"
    return f"{mark} {'' if margin is None or pd.isna(margin) else format(margin, '+' + fmt)}"


def report_table(rows: pd.DataFrame, event_id: str, thresholds) -> Table:
    """One event's rows (customers, then the VPP) with pass/fail and margins."""
    first = rows.iloc[0]
    start = pd.Timestamp(first["start"]).strftime("%Y-%m-%d %H:%M")
    title = (f"event {event_id} ({first['event_type']}, {start} UTC, "
             f"{first['duration_minutes']:g} min): level {thresholds.level}, "
             f"response <= {thresholds.max_response_minutes:g} min to "
             f"{thresholds.response_share:.0%}, accuracy >= {thresholds.min_accuracy:.0%}")
    out = Table(title=title)
    heads = ["customer", "readings", "target kW", "capacity kW", "response min",
             "ramp kW/min", "accuracy", "sustained min", "response", "accuracy ok",
             "sustain", *(["capacity"] if "capacity_pass" in rows else []), "test"]
    for h in heads:
        out.add_column(h, justify="right")
    for _, r in rows.iterrows():
        cells = [str(r["customer_id"]),
                 f"{r['width_minutes']:g} min" + (" (15-min meter)" if r["source"] ==
                                                  "measurements" else ""),
                 _cell(r["target_kw"], ".0f"), _cell(r["regulation_capacity_kw"], ".0f"),
                 _cell(r["response_time_minutes"], "g"), _cell(r["ramp_rate_kw_per_min"], ".1f"),
                 _cell(r["accuracy"], ".1%"),
                 f"{r['sustained_minutes']:g} / {r['required_sustain_minutes']:g}",
                 _verdict(r, "response_time", "g"), _verdict(r, "accuracy", ".2f"),
                 _verdict(r, "sustain", "g")]
        if "capacity_pass" in rows:
            cells.append(_verdict(r, "capacity", ".0f"))
        cells.append("[green]PASS[/green]" if r["passed"] else "[red]FAIL[/red]")
        out.add_row(*cells)
    return out


@app.command(help=help_text("""Capability metrics of measured events, as provincial VPP rules
test them: regulation capacity (the highest mean reduction held over the sustain window),
response time (event start to the first reading at the response share of the target),
ramp rate (kW/min between 10 % and that share), adjustment accuracy (1 - mean |reduction -
target| / target once the allowed response time has passed) and the longest sustained
run at the sustain share, per customer and for the VPP, with pass/fail and the margin to
each threshold.

Baselines are the project's rule baselines (as vpp measure settles); 1-minute readings
(event_readings table) take the baseline of their 15-minute interval. Without them the
15-minute measurements serve and response time has 15-minute granularity (said in the
table and the notes). Without --event or --since: the latest event."""))
def capability(
    data: Annotated[Path, typer.Option("--data", help="portfolio directory with events.csv "
                                       "(and optionally event_readings)", exists=True,
                                       file_okay=False)],
    event: Annotated[list[str] | None, _opt("event id (repeat for several)", "--event")] = None,
    customer: Annotated[str | None, _opt("only this customer's rows (no VPP row)",
                                         "--customer")] = None,
    since: Annotated[str | None, _opt("events starting at or after this ISO time with offset",
                                      "--since")] = None,
    until: Annotated[str | None, _opt("events starting before this ISO time", "--until")] = None,
    method: Annotated[str, _opt("baseline: similar_days, x_of_y, pre_event or auto (the best "
                                "rule on placebo days)", "--method")] = "similar_days",
    level: Annotated[str, _opt("response level tested: I (<= 5 min) or II (<= 15 min)",
                               "--level")] = "II",
    max_response_minutes: Annotated[float | None, _opt(
        "allowed response time, minutes (default: the level's)", "--max-response-minutes")
    ] = None,
    min_accuracy: Annotated[float | None, _opt("required adjustment accuracy, 0..1 (0.8)",
                                               "--min-accuracy")] = None,
    min_sustain_minutes: Annotated[float | None, _opt(
        "required sustained minutes (default: event length - allowed response time)",
        "--min-sustain-minutes")] = None,
    response_share: Annotated[float | None, _opt("share of the target that counts as "
                                                 "responded (0.9)", "--response-share")] = None,
    sustain_share: Annotated[float | None, _opt("share of the target that counts as held "
                                                "(0.8)", "--sustain-share")] = None,
    sustain_window_minutes: Annotated[float | None, _opt(
        "window of the regulation capacity, minutes (default: the hold period)",
        "--sustain-window-minutes")] = None,
    min_capacity_kw: Annotated[float | None, _opt("required regulation capacity, kW "
                                                  "(default: not judged)",
                                                  "--min-capacity-kw")] = None,
    out: Annotated[Path | None, _opt("CSV to write (every metric, check and margin)",
                                     "--out")] = None,
) -> None:
    from forecasting.portfolio import read_portfolio
    from inference.capability import capability_core
    from models.capability import CapabilityThresholds

    try:
        thresholds = CapabilityThresholds.for_level(level).with_changes(
            max_response_minutes=max_response_minutes, min_accuracy=min_accuracy,
            min_sustain_minutes=min_sustain_minutes, response_share=response_share,
            sustain_share=sustain_share, sustain_window_minutes=sustain_window_minutes,
            min_capacity_kw=min_capacity_kw)
        s = parse_time(since, "--since") if since else None
        u = parse_time(until, "--until") if until else None
        portfolio = read_portfolio(data)
        report = capability_core(portfolio, event_ids=event or None,
                                 customers=[customer] if customer else None, since=s, until=u,
                                 method=method, thresholds=thresholds)
    except (DataError, ValueError, OSError) as err:
        fail(err)
    for event_id, rows in report.rows.groupby("event_id", sort=False):
        console.print(report_table(rows, str(event_id), thresholds))
    for note in report.notes:
        console.print(f"note: {note}", soft_wrap=True, markup=False)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        report.rows.to_csv(out, index=False, float_format="%.4f")
        console.print(f"wrote {out}", soft_wrap=True, markup=False)
