"""Random streams and autocorrelated noise for the synthetic sample portfolio.

Everything here serves the *synthetic* data generator (``forecasting.synthetic``); none of
it models real measurements. Each part of the generator draws from its own named stream,
so adding draws to one part does not change the numbers of another, and one seed gives
identical output on every run and platform (numpy's PCG64 via ``SeedSequence``).
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.signal import lfilter


def stream(seed: int, name: str) -> np.random.Generator:
    """Independent generator for the part ``name`` of the portfolio built from ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))


def ar1(
    rng: np.random.Generator, shape: int | tuple[int, ...], tau_steps: float, std: float = 1.0
) -> np.ndarray:
    """Stationary Gaussian AR(1) noise along the last axis.

    Parameters
    ----------
    rng : generator to draw from.
    shape : output shape; the last axis is time.
    tau_steps : e-folding time of the autocorrelation, in steps (``phi = exp(-1/tau)``).
    std : marginal standard deviation, in the unit of the quantity the noise is added to.

    The first value is drawn from the stationary distribution, so the series has the same
    variance everywhere (no spin-up).
    """
    if tau_steps <= 0:
        raise ValueError(f"tau_steps must be positive, got {tau_steps}")
    phi = float(np.exp(-1.0 / tau_steps))
    gain = np.sqrt(1.0 - phi**2)
    white = rng.standard_normal(shape)
    white[..., 0] /= gain
    return std * lfilter([gain], [1.0, -phi], white, axis=-1)


def smooth(values: np.ndarray, tau_steps: float) -> np.ndarray:
    """Causal exponential smoothing along the last axis (a thermal lag of ``tau_steps``),
    started at the first value."""
    alpha = 1.0 - float(np.exp(-1.0 / tau_steps))
    first = values[..., :1]
    out = lfilter([alpha], [1.0, -(1.0 - alpha)], values - first, axis=-1)
    return out + first
