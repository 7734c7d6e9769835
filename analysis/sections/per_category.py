"""Per-category AP per arm, and per-category differences between arms with
image-bootstrap intervals (which differences are real).

mmdet's ``CocoMetric(classwise=True)`` prints per-class AP for one run; here
every arm gets it (mean over seeds), and each arm is compared with the
grid's first arm on the same resamples of the validation images
(:mod:`analysis.coco_eval.bootstrap`), so a category's difference comes with
its 95% basic interval and is called real only when that interval excludes
zero.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from analysis.coco_eval.bootstrap import (basic_interval,
                                          bootstrap_category_ap, seed_mean)
from analysis.coco_eval.image_eval import ImageEval
from analysis.coco_eval.resampled import category_ap
from analysis.report import Section
from analysis.sections.provenance import caption, gt_json
from experiments.store import TASKS, evaluation_gt_file


def per_category_ap(ev: ImageEval, weights: Optional[np.ndarray] = None,
                    area: str = 'all') -> np.ndarray:
    """AP (0.50:0.95) of each category in ``ev.cat_ids`` order; NaN for a
    category without ground truth on these images."""
    return category_ap(ev.precision(weights, area))


def category_differences(arms: Dict[str, Sequence[ImageEval]],
                         reference: str, n_resamples: int,
                         seed: int = 0) -> pd.DataFrame:
    """Per category and arm: AP(arm) - AP(reference) with its 95% basic
    interval, every arm on the same resamples of the images (seeds averaged
    on each).

    Raises:
        ValueError: The arms were evaluated on other images or categories.
    """
    cats = {tuple(ev.cat_ids) for evals in arms.values() for ev in evals}
    if len(cats) > 1:
        raise ValueError('the arms were evaluated on other categories')
    samples = bootstrap_category_ap(arms, n_resamples, seed)
    values = {arm: seed_mean([per_category_ap(ev) for ev in evals])
              for arm, evals in arms.items()}
    rows = []
    for arm in arms:
        if arm == reference:
            continue
        diff = samples[arm] - samples[reference]
        for k, cat in enumerate(next(iter(cats))):
            value = float(values[arm][k] - values[reference][k])
            lo, hi = basic_interval(diff[:, k], value)
            rows.append(dict(arm=arm, cat_id=cat, diff=value, lo=lo, hi=hi))
    return pd.DataFrame(rows)


def _fmt(v: float) -> str:
    return '–' if v != v else f'{100 * v:.1f}'


def per_category_section(df: pd.DataFrame, evals, n_resamples: int
                         ) -> Section:
    """Tables of per-category AP and of differences to the first arm.

    Args:
        df: This grid's results.
        evals: The report's :class:`~analysis.coco_eval.run_eval.RunEvals`.
        n_resamples: Bootstrap resamples.
    """
    section = Section('Per-category AP, and which differences are real', [])
    done = df[df.status == 'finished']
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
            ann = evaluation_gt_file(runs.work_dir.iloc[0])
            names = {c['id']: c['name'] for c in
                     gt_json(ann)['categories']} if ann else {}
            means = {arm: seed_mean([per_category_ap(e) for e in ev])
                     for arm, ev in per_arm.items()}
            for k, cat in enumerate(first.cat_ids):
                ap_rows.append(dict(
                    dataset=dataset, task=task,
                    category=names.get(cat, str(cat)),
                    **{arm: _fmt(m[k]) for arm, m in means.items()}))
            if len(per_arm) < 2:
                continue
            reference = next(iter(per_arm))
            try:
                diff = category_differences(per_arm, reference, n_resamples)
            except ValueError as e:
                section.text.append(f'{dataset} ({task}): arms not compared, '
                                    f'{e}.')
                continue
            for d in diff.itertuples():
                real = d.lo > 0 or d.hi < 0
                diff_rows.append(dict(
                    dataset=dataset, task=task,
                    comparison=f'{d.arm} - {reference}',
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
    section.add_table(pd.DataFrame(ap_rows), (
        'AP x100 per category: one row per dataset, task and category, one '
        'column per arm (mean over its seeds; "–": no ground truth of the '
        'category).'))
    if diff_rows:
        section.add_table(pd.DataFrame(diff_rows), (
            'Differences to the first arm: diff = AP(arm) - AP(first arm) '
            'per category (AP x100) with its 95% paired image-bootstrap '
            'interval; real: "yes" when the interval excludes zero.'))
    return section
