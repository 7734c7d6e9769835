"""The claimed effect of each verdict, and the noise runs measure.

The variance model, the power of the verdict rule and the COCO prior live
in :mod:`uncertainty` (one model for the planner, the report's power
section and every verdict interval). This module adds what needs the
project's data: the effect the papers claim (``published.csv`` and
:data:`CLAIMED`), the noise a set of runs shows
(:func:`measured_noise`: a pilot for ``--plan --pilot``, or the runs a
report reads), and the sentence that says what a grid could have seen.
All numbers are AP points.
"""
import dataclasses
import math
from typing import Optional, Tuple

import numpy as np
import pandas as pd

from analysis.evidence import make_evidence, scale
from uncertainty.decision import gap
from uncertainty.difference import pooled_seed_var
from uncertainty.noise import PRIOR_IMAGES, Noise, prior

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


def measured_noise(a_runs: pd.DataFrame, b_runs: pd.DataFrame, metric: str,
                   evals, n_resamples: int = 200,
                   base: Optional[Noise] = None) -> Noise:
    """The noise two arms' runs show, at their number of images.

    With saved detections, the report's own evidence
    (:func:`analysis.evidence.make_evidence`) measures it: with two or more
    seeds in an arm, the paired bootstrap of seeds of one arm gives the
    seed x image part, the seeds' spread the rest (run-wide), and the
    bootstrap of the arms' difference, that part taken out, the image term.
    With one seed per arm the split of the seed noise is the prior's.
    Without detections: the seeds' spread, split as the prior splits it,
    and the prior's image term. What the runs cannot give comes from
    ``base`` (default: the COCO prior), and ``source`` says which is which.

    Args:
        a_runs, b_runs: Finished runs of the two arms.
        metric: A results-table AP column.
        evals: A :class:`~analysis.coco_eval.run_eval.RunEvals`, or None.
        n_resamples: Image resamples.
        base: The prior at the runs' number of images.
    """
    n_images = int(np.nanmax(pd.concat([a_runs, b_runs]).val_images)) \
        if 'val_images' in a_runs and len(a_runs) else 0
    base = base or prior(metric, n_images or PRIOR_IMAGES)
    unit = scale(metric)
    d = make_evidence(evals, n_resamples)(a_runs, b_runs, metric) \
        if evals is not None else None
    if d is not None and not d.seeds_from_prior:
        return Noise(math.sqrt(d.image_var), d.run_sd, d.seed_image_sd,
                     d.n_images, f'measured on {d.n_a}+{d.n_b} runs: seed '
                     f'SD from {d.seed_source}, seed x image part and image'
                     f' term from {d.n_resamples_text()}')
    if d is not None:
        c = 1 / d.n_a + 1 / d.n_b
        image_var = max(d.image_var - c * base.seed_image_sd ** 2, 0.0)
        return dataclasses.replace(
            base, image_sd=math.sqrt(image_var), n_images=d.n_images,
            source=f'image SD from a paired image bootstrap of 1 run per '
            f'arm on {d.n_images} images; seed SD and its split from the '
            f'prior ({base.source})')
    s2, dof = pooled_seed_var(unit * a_runs[metric].to_numpy(float),
                              unit * b_runs[metric].to_numpy(float))
    if dof and s2 > 0:
        fraction = base.run_sd ** 2 / base.seed_sd ** 2 \
            if base.seed_sd > 0 else 1.0
        return dataclasses.replace(
            base, run_sd=math.sqrt(fraction * s2),
            seed_image_sd=math.sqrt((1 - fraction) * s2),
            source=f'seed SD from these runs ({dof} dof), split as the '
            f'prior; image SD from the prior ({base.source})')
    return base


def words(verdict: str, kind: str, effect: Optional[float],
          margin: float, resolvable: float) -> str:
    """The sentence that says what the grid could have seen."""
    if effect is None:
        return f'{verdict}: no claimed size to set against'
    g = gap(kind, effect, margin)
    claim = (f'the claim is {effect:+.2f} AP' + (
        f', {g:.2f} from the margin {margin:g}' if kind.startswith('small')
        else ''))
    can = (f'the grid resolves a distance from the verdict\'s boundary >= '
           f'{resolvable:.2f} AP')
    if verdict == 'inconclusive' and resolvable > abs(g):
        return (f'inconclusive: {can} but {claim}; it could not have '
                f'seen it')
    if verdict == 'inconclusive':
        return f'inconclusive: {can} and {claim}; it should have seen it'
    return f'{verdict}: {can}; {claim}'
