"""What a grid can decide: minimum detectable effect, power and seeds.

The planner answers, before and after a grid runs, how small an effect its
verdicts (:mod:`analysis.verdicts`) can resolve, and how many seeds per arm
a claimed effect needs. All numbers here are in AP points (x100).

Model and formula
-----------------
An arm's metric on the validation set, for training seed ``s``, is
``m_arm + e_s + u_arm``: ``e_s`` is the training (seed) noise, independent
between runs, with SD ``sigma_seed``; ``u_arm`` is the image-sampling error
of the N validation images, shared by every run evaluated on them. The
effect estimate with ``n`` seeds per arm is the difference of the two arms'
seed means, evaluated on the same images (paired design), so its variance is
the sum of the two independent sources::

    Var(delta_hat) = 2 * sigma_seed**2 / n  +  tau**2

- ``2 sigma_seed**2 / n``: each arm's seed mean has variance
  ``sigma_seed**2 / n`` and the arms train independently.
- ``tau**2``: the variance of ``u_a - u_b``, the paired image bootstrap
  variance of the difference
  (:func:`analysis.coco_eval.bootstrap.paired_difference`); pairing on
  images removes what both arms share, and more seeds do not shrink it (the
  same images are reused), only more images do:
  ``tau**2 ~ 1 / N``. The bootstrap of a seed-averaged pilot also carries
  the seed x image interaction; it is used as is (conservative).

Adding the two terms is the variance decomposition of Bouthillier et al.,
"Accounting for Variance in Machine Learning Benchmarks" (MLSys 2021), where
data sampling (bootstrap) and learning-procedure seeds are independent
sources of a benchmark's variance.

A verdict is "supported" when its two-sided 95% interval lies on the claimed
side, i.e. a one-sided test at 2.5%. With ``se = sqrt(Var)`` and a true
effect at distance ``g`` from the decision boundary (0 for greater/less,
the margin for small_gain/small_difference), the normal approximation
with known variance components (Cohen, *Statistical Power Analysis for the
Behavioral Sciences*, 1988, ch. 2; Bloom, "Minimum detectable effects",
Evaluation Review 19(5), 1995) gives::

    power = Phi(g / se - z_0.975)
    MDE   = (z_0.975 + z_0.80) * se  = 2.80 * se      (80% power)

small_difference is an equivalence test (both bounds, TOST):
``power = Phi((m - d)/se - z) + Phi((m + d)/se - z) - 1``, and its MDE is
the margin resolvable at true difference 0: ``(z_0.975 + z_0.90) * se``.
With the variance components estimated from few seeds the realised power is
somewhat lower (t instead of z); the planner is for planning.
"""
import dataclasses
import math
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd
from scipy import stats

from analysis.coco_eval.bootstrap import bootstrap_ap
from analysis.coco_eval.constants import metric_task_area

Z_ALPHA = float(stats.norm.ppf(0.975))
POWER = 0.8
Z_POWER = float(stats.norm.ppf(POWER))
MAX_SEEDS = 50

# Prior for COCO (AP points), to be replaced by a pilot (--pilot): the
# maintainers' statements of run-to-run spread of COCO training.
# - open-mmlab/mmdetection issue #3624 (xvjiarui, 2020-08-26): "experiments
#   on COCO is actually quite stable, the gap is usually less than 0.2 mAP";
# - open-mmlab/mmdetection issue #3496 (ZwwWayne, 2020-08-21): on COCO "the
#   fluctuation is very little (less than 0.3 mAP)";
# - facebookresearch/Mask2Former issue #46: two R-50 COCO instance-seg
#   retrains 43.5 / 43.2 mask AP (maintainer: +/- 0.2 AP is reasonable);
#   their APs differed from the reported 23.4 by 0.4-0.7 AP.
# A gap (range) of 0.3 between two runs is an SD of 0.3 / 1.128 = 0.27; the
# prior rounds up to 0.3 AP for AP / AP50 / AP75 (box and mask), and doubles
# it (0.6) for the size ranges APs / APm / APl, whose spread the Mask2Former
# report shows to be about twice AP's.
PRIOR_SEED_SD = {'all': 0.3, 'size': 0.6}
# Image term of a paired difference on COCO val2017 (5000 images). No
# public multi-run source gives it: an assumption of the order the
# single-arm bootstrap intervals on 5000 images show (a few tenths of an AP),
# not reduced for pairing (conservative); size ranges doubled as above. A
# pilot with saved detections replaces it.
PRIOR_IMAGE_SD = {'all': 0.2, 'size': 0.4}
PRIOR_IMAGES = 5000
PRIOR_SOURCE = ('COCO prior: seed SD 0.3 AP (0.6 for APs/m/l) from '
                'mmdetection issues #3624/#3496 and Mask2Former #46; image '
                'SD 0.2 AP (0.4) at 5000 images, assumed; replace with a '
                'pilot (--pilot)')

# Claimed effects the published table (analysis/data/published.csv) cannot
# give: (effect in AP points, source).
CLAIMED = {
    'W1': (0.0, 'CenterMask R-50 1x 34.7 (Table 1) vs mmdet Mask R-CNN R-50 '
                '1x 34.7 mask AP (model zoo)'),
    'W3': (0.4, 'no APs published: Table 1\'s overall mask AP, Eq. 2 33.8 '
                'vs Eq. 1 33.4'),
    'W6': (1.84, 'RetinaMask paper: +1.84 box AP over RetinaNet (R-50, '
                 'test-dev, 800 px)'),
    'W7': (-3.2, 'CenterMask Table 5: RetinaMask R-101 34.7 vs Mask R-CNN '
                 '37.9 mask AP (test-dev)'),
    'W8': (0.4, 'RetinaMask paper: +0.4 to +1.2 AP; the smallest gain '
                'quoted'),
}


@dataclasses.dataclass
class Variance:
    """Noise of one comparison, in AP points.

    Attributes:
        seed_sd: SD of one run's metric over training seeds.
        image_sd: SD of the paired difference over image resamples, at
            ``n_images`` validation images.
        n_images: Validation images ``image_sd`` refers to.
        source: Where both come from.
    """

    seed_sd: float
    image_sd: float
    n_images: int
    source: str

    def at_images(self, n_images: int) -> 'Variance':
        """The same noise on another validation-set size (tau ~ 1/sqrt N)."""
        if not n_images or n_images == self.n_images:
            return self
        return dataclasses.replace(
            self, image_sd=self.image_sd * math.sqrt(self.n_images / n_images),
            n_images=n_images,
            source=f'{self.source}; image term scaled from '
            f'{self.n_images} to {n_images} images')


def metric_class(metric: str) -> str:
    """``size`` for APs/APm/APl, else ``all``."""
    return 'size' if metric.endswith(('APs', 'APm', 'APl')) else 'all'


def prior(metric: str, n_images: int = PRIOR_IMAGES) -> Variance:
    """The COCO prior for ``metric`` at ``n_images`` validation images."""
    c = metric_class(metric)
    return Variance(PRIOR_SEED_SD[c], PRIOR_IMAGE_SD[c], PRIOR_IMAGES,
                    PRIOR_SOURCE).at_images(n_images)


def effect_se(v: Variance, n_seeds: int) -> float:
    """Standard error of the paired effect with ``n_seeds`` per arm."""
    return math.sqrt(2 * v.seed_sd ** 2 / max(n_seeds, 1) + v.image_sd ** 2)


def gap(kind: str, effect: float, margin: float = 0.0) -> float:
    """Distance of the claimed effect from the verdict's boundary, on the
    claimed side (negative: the claim itself lies on the wrong side)."""
    if kind == 'greater':
        return effect
    if kind == 'less':
        return -effect
    if kind == 'small_gain':
        return margin - effect
    if kind == 'small_difference':
        return margin - abs(effect)
    raise ValueError(f'unknown kind {kind!r}')


def power(kind: str, effect: float, v: Variance, n_seeds: int,
          margin: float = 0.0) -> float:
    """Probability that the 95% interval lands on the claimed side."""
    se = max(effect_se(v, n_seeds), 1e-9)
    if kind == 'small_difference':
        p = (stats.norm.cdf((margin - effect) / se - Z_ALPHA)
             + stats.norm.cdf((margin + effect) / se - Z_ALPHA) - 1)
        return float(max(p, 0.0))
    return float(stats.norm.cdf(gap(kind, effect, margin) / se - Z_ALPHA))


def mde(kind: str, v: Variance, n_seeds: int) -> float:
    """Smallest distance from the boundary resolved at 80% power."""
    z = float(stats.norm.ppf(0.5 + POWER / 2)) if kind == \
        'small_difference' else Z_POWER
    return (Z_ALPHA + z) * effect_se(v, n_seeds)


def seeds_needed(kind: str, effect: float, v: Variance,
                 margin: float = 0.0,
                 max_seeds: int = MAX_SEEDS) -> Optional[int]:
    """Fewest seeds per arm for 80% power; None when even ``max_seeds``
    do not reach it (the image term alone is too large)."""
    for n in range(1, max_seeds + 1):
        if power(kind, effect, v, n, margin) >= POWER:
            return n
    return None


def claimed_effect(wid: str, w: dict,
                   published: pd.DataFrame) -> Tuple[Optional[float], str]:
    """The effect the paper claims for weakness ``wid``, in AP points.

    From ``published.csv`` when both sides have a number (the hardest of
    several ``a`` sides, the one nearest the boundary), else
    :data:`CLAIMED`; ``(None, why)`` for latency and unpublished claims.
    """
    metric, kind = w['metric'], w['kind']
    if metric.startswith('latency'):
        return None, 'a timing claim: decided by measured latency, not seeds'
    margin = 100 * float(w.get('margin', 0.0))
    sides = w['a'] if isinstance(w['a'], list) else [w['a']]

    def value(side):
        rows = published[(published.grid == side['grid'])
                         & (published.model == side['model'])
                         & (published.arm == side['arm'])
                         & (published.metric == metric)]
        return float(rows.value.iloc[0]) if len(rows) else None

    b = value(w['b'])
    effects = [value(s) - b for s in sides
               if b is not None and value(s) is not None]
    if effects and len(effects) == len(sides):
        effect = min(effects, key=lambda d: gap(kind, d, margin))
        return effect, 'published.csv: ' + ', '.join(
            f'{s["arm"]} {value(s):g}' for s in sides) + \
            f' vs {w["b"]["arm"]} {b:g}'
    if wid in CLAIMED:
        return CLAIMED[wid]
    return None, 'no published number for this comparison'


def pooled_seed_sd(runs: pd.DataFrame, metric: str) -> Tuple[float, int]:
    """Within-arm SD over seeds pooled over arms, AP points, and its
    degrees of freedom (0: no arm has two finished seeds)."""
    done = runs[(runs.status == 'finished')] if 'status' in runs else runs
    ss, dof = 0.0, 0
    if metric not in done:
        return float('nan'), 0
    for _, g in done.groupby(['grid', 'model', 'arm', 'dataset']):
        x = 100 * g[metric].dropna().to_numpy(float)
        if len(x) >= 2:
            ss += float(((x - x.mean()) ** 2).sum())
            dof += len(x) - 1
    return (math.sqrt(ss / dof), dof) if dof else (float('nan'), 0)


def words(verdict: str, kind: str, effect: Optional[float],
          margin: float, resolvable: float) -> str:
    """The sentence that says what the grid could have seen."""
    if effect is None:
        return f'{verdict}: no claimed size to set against'
    g = gap(kind, effect, margin)
    claim = (f'the claim is {effect:+.2f} AP' + (
        f', {g:.2f} from the margin {margin:g}' if kind.startswith('small')
        else ''))
    can = f'the grid can resolve a gap >= {resolvable:.2f} AP'
    if verdict == 'inconclusive' and resolvable > abs(g):
        return (f'inconclusive: {can} but {claim}; it could not have '
                f'seen it')
    if verdict == 'inconclusive':
        return f'inconclusive: {can} and {claim}; it should have seen it'
    return f'{verdict}: {can}; {claim}'


def summarise(kind: str, effect: Optional[float], v: Variance,
              n_now: int, margin: float = 0.0) -> Dict[str, object]:
    """MDE and power now, and the seeds the claim needs."""
    out = dict(mde_now=mde(kind, v, n_now), power_now=float('nan'),
               seeds_needed=None)
    if effect is not None:
        out['power_now'] = power(kind, effect, v, n_now, margin)
        out['seeds_needed'] = seeds_needed(kind, effect, v, margin)
    return out


def image_sd_from_samples(diff_samples: np.ndarray) -> float:
    """SD (AP points) of a paired difference's bootstrap samples."""
    d = 100 * np.asarray(diff_samples, float)
    d = d[~np.isnan(d)]
    return float(d.std(ddof=1)) if d.size > 1 else float('nan')


def paired_samples(evals, a: pd.DataFrame, b: pd.DataFrame, metric: str,
                   n_resamples: int = 200) -> Optional[Tuple[float, int]]:
    """Image SD (AP points) of the paired bootstrap difference of two
    arms' runs with saved detections, and the images it is on; None when
    the metric is not AP over a COCO range, a side has no detections, the
    sides were evaluated on other images, or the SD is undefined.

    Args:
        evals: The runs' evaluations
            (:class:`~analysis.coco_eval.run_eval.RunEvals`).
        a, b: The two arms' finished runs.
        metric: A results-table AP column (``mask_APs``...).
        n_resamples: Bootstrap resamples.
    """
    task_area = metric_task_area(metric)
    if task_area is None:
        return None
    iou_type, area = task_area
    ea, eb = evals.for_runs(a, iou_type), evals.for_runs(b, iou_type)
    if not ea or not eb or ea[0].img_ids != eb[0].img_ids:
        return None
    s = bootstrap_ap({'a': ea, 'b': eb}, n_resamples, area=area)
    sd = image_sd_from_samples(s['a'] - s['b'])
    return (sd, ea[0].num_images) if sd == sd else None


def describe(v: Variance) -> str:
    return (f'seed SD {v.seed_sd:.2f} AP, image SD {v.image_sd:.2f} AP at '
            f'{v.n_images} images ({v.source})')

