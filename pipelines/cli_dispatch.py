"""``vpp dispatch``: split a dispatch instruction into allocations per customer and resource
(mounted into ``pipelines.cli``).

Reads a portfolio (resources.csv required; events.csv gives each customer's reliability
and the common-factor correlation of deliveries), plans with
``models.dispatch_plans.dispatch_plans`` (HiGHS MILP; ``models.dispatch.decompose``'s plan
when automatic) and prints the allocations by customer, the totals, P(effective) with the
correlation and independently, and the excluded resources with their reasons. Above the
approval threshold (or with a resource needing approval) it prints the three alternative
plans as a table, the recommended (lowest-cost) one in detail. Data errors end with exit
code 2 and a message that says what to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console

from forecasting.errors import DataError
from pipelines.cli_common import fail, help_text, parse_time, table

app = typer.Typer(help="Dispatch decomposition: allocations per customer and resource.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _group() -> None:
    """Dispatch decomposition (the ``dispatch`` command)."""


DataOpt = Annotated[Path, typer.Option(
    "--data", help="portfolio directory (DATA_FORMAT.md) with resources.csv; events.csv, if "
    "present, gives each customer's reliability", exists=True, file_okay=False)]
TargetOpt = Annotated[float, typer.Option(
    "--target-kw", help="requested load reduction (kW, mean over the window, > 0)")]
StartOpt = Annotated[str, typer.Option(
    "--start", help="window start, ISO 8601 with offset (2025-07-01T14:00:00+08:00)")]
EndOpt = Annotated[str, typer.Option("--end", help="window end (exclusive), ISO with offset")]
NoticeOpt = Annotated[str, typer.Option(
    "--notice-time", help="when the instruction arrives, ISO with offset, at or before --start")]
MarginOpt = Annotated[float, typer.Option(
    "--reserve-margin", help="plan expected delivery >= target x (1 + margin)")]
ApprovalOpt = Annotated[bool, typer.Option(
    "--allow-approval", help="also use resources with requires_approval (approval arranged)")]
EventTypeOpt = Annotated[str | None, typer.Option(
    "--event-type", help="events.csv event_type of the instruction (e.g. day_ahead, real_time)")]
RiskOpt = Annotated[float | None, typer.Option(
    "--risk-aversion-cny-per-kw", help="penalty per kW times its failure probability "
    "(default: the Instruction's, 30 CNY/kW)")]
ThresholdOpt = Annotated[float, typer.Option(
    "--approval-threshold-kw", help="a target above this (kW) gets three plans for a "
    "dispatcher to pick (semi-automatic), as does a plan using a resource needing approval")]
CorrelationOpt = Annotated[float | None, typer.Option(
    "--correlation", help="common-factor rho of deliveries (0..1; default: estimated from "
    "the settled events ended before the notice)")]
OutOpt = Annotated[Path | None, typer.Option(
    "--out", help="CSV of the allocations (one row per used resource and plan, column "
    "plan)")]


@app.command()
def dispatch(data: DataOpt, target_kw: TargetOpt, start: StartOpt, end: EndOpt,
             notice_time: NoticeOpt, reserve_margin: MarginOpt = 0.1,
             allow_approval: ApprovalOpt = False, event_type: EventTypeOpt = None,
             risk_aversion_cny_per_kw: RiskOpt = None,
             approval_threshold_kw: ThresholdOpt = 2000.0,
             correlation: CorrelationOpt = None, out: OutOpt = None) -> None:
    """Split a load-reduction instruction into allocations per customer and resource.

    Eligibility follows the response levels (I <= 5 min, II <= 15 min, III planned with >= 4 h
    notice), each resource's notice, response time and maximum duration, and approval. A
    MILP (HiGHS) picks the cheapest allocation, energy cost plus a risk penalty, whose
    expected delivery reaches target x (1 + margin). Reliability per customer comes from
    events.csv (events ended before the notice; Beta-shrunk to the portfolio rate); customers
    without history get a default, listed. P(achievement >= 80 %) is a Monte Carlo estimate
    with the common cause of deliveries (one-factor correlation estimated from the same
    events), printed beside the independent model's. A target above --approval-threshold-kw
    or a plan using a resource needing approval gets three plans (lowest cost, highest
    reliability, least production impact), each needing a dispatcher's approval.
    """
    from forecasting.portfolio import read_portfolio
    from forecasting.settlement import SettlementRule
    from models.correlation import estimate_correlation
    from models.dispatch import DispatchSolverError, Instruction, historical_reliability
    from models.dispatch_plans import contracted_capacity_kw, dispatch_plans

    try:
        fields = {"target_kw": target_kw, "start": parse_time(start, "--start"),
                  "end": parse_time(end, "--end"),
                  "notice_time": parse_time(notice_time, "--notice-time"),
                  "event_type": event_type, "reserve_margin": reserve_margin,
                  "allow_approval": allow_approval}
        if risk_aversion_cny_per_kw is not None:
            fields["risk_aversion_cny_per_kw"] = risk_aversion_cny_per_kw
        instruction = Instruction(**fields)
        portfolio = read_portfolio(data)
        if portfolio.resources.empty:
            raise DataError(f"{data}: no resources.csv; dispatch needs the controllable "
                            "resources (DATA_FORMAT.md)")
        rule = SettlementRule()
        reliability = historical_reliability(portfolio.events, rule,
                                             before=instruction.notice_time)
        if correlation is None:
            estimate = estimate_correlation(portfolio.events, rule,
                                            before=instruction.notice_time)
            rho, rho_note = estimate.rho, estimate.note
        else:
            rho, rho_note = correlation, "given by --correlation"
        answer = dispatch_plans(instruction, portfolio.resources, reliability, rule=rule,
                                approval_threshold_kw=approval_threshold_kw,
                                customer_capacity_kw=contracted_capacity_kw(
                                    portfolio.sites.values()),
                                correlation=rho)
        plan = answer.recommended.plan
    except (DataError, ValueError, OSError) as err:
        fail(err)
    except DispatchSolverError as err:  # not the data's fault: exit 1, as other failures
        err_console.print(f"[red]error:[/red] {err}", soft_wrap=True)
        raise typer.Exit(1) from err
    local = instruction.start.tzinfo
    by_customer = plan.by_customer[["customer_id", "resources", "allocated_kw", "expected_kw",
                                    "cost_cny"]]
    console.print(table(by_customer, f"allocations {instruction.start.isoformat()} to "
                         f"{instruction.end.astimezone(local).isoformat()}",
                         {"allocated_kw": ".1f", "expected_kw": ".1f", "cost_cny": ".0f"}))
    console.print(
        f"totals: target {plan.target_kw:.1f} kW, required expected "
        f"{plan.required_expected_kw:.1f} kW, planned expected {plan.planned_expected_kw:.1f} "
        f"kW, shortfall {plan.shortfall_kw:.1f} kW, P(achievement >= "
        f"{rule.min_achievement_ratio:.0%}) {plan.p_meets_threshold:.3f}, expected achievement "
        f"{plan.expected_achievement:.1%}, energy cost {plan.total_cost_cny:.0f} CNY, "
        f"{'feasible' if plan.feasible else 'NOT feasible'} ({plan.solver_status})",
        soft_wrap=True, markup=False)
    console.print(
        f"correlation rho {answer.correlation:.3f} ({rho_note}): P(achievement >= "
        f"{rule.min_achievement_ratio:.0%}) {plan.p_meets_threshold:.3f} with it, "
        f"{plan.p_meets_threshold_independent:.3f} if resources were independent",
        soft_wrap=True, markup=False)
    if answer.mode == "semi_automatic":
        console.print(f"semi-automatic: {'; '.join(answer.reasons)}; a dispatcher picks one "
                      "of the plans below (each approval_required); details above are "
                      "lowest_cost's", soft_wrap=True, markup=False)
        console.print(table(plans_frame(answer), "alternative plans (approval required)",
                            {"allocated_kw": ".1f", "expected_kw": ".1f", "cost_cny": ".0f",
                             "risk_adj_cny": ".0f"}))
        console.print("p_effective / p_indep: P(achievement >= threshold) with the "
                      "correlation / independently; achievement: its Monte Carlo mean; "
                      "total_share / max_share: sum / largest of the customers' "
                      "curtailed shares of their contracted capacity; risk_adj_cny: energy cost + risk penalty", soft_wrap=True,
                      markup=False)
    else:
        console.print("automatic: one plan, no approval required", markup=False)
    if len(plan.excluded):
        console.print(table(plan.excluded, f"excluded resources ({len(plan.excluded)})", {}))
    for note in plan.notes + answer.notes:
        console.print(f"note: {note}", soft_wrap=True, markup=False)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        frames = [one.plan.allocations.assign(plan=one.name) for one in answer.plans]
        (frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)).to_csv(
            out, index=False)
        console.print(f"wrote {out}", soft_wrap=True, markup=False)


def plans_frame(answer) -> pd.DataFrame:
    """One row per plan of a ``models.dispatch_plans.DispatchPlans``."""
    return pd.DataFrame([{
        "plan": one.name, "n_res": len(one.plan.allocations),
        "allocated_kw": float(one.plan.allocations["allocated_kw"].sum()),
        "expected_kw": one.plan.planned_expected_kw, "cost_cny": one.plan.total_cost_cny,
        "risk_adj_cny": one.risk_adjusted_cost_cny,
        "p_effective": one.plan.p_meets_threshold,
        "p_indep": one.plan.p_meets_threshold_independent,
        "achievement": one.plan.expected_achievement,
        "total_share": one.total_curtailed_share, "max_share": one.max_curtailed_share,
        "same_as": ", ".join(one.same_as)} for one in answer.plans])


dispatch.__doc__ = help_text(dispatch.__doc__)
