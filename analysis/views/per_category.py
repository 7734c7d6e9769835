"""Per-category AP per arm, and per-category differences between arms with
image-bootstrap intervals (which differences are real).

mmdet's ``CocoMetric(classwise=True)`` prints per-class AP for one run; here
every arm gets it (mean over seeds), and each arm is compared with the
grid's first arm on the same resamples of the validation images
(:mod:`analysis.bootstrap`), so a category's difference comes with its 95%
basic interval and is called real only when that interval excludes zero.
"""
import json
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from analysis.bootstrap import basic_interval, resample_counts
from analysis.image_eval import ImageEval
from analysis.report import Section
from analysis.views.provenance import caption, gt_file

TASKS = (('bbox', 'box'), ('segm', 'mask'))


def per_category_ap(ev: ImageEval, weights: Optional[np.ndarray] = None,
                    area: str = 'all') -> np.ndarray:
    """AP (0.50:0.95) of each category in ``ev.cat_ids`` order; NaN for a
    category without ground truth on these images."""
    p = ev.precision(weights, area)
    valid = p > -1
    counts = valid.sum(axis=(0, 1))
    sums = np.where(valid, p, 0.0).sum(axis=(0, 1))
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _seed_mean(evals: Sequence[ImageEval],
               weights: Optional[np.ndarray]) -> np.ndarray:
    with warnings.catch_warnings():
        # A category without ground truth on a resample is NaN in every
        # seed: its mean is NaN, which is the answer.
        warnings.simplefilter('ignore', RuntimeWarning)
        return np.nanmean(np.stack([per_category_ap(ev, weights)
                                    for ev in evals]), axis=0)


def paired_category_difference(a: Sequence[ImageEval],
                               b: Sequence[ImageEval],
                               n_resamples: int, seed: int = 0
                               ) -> pd.DataFrame:
    """Per category: AP(a) - AP(b) with its 95% basic interval.

    Both arms' seeds are averaged on each shared resample of the images.
    """
    if a[0].img_ids != b[0].img_ids or a[0].cat_ids != b[0].cat_ids:
        raise ValueError('a paired per-category bootstrap needs the same '
                         'images and categories')
    value = _seed_mean(a, None) - _seed_mean(b, None)
    samples = []
    for counts in resample_counts(a[0].num_images, n_resamples, seed):
        for w in counts:
            samples.append(_seed_mean(a, w) - _seed_mean(b, w))
    samples = np.stack(samples)
    rows = []
    for k, cat in enumerate(a[0].cat_ids):
        lo, hi = basic_interval(samples[:, k], float(value[k]))
        rows.append(dict(cat_id=cat, diff=float(value[k]), lo=lo, hi=hi))
    return pd.DataFrame(rows)


def _category_names(ann_file: str, cache: Dict[str, dict]) -> dict:
    if ann_file not in cache:
        with open(ann_file) as f:
            cache[ann_file] = {c['id']: c['name']
                               for c in json.load(f)['categories']}
    return cache[ann_file]


def _fmt(v: float) -> str:
    return '–' if v != v else f'{100 * v:.1f}'


def per_category_section(df: pd.DataFrame, evals, n_resamples: int
                         ) -> Section:
    """Tables of per-category AP and of differences to the first arm.

    Args:
        df: This grid's results.
        evals: The report's :class:`~analysis.claims_report.RunEvals`.
        n_resamples: Bootstrap resamples.
    """
    section = Section('Per-category AP, and which differences are real', [])
    done = df[df.status == 'finished']
    names_cache: Dict[str, dict] = {}
    ap_rows: List[dict] = []
    diff_rows: List[dict] = []
    for dataset, runs in done.groupby('dataset', sort=False):
        arms = list(runs.groupby(['model', 'arm'], sort=False))
        for iou_type, task in TASKS:
            per_arm = {f'{m}/{a}': evals.for_runs(g, iou_type)
                       for (m, a), g in arms}
            per_arm = {k: v for k, v in per_arm.items() if v}
            if not per_arm:
                continue
            first = next(iter(per_arm.values()))[0]
            ann = gt_file(runs.work_dir.iloc[0])
            names = _category_names(ann, names_cache) if ann else {}
            means = {arm: _seed_mean(ev, None) for arm, ev in per_arm.items()}
            for k, cat in enumerate(first.cat_ids):
                ap_rows.append(dict(
                    dataset=dataset, task=task,
                    category=names.get(cat, str(cat)),
                    **{arm: _fmt(m[k]) for arm, m in means.items()}))
            reference = next(iter(per_arm))
            for arm, ev in list(per_arm.items())[1:]:
                try:
                    diff = paired_category_difference(
                        ev, per_arm[reference], n_resamples)
                except ValueError as e:
                    section.text.append(f'{arm} vs {reference} on {dataset} '
                                        f'({task}): not compared, {e}.')
                    continue
                for d in diff.itertuples():
                    real = d.lo > 0 or d.hi < 0
                    diff_rows.append(dict(
                        dataset=dataset, task=task,
                        comparison=f'{arm} - {reference}',
                        category=names.get(d.cat_id, str(d.cat_id)),
                        diff=_fmt(d.diff),
                        **{'95% interval': f'[{_fmt(d.lo)}, {_fmt(d.hi)}]'},
                        real='yes' if real else 'no'))
    if not ap_rows:
        section.text.append('No finished run with saved detections.')
        return section
    section.text.append(
        'AP x100 (IoU 0.50:0.95) per category, mean over seeds. The '
        'difference table compares every arm with the first one of the '
        f'dataset, paired on {n_resamples} image-bootstrap resamples '
        '(seeds averaged on each); "real" means the 95% basic interval '
        'excludes zero. With many categories some intervals exclude zero by '
        'chance (1 in 20 at 95%). ' + caption(df))
    section.tables.append(pd.DataFrame(ap_rows))
    if diff_rows:
        section.tables.append(pd.DataFrame(diff_rows))
    return section
