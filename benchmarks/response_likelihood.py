"""Response-likelihood benchmark on the SYNTHETIC sample portfolio, against the outcomes and
against the generator's true probabilities.

Run from the repository root::

    .venv/bin/python -m benchmarks.response_likelihood

One path, the product's: read the portfolio (``forecasting.portfolio.read_portfolio``) ->
``pipelines.response.train_response`` (what ``vpp response-train --truth`` runs: scoring fit
on the earlier 75 % of the events, scored on the latest 25 %, final fit on every settled
event, logged to MLflow and registered) -> ``load_champion`` -> ``predict_rows`` /
``predict_resources`` (what ``vpp response-predict`` and ``POST /response-likelihood``
answer with). The MLflow store is a fresh temporary one unless ``--mlflow-uri`` is given.

The portfolio is the default sample (``generate_portfolio(dir, seed=7)``, 18 months, about
165 events), generated afresh into a temporary directory (``--data DIR``: a generated one).
The truth (``truth/response_truth.csv``) only scores; it never reaches a fit.

Printed: per method (model, historical_rate = Beta-shrunk per-customer rate, base_rate,
and the true probability itself as the floor) the held-out Brier score, Brier skill over
the historical rate, ROC AUC, ECE against the outcomes and against the truth (10
equal-width bins of the predicted probability), mean |p - p_true|; the same for the
resource-level model; the targets (ECE vs truth <= 0.03, Brier skill >= 0.2). CSVs go to
``var/benchmarks/response_likelihood/``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "benchmarks" / "response_likelihood"
TARGET_ECE_VS_TRUTH = 0.03
TARGET_BRIER_SKILL = 0.2
COLUMNS = {"brier": "Brier", "brier_skill": "Brier skill", "roc_auc": "AUC",
           "ece": "ECE vs outcomes", "ece_vs_truth": "ECE vs truth",
           "mae_vs_truth": "mean |p - p_true|", "n": "rows"}


def portfolio_dir(tmp: Path, seed: int = 7) -> Path:
    """The default sample portfolio (``seed`` 7 by default) with its truth file, generated
    afresh into ``tmp`` (a portfolio left by an older generator would give other figures)."""
    from forecasting.synthetic import generate_portfolio

    target = tmp / f"portfolio_seed{seed}"
    print(f"generating the SYNTHETIC default sample portfolio (seed {seed}) into {target}")
    t0 = time.perf_counter()
    generate_portfolio(target, seed=seed)
    print(f"generated in {time.perf_counter() - t0:.1f} s")
    return target


def shown(metrics: dict[str, dict[str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(metrics).T
    frame = frame[[c for c in COLUMNS if c in frame]].rename(columns=COLUMNS)
    frame["rows"] = frame["rows"].astype(int)
    frame.index.name = "method"
    return frame


def run(directory: Path, uri: str) -> dict[str, pd.DataFrame]:
    from forecasting.portfolio import read_portfolio
    from forecasting.synthetic.truth import read_response_truth
    from pipelines.response import (
        load_champion,
        predict_resources,
        predict_rows,
        response_data,
        train_response,
    )

    t0 = time.perf_counter()
    portfolio = read_portfolio(directory)
    truth = read_response_truth(directory)
    result, decision = train_response(portfolio, uri=uri, truth=truth)
    train_seconds = time.perf_counter() - t0
    champion = load_champion(uri)
    data = response_data(portfolio)
    held = result.predictions.index
    events = data.events.assign(event_id=data.events["event_id"].astype(str),
                                customer_id=data.events["customer_id"].astype(str))
    keys = pd.MultiIndex.from_frame(events[["event_id", "customer_id"]])
    rows = events[keys.isin(held)]
    served = predict_rows(data, rows, result.rule, champion)
    direct = result.model.predict(result.test_features)
    gap = float(np.max(np.abs(served.loc[direct.index, "p_deliver"] - direct["p_deliver"])))
    per_resource = predict_resources(data, rows, served, result.rule, champion)

    n_events = data.events["event_id"].nunique()
    first, last = (pd.to_datetime(data.events["start"], utc=True).agg(["min", "max"]))
    print(f"SYNTHETIC sample portfolio {directory}: {n_events} events, {len(data.events)} "
          f"customer rows, {first:%Y-%m-%d} .. {last:%Y-%m-%d}")
    print(f"held-out: {result.n_test_rows} rows of {result.n_test_events} events from "
          f"{result.test_start:%Y-%m-%d}; scoring fit {result.n_train_rows} rows "
          f"(calibration {result.scoring_model.calibration_}); registered "
          f"{decision['name']} v{decision['version']} ({decision['alias']}); "
          f"train + log + register {train_seconds:.1f} s")
    tables = {"customer": shown(result.metrics)}
    print("\nCustomer level, held-out (ECE: 10 equal-width bins of p; Brier skill over "
          "historical_rate; truth = the generator's true probability, the floor)")
    print(tables["customer"].to_string(float_format=lambda v: f"{v:.3f}"))
    if result.resources is not None and result.resources.metrics:
        tables["resource"] = shown(result.resources.metrics)
        print("\nResource level (resource_events.csv), held-out; answering at resource "
              f"level: {result.resources.method} (the better held-out Brier)")
        print(tables["resource"].to_string(float_format=lambda v: f"{v:.3f}"))
    counts = per_resource["level"].value_counts().to_dict()
    print(f"\npredict path (load_champion -> predict_rows) vs the registered fit on the "
          f"held-out rows: max |dp| = {gap:.2g}; per-resource answers: {counts}")
    model = result.metrics["model"]
    for name, value, target, ok in (
            ("ECE vs truth", model["ece_vs_truth"], TARGET_ECE_VS_TRUTH,
             model["ece_vs_truth"] <= TARGET_ECE_VS_TRUTH),
            ("Brier skill over historical_rate", model["brier_skill"], TARGET_BRIER_SKILL,
             model["brier_skill"] >= TARGET_BRIER_SKILL)):
        print(f"target {name}: {value:.3f} vs {target} -> {'met' if ok else 'MISSED'}")
    oracle = result.metrics.get("truth", {}).get("brier_skill", float("nan"))
    print(f"(the true probability itself has Brier skill {oracle:.3f} on these rows)")
    return tables


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a generated sample portfolio with "
                        "truth/response_truth.csv (default: the default sample, generated)")
    parser.add_argument("--seeds", default="7", help="comma-separated generator seeds of the "
                        "default sample (default 7, the sample's); several give a summary "
                        "of how much the held-out figures vary with the draw")
    parser.add_argument("--mlflow-uri", help="MLflow store (default: a fresh temporary one)")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    seeds = [int(v) for v in args.seeds.split(",")] if not args.data else [None]
    summary = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            directory = args.data or portfolio_dir(Path(tmp), seed)
            uri = args.mlflow_uri or f"sqlite:///{Path(tmp) / 'mlflow.db'}"
            import os

            os.environ["MLFLOW_ARTIFACTS_DIR"] = str(Path(tmp) / "artifacts")
            tables = run(directory, uri)
        suffix = "" if seed in (None, 7) else f"_seed{seed}"
        for name, frame in tables.items():
            frame.to_csv(OUT / f"{name}{suffix}.csv")
        t = tables["customer"]
        summary.append({"seed": seed, "model Brier skill": t.loc["model", "Brier skill"],
                        "truth Brier skill": t.loc["truth", "Brier skill"],
                        "model ECE vs truth": t.loc["model", "ECE vs truth"],
                        "historical_rate ECE vs truth": t.loc["historical_rate",
                                                              "ECE vs truth"],
                        "model mean |p - p_true|": t.loc["model", "mean |p - p_true|"],
                        "historical_rate mean |p - p_true|": t.loc["historical_rate",
                                                                   "mean |p - p_true|"]})
    if len(summary) > 1:
        frame = pd.DataFrame(summary).set_index("seed")
        print("\nOver generator seeds (held-out figures of each draw; mean last)")
        frame.loc["mean"] = frame.mean()
        print(frame.to_string(float_format=lambda v: f"{v:.3f}"))
        frame.to_csv(OUT / "seeds.csv")


if __name__ == "__main__":
    main()
