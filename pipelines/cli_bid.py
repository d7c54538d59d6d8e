"""``vpp capacity`` and ``vpp bid``: bidding decision support (mounted into ``pipelines.cli``).

``capacity``: the flexible capacity per customer and response level for a window
(``models.capacity``), each customer capped by its load forecast. ``bid``: the largest offer
(MW) whose P(portfolio achievement >= the settlement threshold) reaches a confidence, with
its expected compensation and penalty and the offer curve (``models.bidding``), under the
common-factor correlation of deliveries estimated from events.csv (``models.correlation``),
beside the independent model.

The portfolio and registry I/O (``load_quantiles``, ``portfolio_capacity``, ``portfolio_bid``)
is in ``inference.bidding``, shared with the service's handlers (``serving.bid_api``).

Data errors end with exit code 2 and a message that says what to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from forecasting.errors import DataError
from inference.bidding import PortfolioBid, portfolio_bid, portfolio_capacity
from pipelines.cli_common import fail, help_text, parse_time, table

app = typer.Typer(help="Bidding decision support: available capacity and bid advice.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()


@app.callback()
def _group() -> None:
    """Bidding decision support (the ``capacity`` and ``bid`` commands)."""


DataOpt = Annotated[Path, typer.Option(
    "--data", help="portfolio directory (DATA_FORMAT.md) with sites.csv (customer_id of the "
    "load sites), measurements and resources.csv; events.csv gives reliability and the "
    "correlation", exists=True, file_okay=False)]
StartOpt = Annotated[str, typer.Option(
    "--start", help="window start, ISO 8601 with offset, on the 15-minute grid "
    "(2025-07-01T14:00:00+08:00)")]
EndOpt = Annotated[str, typer.Option("--end", help="window end (exclusive), ISO with offset")]
NoticeOpt = Annotated[str, typer.Option(
    "--notice-time", help="when the event is notified (the forecasts are issued then), ISO "
    "with offset, at or before --start")]
CustomersOpt = Annotated[str | None, typer.Option(
    "--customers", help="comma-separated customer_ids (default: every customer with "
    "resources)")]
ApprovalOpt = Annotated[bool, typer.Option(
    "--allow-approval", help="count resources with requires_approval (approval arranged)")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="CSV to write")]


def _customers(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def _times(start: str, end: str, notice_time: str):
    return (parse_time(start, "--start"), parse_time(end, "--end"),
            parse_time(notice_time, "--notice-time"))


@app.command()
def capacity(data: DataOpt, start: StartOpt, end: EndOpt, notice_time: NoticeOpt,
             customers: CustomersOpt = None, allow_approval: ApprovalOpt = False,
             out: OutOpt = None) -> None:
    """Flexible capacity per customer and response level (I/II/III) for a window, P10/P50/P90.

    Eligible resources (level, notice, response time, maximum duration, approval) of each
    customer, capped by the load it would draw: its load forecast issued at the notice time
    by the registered champions of its load sites, or, without a champion, its similar-days
    baseline on the readings before the notice (the source column says which). Levels share
    the load fastest first (I, then II, then III), so they add up to the customer's total;
    P10 is the capacity at the load's P10 (the pessimistic one). kW are means over the
    window.
    """
    from forecasting.portfolio import read_portfolio
    from pipelines.tracking import TrackingUnavailableError

    try:
        s, e, n = _times(start, end, notice_time)
        portfolio = read_portfolio(data)
        result = portfolio_capacity(portfolio, s, e, n, _customers(customers), allow_approval)
    except (DataError, ValueError, OSError) as err:
        fail(err)
    except TrackingUnavailableError as err:
        console.print(f"[red]error:[/red] {err}", soft_wrap=True)
        raise typer.Exit(1) from err
    fmt = {c: ".1f" for c in ("resources_kw", "p10_kw", "p50_kw", "p90_kw", "load_p10_kw",
                              "load_p50_kw", "load_p90_kw")}
    local = s.tzinfo
    shown = result.by_customer[["customer_id", "level", "n_resources", "resources_kw",
                                "p10_kw", "p50_kw", "p90_kw", "load_p50_kw"]]
    console.print(table(shown, f"available capacity (kW, mean over {s.isoformat()} to "
                        f"{e.tz_convert(local).isoformat()}, notice {n.isoformat()})", fmt))
    console.print(table(result.totals, "portfolio totals (kW)", fmt))
    sources = result.by_customer.drop_duplicates("customer_id")[["customer_id", "source"]]
    console.print(table(sources, "load forecast per customer", {}))
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True, markup=False)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        result.by_customer.to_csv(out, index=False, float_format="%.3f")
        console.print(f"wrote {out}", soft_wrap=True, markup=False)


MarketOpt = Annotated[str, typer.Option(
    "--market", help="market type: annual, day_ahead, real_time or peak")]
ConfidenceOpt = Annotated[float, typer.Option(
    "--confidence", help="required P(achievement >= the settlement threshold), in (0, 1)")]
QuantileOpt = Annotated[str, typer.Option(
    "--load-quantile", help="customers' load cap at p10 (pessimistic), p50 or p90")]
CorrelationOpt = Annotated[float | None, typer.Option(
    "--correlation", help="common-factor rho of deliveries (0..1; default: estimated from "
    "events.csv, 0 without history)")]
RateOpt = Annotated[float | None, typer.Option(
    "--compensation-cny-per-mw", help="the market's compensation per MW per event (default: "
    "the tariff table's midpoint, e.g. day_ahead 325)")]
PenaltyOpt = Annotated[float | None, typer.Option(
    "--penalty-cny-per-mw", help="penalty per MW of shortfall below the threshold (default: "
    "the compensation rate)")]
MarginOpt = Annotated[float, typer.Option(
    "--reserve-margin", help="an offer is planned with expected delivery >= offer x (1 + "
    "margin)")]


@app.command()
def bid(data: DataOpt, market: MarketOpt, start: StartOpt, end: EndOpt,
        notice_time: NoticeOpt, confidence: ConfidenceOpt = 0.9,
        customers: CustomersOpt = None, load_quantile: QuantileOpt = "p50",
        correlation: CorrelationOpt = None, compensation_cny_per_mw: RateOpt = None,
        penalty_cny_per_mw: PenaltyOpt = None, reserve_margin: MarginOpt = 0.1,
        allow_approval: ApprovalOpt = False, out: OutOpt = None) -> None:
    """The largest offer (MW) whose P(effective) reaches the confidence, and the offer curve.

    Each offer is planned as the dispatch decomposition would dispatch it (eligible
    resources, each customer capped by its load forecast at --load-quantile) and scored by
    the dispatch Monte Carlo with the common cause of deliveries (a one-factor correlation
    estimated from the settled events in events.csv), beside the independent model.
    Expected compensation and penalty come from the tariff table (defaults per market:
    annual 250, day_ahead 325, real_time 600, peak 1,150 CNY per MW per event; penalty per
    MW of shortfall below the threshold = the compensation rate). --out writes the curve.
    """
    from forecasting.portfolio import read_portfolio
    from models.bidding import BidOptions, MarketTariff, TariffTable, check_market
    from pipelines.tracking import TrackingUnavailableError

    try:
        s, e, n = _times(start, end, notice_time)
        portfolio = read_portfolio(data)
        tariff = TariffTable()
        base = check_market(market, tariff)
        if compensation_cny_per_mw is not None or penalty_cny_per_mw is not None:
            rate = (base.compensation_cny_per_mw if compensation_cny_per_mw is None
                    else compensation_cny_per_mw)
            own = MarketTariff(compensation_cny_per_mw=rate, penalty_cny_per_mw=(
                rate if penalty_cny_per_mw is None else penalty_cny_per_mw))
            tariff = TariffTable(markets={**tariff.markets, market: own})
        options = BidOptions(reserve_margin=reserve_margin, allow_approval=allow_approval)
        result = portfolio_bid(portfolio, market, s, e, n, confidence,
                               customers=_customers(customers), load_quantile=load_quantile,
                               correlation=correlation, tariff=tariff, options=options)
    except (DataError, ValueError, OSError) as err:
        fail(err)
    except TrackingUnavailableError as err:
        console.print(f"[red]error:[/red] {err}", soft_wrap=True)
        raise typer.Exit(1) from err
    print_bid(result, tariff.of(market))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        result.advice.curve.to_csv(out, index=False, float_format="%.4f")
        console.print(f"wrote {out}", soft_wrap=True, markup=False)


CURVE_HEADERS = {"offer_mw": "MW", "p_effective": "P(eff)",
                 "p_effective_independent": "P(indep)", "expected_achievement": "E ach",
                 "expected_compensation_cny": "E comp", "expected_penalty_cny": "E pen",
                 "expected_net_revenue_cny": "E net", "n_resources": "used"}


def print_bid(result: PortfolioBid, tariff) -> None:
    a, est = result.advice, result.correlation

    def say(text: str) -> None:
        console.print(text, soft_wrap=True, markup=False)

    say(f"common cause: rho {est.rho:.3f} ({est.note})")
    q = result.load_quantile
    total = result.capacity.totals.set_index("level").loc["all", f"{q}_kw"]
    say(f"load cap: each customer's capacity at its load {q.upper()}; portfolio capacity "
        f"{total:.1f} kW")
    say(f"tariff {a.market}: {tariff.compensation_cny_per_mw:g} CNY/MW compensation, "
        f"{tariff.penalty_cny_per_mw:g} CNY/MW penalty per MW of shortfall")
    if a.offer_mw > 0:
        change = a.p_effective_independent - a.p_effective
        say(f"advice: offer {a.offer_mw:.3f} MW at confidence {a.confidence:g}: P(effective) "
            f"{a.p_effective:.3f} with the common cause, {a.p_effective_independent:.3f} if "
            f"resources were independent (the independent model is {change:+.3f} more "
            "confident)")
        say(f"expected achievement {a.expected_achievement:.1%}, compensation "
            f"{a.expected_compensation_cny:.0f} CNY, penalty {a.expected_penalty_cny:.0f} CNY, "
            f"net {a.expected_net_revenue_cny:.0f} CNY per event; planned energy cost of the "
            f"customers {a.planned_energy_cost_cny:.0f} CNY; plan: {a.planned_by}")
    else:
        say(f"advice: offer 0 MW: no offer reaches P(effective) >= {a.confidence:g}")
    if np.isfinite(a.independent_offer_mw):
        say(f"the independent model would offer {a.independent_offer_mw:.3f} MW at the same "
            f"confidence ({a.independent_offer_mw - a.offer_mw:+.3f} MW)")
    shown = a.curve[list(CURVE_HEADERS)].rename(columns=CURVE_HEADERS)
    fmt = {"MW": ".3f", "P(eff)": ".3f", "P(indep)": ".3f", "E ach": ".3f"}
    console.print(table(shown, "offer curve (CNY per event; --out for every column)",
                        {**fmt, **{c: ".0f" for c in shown.columns if c not in fmt}}))
    for note in a.notes:
        say(f"note: {note}")


capacity.__doc__ = help_text(capacity.__doc__)
bid.__doc__ = help_text(bid.__doc__)
