"""Latency differences between arms, paired on the images they were timed on.

``experiments/measure_cost.py`` keeps every timed image's milliseconds in
``<run>/cost.json``. Two arms timed on the same device and images give a
paired comparison: the difference of median latencies, with a basic
bootstrap interval over images (the same resampling unit as the AP
intervals). Seeds of one arm are averaged per image first. Runs timed on
different devices are never compared.

The intervals are percentile intervals, not the basic (reflected) ones used
for AP: per-image times are right-skewed (an occasional slow image), and
reflecting a skewed bootstrap distribution of a median around the estimate
can put the lower end below zero.
"""
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd

from analysis.bootstrap import Estimate, resample_counts
from experiments.run_store import COST, latency_device, read_json


def per_image_latency(runs: pd.DataFrame
                      ) -> Optional[Tuple[str, Dict[str, float], int]]:
    """``(device, {image id: ms}, timed runs)``, averaged over the seeds.

    None when a run has no ``cost.json`` or the runs were timed on
    different devices.
    """
    devices, tables = set(), []
    for work_dir in runs.work_dir:
        cost = read_json(osp.join(str(work_dir), COST))
        if not cost or not cost.get('per_image_ms'):
            continue
        devices.add(latency_device(cost))
        tables.append(cost['per_image_ms'])
    if not tables or len(devices) != 1:
        return None
    shared = set.intersection(*(set(t) for t in tables))
    return (devices.pop(), {k: float(np.mean([t[k] for t in tables]))
                            for k in sorted(shared)}, len(tables))


def latency_estimate(runs: pd.DataFrame, n_resamples: int = 1000,
                     seed: int = 0) -> Optional[Estimate]:
    """One arm's median latency (ms) with its image-bootstrap interval."""
    found = per_image_latency(runs)
    if found is None or len(found[1]) < 2:
        return None
    x = np.array(list(found[1].values()))
    value = float(np.median(x))
    medians = [np.median(np.repeat(x, w.astype(int)))
               for counts in resample_counts(len(x), n_resamples, seed)
               for w in counts]
    lo, hi = np.percentile(medians, [2.5, 97.5])
    return Estimate(value, float(lo), float(hi), len(x), found[2],
                    n_resamples)


def paired_latency(a_runs: pd.DataFrame, b_runs: pd.DataFrame,
                   n_resamples: int = 1000,
                   seed: int = 0) -> Optional[Estimate]:
    """median(a) - median(b) in ms over the images both were timed on."""
    a, b = per_image_latency(a_runs), per_image_latency(b_runs)
    if a is None or b is None or a[0] != b[0]:
        return None
    ids = sorted(set(a[1]) & set(b[1]))
    if len(ids) < 2:
        return None
    xa = np.array([a[1][i] for i in ids])
    xb = np.array([b[1][i] for i in ids])
    value = float(np.median(xa) - np.median(xb))
    diffs = []
    for counts in resample_counts(len(ids), n_resamples, seed):
        for w in counts:
            idx = np.repeat(np.arange(len(ids)), w.astype(int))
            diffs.append(np.median(xa[idx]) - np.median(xb[idx]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return Estimate(value, float(lo), float(hi), len(ids), min(a[2], b[2]),
                    n_resamples)
