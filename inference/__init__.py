"""Request-time code: what the service, the nightly batch and the command line run to answer.

Between ``models/`` (estimators) and its two callers, ``pipelines/`` (training, batch, CLI)
and ``serving/`` (the BentoML service); serving never imports pipelines. Nothing here writes
to MLflow (a test checks it); models are only read.

- ``forecast``: the one forecast facade (site -> window -> champion -> known-at -> predict
  -> output frame), and the one writer of the output CSV;
- ``registry`` / ``tracking``: the read-only model source (champions of sites, ML
  baselines, the response likelihood) and where it reads from;
- ``forecast_store``: the stored nightly forecasts;
- ``baseline_data``, ``measurement``: customers' baselines and the measured response of an
  event; ``capability``: capability metrics of measured events;
- ``response_data``, ``response_predict``, ``response_resources``: the response likelihood
  of planned or settled events, per customer and per resource;
- ``bidding``: load quantiles, available capacity and the capacity bid of a portfolio;
- ``keys``, ``audit``: the API key store and the audit log the service checks and appends.
"""
