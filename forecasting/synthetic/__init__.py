"""SYNTHETIC sample-portfolio generator: invented demo data, never real measurements.

Not part of the domain core: nothing else in ``forecasting/`` imports this package; demos,
tests, benchmarks and ``vpp sample-data`` do. Entry points (``generator``):
``generate_portfolio`` writes the files, ``generate_portfolio_frames`` returns the tables,
``simulate_portfolio`` also returns the hidden truth, ``write_portfolio`` writes frames.

Modules, one seeded stochastic model each:

- ``grid``         local days, 15-minute and hourly UTC stamps
- ``random``       named, seeded random streams; AR(1) and smoothing helpers
- ``segments``     load segments: daily shapes, calendar, weather response (declared as data)
- ``sites``        site catalogue: customers, PV plants, wind farms
- ``weather``      regional weather truth with site deviations; hourly observations
- ``nwp``          day-ahead forecasts: truth + lead-dependent AR(1) errors
- ``power``        PV (pvlib transposition, temperature derate) and wind power curves
- ``load``         shifts, day types, Spring Festival, temperature, noise
- ``resources``    controllable resources per customer (levels I/II/III)
- ``event_calls``  demand-response calls: days, start, duration, notice, invitations
- ``achievement``  each customer's target and achieved reduction
- ``events``       settles every call and applies the response to the load
- ``truth``        the delivery probability of every event row (the generator's law)
- ``minute``       1-minute readings around each event
- ``prices``       day-ahead and real-time prices
- ``generator``    puts them together and writes the portfolio directory
"""

from forecasting.synthetic.generator import (
    ATTRS_KEY,
    CSV_TABLES,
    CSV_TIMESTAMP_COLUMNS,
    PARQUET_TABLES,
    POWER_DECIMALS,
    TABLES,
    SyntheticPortfolio,
    generate_portfolio,
    generate_portfolio_frames,
    simulate_portfolio,
    write_portfolio,
)

__all__ = [
    "ATTRS_KEY",
    "CSV_TABLES",
    "CSV_TIMESTAMP_COLUMNS",
    "PARQUET_TABLES",
    "POWER_DECIMALS",
    "TABLES",
    "SyntheticPortfolio",
    "generate_portfolio",
    "generate_portfolio_frames",
    "simulate_portfolio",
    "write_portfolio",
]
