"""An effect ``mean(a) - mean(b)`` with a 95% interval that covers every
source of :mod:`uncertainty.noise`.

From what the runs show, the prior only for what they cannot show:

- **with image resamples** (saved detections: the paired image bootstrap
  of every run, :func:`from_resamples`): the bootstrap variance of the
  seed-mean difference ``B`` holds the image term and the seed x image
  part at ``1/n`` (``B = image_sd**2 + c * seed_image_sd**2``, with
  ``c = 1/n_a + 1/n_b``); the run-wide offset is constant over images and
  the bootstrap never sees it.

  * two or more seeds in an arm: the seeds' own pooled variance ``s**2``
    (run-wide plus seed x image) is the seed term, ``c * s**2``, and the
    seed x image part, measured as the bootstrap variance of one seed
    against the others of its arm, is taken out of ``B`` so it is not
    counted twice. The interval uses Student's t with Satterthwaite's
    degrees of freedom (the seed term is estimated from few runs).
  * one seed per arm: ``B`` plus the prior's run-wide term
    ``c * run_sd**2``; z, since the prior is taken as known. The verdict
    says so.

- **without resamples** (no saved detections, :func:`from_run_values`):
  the prior's image term plus the seeds' pooled variance (two or more
  seeds), or plus the prior's whole seed variance (one seed).

Pooling the seed variance over the two arms assumes both train with the
same noise, which holds for the arms a verdict compares: one model family,
one schedule, one dataset, a change in one component.
"""
import dataclasses
import math
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import special, stats

from uncertainty.noise import Noise

LEVEL = 0.95
# The two-sided normal quantile of LEVEL.
Z = float(stats.norm.ppf(0.5 + LEVEL / 2))


@dataclasses.dataclass
class Difference:
    """An effect with its interval and the variance terms behind it.

    Attributes:
        value: ``mean(a) - mean(b)`` over seeds, display units.
        lo, hi: The 95% interval.
        df: Degrees of freedom of the t quantile (inf: z).
        image_var: Image-sampling variance of the effect (with seeds from
            the prior: the bootstrap's, seed x image part of these runs
            included).
        seed_var: Seed variance of the effect.
        run_sd: Run-wide seed SD of one run used or estimated (NaN: not
            separable here).
        seed_image_sd: Seed x image SD of one run (NaN: not measured).
        seed_sd: One run's total seed SD used for ``seed_var``.
        seed_source: ``'these runs (k dof)'`` or ``'prior (...)'``.
        image_source: Where ``image_var`` comes from.
        n_a, n_b: Seeds per arm.
        n_images: Validation images (0: unknown).
        seed_dof: Degrees of freedom of the seeds' own variance (0: the
            seed term is the prior's).
    """

    value: float
    lo: float
    hi: float
    df: float
    image_var: float
    seed_var: float
    run_sd: float
    seed_image_sd: float
    seed_sd: float
    seed_source: str
    image_source: str
    n_a: int
    n_b: int
    n_images: int
    seed_dof: int = 0

    @property
    def se(self) -> float:
        return math.sqrt(self.image_var + self.seed_var)

    def n_resamples_text(self) -> str:
        """The image source's first clause (``paired image bootstrap, k
        resamples``)."""
        return ', '.join(self.image_source.split(', ')[:2])

    @property
    def seeds_from_prior(self) -> bool:
        return self.seed_source.startswith('prior')

    def components(self) -> str:
        """The terms in words, for the verdict line."""
        seeds = (f'seed noise from the prior ({self.seed_source[7:-1]})'
                 if self.seeds_from_prior else
                 f'seed SD {self.seed_sd:.2f} from {self.seed_source}')
        parts = [seeds]
        if self.seed_image_sd == self.seed_image_sd:
            parts.append(f'of it seed x image {self.seed_image_sd:.2f}, '
                         f'run-wide {self.run_sd:.2f}')
        parts.append(f'image SD {math.sqrt(self.image_var):.2f} '
                     f'({self.image_source})')
        df = '' if math.isinf(self.df) else f', t with {self.df:.1f} dof'
        return '; '.join(parts) + f'; SE {self.se:.2f}{df}'


def interval(value: float, image_var: float, seed_var: float,
             seed_dof: float) -> Tuple[float, float, float]:
    """``(lo, hi, df)`` of the 95% interval around ``value``.

    ``seed_var`` is estimated with ``seed_dof`` degrees of freedom
    (``inf``: known); ``image_var`` is taken as known (thousands of
    images). Satterthwaite's approximation gives the interval's degrees of
    freedom.
    """
    var = image_var + seed_var
    if seed_var > 0 and math.isfinite(seed_dof):
        df = var ** 2 / (seed_var ** 2 / seed_dof)
    else:
        df = math.inf
    # scipy.special's quantiles, which stats.t.ppf / stats.norm.ppf wrap
    # (the same values, without 0.2 ms of argument handling per call: the
    # calibration simulates this a hundred thousand times).
    q = Z if math.isinf(df) else special.stdtrit(df, 0.5 + LEVEL / 2)
    half = float(q) * math.sqrt(var)
    return value - half, value + half, df


def pooled_seed_var(*arms: Sequence[float]) -> Tuple[float, int]:
    """Within-arm variance over seeds pooled over arms, and its degrees of
    freedom (0 when no arm has two seeds)."""
    ss, dof = 0.0, 0
    for x in arms:
        x = np.asarray(x, float)
        x = x[~np.isnan(x)]
        if x.size >= 2:
            ss += float(((x - x.mean()) ** 2).sum())
            dof += x.size - 1
    return (ss / dof, dof) if dof else (float('nan'), 0)


def seed_image_var(*samples: np.ndarray) -> float:
    """The seed x image variance of one run, from image resamples.

    Args:
        samples: Per arm, (resamples, seeds) metric values on the shared
            image resamples. Arms with one seed are skipped.

    On each resample the seeds of one arm see the same images, so their
    spread around the arm's mean on that resample moves with the resample
    only through the seed x image part: its variance over resamples, times
    ``n / (n - 1)``, is that part's variance for one run.
    """
    total, count = 0.0, 0
    for s in samples:
        s = np.asarray(s, float)
        s = s[~np.isnan(s).any(axis=1)]
        if s.ndim != 2 or s.shape[1] < 2 or s.shape[0] < 2:
            continue
        n = s.shape[1]
        dev = s - s.mean(axis=1, keepdims=True)
        total += float(dev.var(axis=0, ddof=1).sum())
        count += n - 1
    return total / count if count else float('nan')


def _seed_mean(samples: np.ndarray) -> np.ndarray:
    s = np.asarray(samples, float)
    with np.errstate(all='ignore'):
        return np.nanmean(s, axis=1) if s.ndim == 2 else s


def from_resamples(a_values: Sequence[float], b_values: Sequence[float],
                   a_samples: np.ndarray, b_samples: np.ndarray,
                   n_images: int, prior: Noise) -> Difference:
    """The effect from per-seed values and their paired image resamples.

    Args:
        a_values, b_values: Each seed's metric on the full set.
        a_samples, b_samples: (resamples, seeds) metric values of the same
            runs on shared image resamples (paired: row ``i`` of both is
            the same resample).
        n_images: Validation images.
        prior: The noise to fall back on (at ``n_images``).
    """
    a = np.asarray(a_values, float)
    b = np.asarray(b_values, float)
    n_a, n_b = len(a), len(b)
    c = 1 / n_a + 1 / n_b
    value = float(np.nanmean(a) - np.nanmean(b))
    d = _seed_mean(a_samples) - _seed_mean(b_samples)
    d = d[~np.isnan(d)]
    boot = float(d.var(ddof=1)) if d.size > 1 else float('nan')
    s2, dof = pooled_seed_var(a, b)
    if dof:
        si2 = seed_image_var(a_samples, b_samples)
        si2 = si2 if si2 == si2 else 0.0
        image_var = max(boot - c * si2, 0.0)
        lo, hi, df = interval(value, image_var, c * s2, dof)
        return Difference(
            value, lo, hi, df, image_var, c * s2,
            math.sqrt(max(s2 - si2, 0.0)), math.sqrt(si2), math.sqrt(s2),
            f'these runs ({dof} dof, pooled over both arms)',
            f'paired image bootstrap, {len(d)} resamples, seed x image part '
            f'taken out', n_a, n_b, n_images, dof)
    seed_var = c * prior.run_sd ** 2
    lo, hi, df = interval(value, boot, seed_var, math.inf)
    return Difference(
        value, lo, hi, df, boot, seed_var, prior.run_sd, float('nan'),
        prior.run_sd, f'prior (run-wide SD {prior.run_sd:.2f}: '
        f'{prior.source})',
        f'paired image bootstrap, {len(d)} resamples, with these runs\' '
        f'seed x image part', n_a, n_b, n_images)


def from_run_values(a_values: Sequence[float], b_values: Sequence[float],
                    n_images: int, prior: Noise) -> Optional[Difference]:
    """The effect from per-seed values only (no image resamples): the image
    term from the prior. None when a side has no value."""
    a = np.asarray(a_values, float)
    b = np.asarray(b_values, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if not a.size or not b.size:
        return None
    n_a, n_b = len(a), len(b)
    c = 1 / n_a + 1 / n_b
    value = float(a.mean() - b.mean())
    image_var = prior.image_sd ** 2
    image_source = f'prior at {prior.n_images} images, no saved detections'
    s2, dof = pooled_seed_var(a, b)
    if dof:
        lo, hi, df = interval(value, image_var, c * s2, dof)
        return Difference(value, lo, hi, df, image_var, c * s2, float('nan'),
                          float('nan'), math.sqrt(s2),
                          f'these runs ({dof} dof, pooled over both arms)',
                          image_source, n_a, n_b, n_images, dof)
    # No bootstrap carries the seed x image part: the whole seed variance.
    seed_var = c * prior.seed_sd ** 2
    lo, hi, df = interval(value, image_var, seed_var, math.inf)
    return Difference(value, lo, hi, df, image_var, seed_var, prior.run_sd,
                      prior.seed_image_sd, prior.seed_sd,
                      f'prior (seed SD {prior.seed_sd:.2f}: {prior.source})',
                      image_source, n_a, n_b, n_images)
