"""Latency of arms, and differences paired on the images and rounds timed.

``experiments/measure_cost.py`` keeps every timed image's milliseconds in
``<run>/cost.json``, per timing round (``per_round_ms``; each round visits
every run of the grid in turn). An arm's latency is the median over its
(round, image) timings; seeds of one arm are averaged cell by cell.

The intervals resample images *and* rounds: images because the test set is
a sample, rounds because a machine's speed drifts between them, and that
drift is noise an image bootstrap alone would hide. Two arms are resampled
with the same draws (round r of both arms ran in the same pass over the
grid), so common drift cancels in a difference. Runs timed on different
devices are never compared.

These are percentile intervals, not the basic (reflected) ones used for
AP: per-image times are right-skewed (an occasional slow image), and
reflecting a skewed bootstrap distribution of a median around the estimate
can put the lower end below zero.
"""
import os.path as osp
from typing import List, Optional, Tuple

import numpy as np
import pandas as pd

from analysis.coco_eval.bootstrap import Estimate, resample_counts
from experiments.store import COST, latency_device, read_json


def timing_matrix(runs: pd.DataFrame, cost_file: str = COST
                  ) -> Optional[Tuple[str, List[str], np.ndarray, int]]:
    """``(device, image ids, ms of shape (rounds, images), timed runs)``.

    Averaged over the runs' seeds. None when no run has timings or the
    runs were timed on different devices. ``cost_file``: ``cost.json``
    (PyTorch) or ``cost_onnxruntime.json``.
    """
    devices, tables = set(), []
    for work_dir in runs.work_dir:
        cost = read_json(osp.join(str(work_dir), cost_file))
        if not cost or not cost.get('per_image_ms'):
            continue
        devices.add(latency_device(cost))
        tables.append(cost.get('per_round_ms') or [cost['per_image_ms']])
    if not tables or len(devices) != 1:
        return None
    ids = sorted(set.intersection(*(set(r) for t in tables for r in t)),
                 key=int)
    n_rounds = min(len(t) for t in tables)
    x = np.mean([[[t[r][i] for i in ids] for r in range(n_rounds)]
                 for t in tables], axis=0)
    return devices.pop(), ids, x, len(tables)


def _medians(matrices: List[np.ndarray], n_resamples: int,
             seed: int) -> np.ndarray:
    """Median of each matrix on shared (rounds, images) resamples."""
    n_rounds, n_images = matrices[0].shape
    rng = np.random.default_rng(seed + 1)
    out = []
    for counts in resample_counts(n_images, n_resamples, seed):
        for w in counts:
            rounds = rng.integers(0, n_rounds, n_rounds)
            reps = np.tile(w.astype(int), n_rounds)
            out.append([np.median(np.repeat(x[rounds].ravel(), reps))
                        for x in matrices])
    return np.asarray(out)


def latency_estimate(runs: pd.DataFrame, n_resamples: int = 1000,
                     seed: int = 0, cost_file: str = COST
                     ) -> Optional[Estimate]:
    """One arm's median latency (ms) with its 95% interval."""
    found = timing_matrix(runs, cost_file)
    if found is None or len(found[1]) < 2:
        return None
    _, ids, x, n_runs = found
    samples = _medians([x], n_resamples, seed)[:, 0]
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return Estimate(float(np.median(x)), float(lo), float(hi), len(ids),
                    n_runs, n_resamples)


def paired_latency(a_runs: pd.DataFrame, b_runs: pd.DataFrame,
                   n_resamples: int = 1000,
                   seed: int = 0) -> Optional[Estimate]:
    """median(a) - median(b) in ms over the images both were timed on."""
    a, b = timing_matrix(a_runs), timing_matrix(b_runs)
    if a is None or b is None or a[0] != b[0]:
        return None
    ids = sorted(set(a[1]) & set(b[1]), key=int)
    if len(ids) < 2:
        return None
    n_rounds = min(len(a[2]), len(b[2]))

    def columns(found):
        where = {img: k for k, img in enumerate(found[1])}
        return found[2][:n_rounds, [where[i] for i in ids]]

    xa, xb = columns(a), columns(b)
    samples = _medians([xa, xb], n_resamples, seed)
    lo, hi = np.percentile(samples[:, 0] - samples[:, 1], [2.5, 97.5])
    return Estimate(float(np.median(xa) - np.median(xb)), float(lo),
                    float(hi), len(ids), min(a[3], b[3]), n_resamples)
