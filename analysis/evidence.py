"""What a verdict's interval is made of: each run's metric on shared image
resamples, turned into an effect with every variance term
(:mod:`uncertainty.difference`).

:func:`paired_evidence` is the step the report takes for any per-run
statistic that can be re-computed on weighted images: COCO AP from saved
detections (:func:`make_evidence`), or the simulated per-image metrics of
the calibration (:mod:`analysis.calibration`), so the calibration exercises
the report's own code.
"""
import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pandas as pd

from analysis.coco_eval.bootstrap import Estimate, bootstrap_runs
from analysis.coco_eval.constants import metric_task_area
from analysis.coco_eval.image_eval import ImageEval
from analysis.coco_eval.resampled import resampled_stats
from analysis.coco_eval.run_eval import RunEvals
from analysis.latency import paired_latency
from uncertainty.difference import Difference, from_resamples
from uncertainty.noise import Noise, prior

# (runs of a, runs of b, metric) -> the effect, or None without evidence.
Evidence = Callable[[pd.DataFrame, pd.DataFrame, str], Optional[Difference]]


def scale(metric: str) -> float:
    """Display units per results-table unit: AP points for AP columns."""
    return 100.0 if 'AP' in metric else 1.0


def paired_evidence(a_runs: Sequence[Any], b_runs: Sequence[Any],
                    n_images: int,
                    value: Callable[[Any, Optional[np.ndarray]],
                                    np.ndarray],
                    n_resamples: int, noise: Noise) -> Difference:
    """The effect of arm a over arm b, paired on image resamples.

    Args:
        a_runs, b_runs: One entry per seed of each arm.
        n_images: Validation images, shared by every run.
        value: ``value(run, counts)``: the metric in display units on each
            row of a (k, n_images) block of draw counts; ``counts=None``
            means the full set once (returns a scalar).
        n_resamples: Image resamples.
        noise: The prior, for what the runs cannot show.
    """
    runs = list(a_runs) + list(b_runs)
    samples = bootstrap_runs(runs, n_images, value, n_resamples)
    full = np.array([float(value(r, None)) for r in runs])
    k = len(a_runs)
    return from_resamples(full[:k], full[k:], samples[:, :k],
                          samples[:, k:], n_images, noise)


def ap_value(area: str) -> Callable[[ImageEval, Optional[np.ndarray]],
                                    np.ndarray]:
    """A run's AP (points) in ``area`` on weighted images."""
    def value(ev, counts):
        if counts is None:
            return 100 * ev.ap(None, area)
        return 100 * np.array([ev.ap(w, area) for w in counts])
    # Every resample at once, computed once per run (the same numbers).
    value.resampled = lambda ev, n_resamples, seed: 100 * resampled_stats(
        ev, area, n_resamples, seed)['ap']
    return value


def latency_difference(est: Estimate) -> Difference:
    """A paired latency bootstrap (images and timing rounds) as a
    Difference: no seed term, timings do not depend on a training seed."""
    se = (est.hi - est.lo) / (2 * 1.96)
    return Difference(est.value, est.lo, est.hi, math.inf, se ** 2, 0.0,
                      float('nan'), float('nan'), 0.0,
                      'none (a timing does not depend on the seed)',
                      'paired bootstrap over timed images and rounds',
                      est.n_seeds, est.n_seeds, est.n_images)


def make_evidence(evals: RunEvals, n_resamples: int) -> Evidence:
    """Paired image-resample evidence for the verdicts, when detections
    (or, for latency, per-image timings) exist."""
    def evidence(a_runs, b_runs, metric):
        if metric == 'latency_ms':
            est = paired_latency(a_runs, b_runs, n_resamples)
            return None if est is None else latency_difference(est)
        task_area = metric_task_area(metric)
        if task_area is None:
            return None
        iou_type, area = task_area
        a = evals.for_runs(a_runs, iou_type)
        b = evals.for_runs(b_runs, iou_type)
        if not a or not b or any(e.img_ids != a[0].img_ids for e in a + b):
            return None
        n = a[0].num_images
        return paired_evidence(a, b, n, ap_value(area), n_resamples,
                               prior(metric, n))
    return evidence
