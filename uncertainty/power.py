"""Power, minimum detectable effect and seeds needed of the verdict rule.

The rule is the one :mod:`uncertainty.difference` and
:mod:`uncertainty.decision` apply: the 95% interval
``value +- q * sqrt(image_var + seed_var)`` on the claimed side. With the
noise of :class:`~uncertainty.noise.Noise` and ``n`` seeds per arm:

- one seed: the seed term comes from the prior, taken as known, so ``q``
  is z and ``power = Phi((U - h - d) / sd) - Phi((L + h - d) / sd)``
  (``h`` the half-width, ``sd`` the effect's true SD, ``(L, U)`` the
  claim's bounds);
- two or more: the seed term is the seeds' pooled variance ``s**2``, with
  ``2n - 2`` degrees of freedom, and ``q`` Student's t with
  Satterthwaite's degrees of freedom. ``s**2`` is independent of the
  effect's estimate, so the power is that expression averaged over the
  distribution of ``s**2`` (``sigma**2 chi2_k / k``), on a grid of its
  quantiles.

References: Cohen, *Statistical Power Analysis for the Behavioral
Sciences* (1988), ch. 2; Bloom, "Minimum detectable effects", Evaluation
Review 19(5), 1995; Schuirmann (1987) for the equivalence (TOST) case.
"""
import functools
from typing import Dict, Optional, Tuple

import numpy as np
from scipy import optimize, special, stats

from uncertainty.decision import claim_bounds, gap
from uncertainty.difference import LEVEL, Z
from uncertainty.noise import Noise

POWER = 0.8
MAX_SEEDS = 50
QUANTILES = 200


def _supported(low: float, up: float, effect: float, sd: float,
               half: np.ndarray) -> np.ndarray:
    p = (special.ndtr((up - half - effect) / sd)
         - special.ndtr((low + half - effect) / sd))
    return np.clip(p, 0.0, 1.0)


@functools.lru_cache(maxsize=64)
def _variance_ratios(k: int) -> np.ndarray:
    """Quantiles of ``s**2 / sigma**2`` with ``k`` degrees of freedom."""
    return stats.chi2.ppf((np.arange(QUANTILES) + 0.5) / QUANTILES, k) / k


def half_widths(noise: Noise, n_seeds: int) -> Tuple[np.ndarray, float]:
    """The interval's half-widths over the distribution of the seed
    estimate (one value: seeds from the prior), and the effect's true
    SD."""
    image_var = noise.image_sd ** 2
    seed_var = 2 / n_seeds * noise.seed_sd ** 2
    sd = max(float(np.sqrt(image_var + seed_var)), 1e-12)
    if n_seeds < 2:
        return np.array([Z * sd]), sd
    k = 2 * n_seeds - 2
    s_var = seed_var * _variance_ratios(k)
    var = image_var + s_var
    with np.errstate(divide='ignore'):
        df = np.where(s_var > 0, var ** 2 * k / s_var ** 2, np.inf)
    q = np.where(np.isinf(df), Z,
                 special.stdtrit(np.minimum(df, 1e12), 0.5 + LEVEL / 2))
    return q * np.sqrt(var), sd


def power(kind: str, effect: float, noise: Noise, n_seeds: int,
          margin: float = 0.0) -> float:
    """Probability that the report says "supported" for a true
    ``effect`` with ``n_seeds`` seeds per arm."""
    low, up = claim_bounds(kind, margin)
    half, sd = half_widths(noise, n_seeds)
    return float(_supported(low, up, effect, sd, half).mean())


def mde(kind: str, noise: Noise, n_seeds: int) -> float:
    """Smallest distance from the boundary resolved with 80% power: for
    small_difference, the smallest margin resolvable at a true difference
    of 0."""
    half, sd = half_widths(noise, n_seeds)
    if kind == 'small_difference':
        def f(m):
            return _supported(-m, m, 0.0, sd, half).mean() - POWER
    else:
        def f(g):
            return _supported(0.0, np.inf, g, sd, half).mean() - POWER
    hi = sd
    while f(hi) < 0:
        hi *= 2
        if hi > 1e6 * sd:
            return float('inf')
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-6))


def seeds_needed(kind: str, effect: float, noise: Noise,
                 margin: float = 0.0,
                 max_seeds: int = MAX_SEEDS) -> Optional[int]:
    """Fewest seeds per arm for 80% power; None when even ``max_seeds``
    do not reach it."""
    for n in range(1, max_seeds + 1):
        if power(kind, effect, noise, n, margin) >= POWER:
            return n
    return None


def image_floor(kind: str, effect: float, noise: Noise,
                margin: float = 0.0) -> bool:
    """Whether the image term alone keeps the claim under 80% power, at
    any number of seeds (then only more images help)."""
    sd = noise.image_sd
    return gap(kind, effect, margin) < (
        Z + stats.norm.ppf(POWER)) * sd


def summarise(kind: str, effect: Optional[float], noise: Noise,
              n_now: int, margin: float = 0.0) -> Dict[str, object]:
    """MDE and power with ``n_now`` seeds, and the seeds the claim
    needs."""
    n = max(n_now, 1)
    out = dict(mde_now=mde(kind, noise, n), power_now=float('nan'),
               seeds_needed=None)
    if effect is not None:
        out['power_now'] = power(kind, effect, noise, n, margin)
        out['seeds_needed'] = seeds_needed(kind, effect, noise, margin)
    return out
