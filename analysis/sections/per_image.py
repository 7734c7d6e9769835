"""Sections re-evaluated per image from the saved detections: AP by object
size (COCO's ranges and fine bins), AP at each IoU threshold, and
image-bootstrap intervals.

Everything here starts from finished runs' saved detections
(``<run>/detections/val.{bbox,segm}.json``) and the ground truth their
config names, re-evaluated once per image
(:class:`~analysis.coco_eval.run_eval.RunEvals`).
"""
import os.path as osp
from typing import List, Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.coco_eval.bootstrap import bootstrap_ap, estimate
from analysis.coco_eval.constants import FINE_BINS, IOU_THRESHOLDS
from analysis.coco_eval.run_eval import RunEvals
from analysis.report import Section, save_figure
from analysis.sections.provenance import caption
from experiments.store import TASKS


def _arm_evals(df: pd.DataFrame, evals: RunEvals):
    """(grid, model, arm, dataset, runs, task, evals) of every finished arm
    and task that has saved detections."""
    done = df[df.status == 'finished']
    for (grid, model, arm, dataset), runs in done.groupby(
            ['grid', 'model', 'arm', 'dataset'], sort=False):
        for iou_type, task in TASKS:
            ev = evals.for_runs(runs, iou_type)
            if ev:
                yield grid, model, arm, dataset, runs, task, ev


def _plot_by_task(table: pd.DataFrame, x, columns: List[str], title: str,
                  path: str, xticks: Optional[List[str]] = None,
                  xlabel: str = '') -> str:
    """Box and mask panels, one line per arm over ``columns`` of ``table``."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, (_, task) in zip(axes, TASKS):
        for _, r in table[table.task == task].iterrows():
            ax.plot(x, [r[c] for c in columns], marker='o',
                    label=f'{r.arm} ({r.dataset}, n={r.seeds})')
        if xticks:
            ax.set_xticks(x, xticks, rotation=30, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_title(f'{task} {title}')
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('AP (x100)')
    axes[1].legend(fontsize=7)
    return save_figure(fig, path)


def fine_bins_section(df: pd.DataFrame, evals: RunEvals,
                      out_dir: str) -> Section:
    rows, counts = [], {}
    for _, model, arm, dataset, _, task, ev in _arm_evals(df, evals):
        row = dict(arm=f'{model}/{arm}', dataset=dataset, task=task,
                   seeds=len(ev))
        for name in ('small', 'medium', 'large', *FINE_BINS):
            aps = [e.ap(area=name) for e in ev]
            row[name] = np.nanmean(aps) * 100 if not all(
                a != a for a in aps) else float('nan')
        rows.append(row)
        counts[dataset] = {n: ev[0].gt_count(n) for n in FINE_BINS}
    table = pd.DataFrame(rows)
    section = Section('Small objects: AP by object size', [
        'AP x100 per COCO size range and per 8 log-spaced area bins (named '
        'by the side of an equal-area square), mean over seeds, recomputed '
        'from the saved detections; a bin with few objects gives a noisy '
        'AP. ' + caption(df)])
    if table.empty:
        section.text.append('No finished run has saved detections.')
        return section
    section.add_table(table.round(1), (
        'AP x100 per size: one row per arm, dataset and task (box or '
        'mask); small/medium/large are COCO\'s ranges, the other columns '
        'the area bins; seeds: how many runs the mean is over.'))
    section.add_table(
        pd.DataFrame(counts).T.rename_axis('dataset').reset_index(),
        'Ground-truth objects per area bin, one row per dataset: how many '
        'objects each AP above is computed on.')
    section.figures.append(_plot_by_task(
        table, range(len(FINE_BINS)), list(FINE_BINS),
        'AP by object-area bin', osp.join(out_dir, 'ap_by_fine_bin.png'),
        xticks=list(FINE_BINS)))
    return section


def iou_sweep_section(df: pd.DataFrame, evals: RunEvals,
                      out_dir: str) -> Section:
    columns = [f'{t:.2f}' for t in IOU_THRESHOLDS]
    rows = []
    for _, model, arm, dataset, _, task, ev in _arm_evals(df, evals):
        per_t = np.nanmean([[e.summary()[f'AP@{c}'] for c in columns]
                            for e in ev], axis=0)
        rows.append(dict(arm=f'{model}/{arm}', dataset=dataset, task=task,
                         seeds=len(ev),
                         **{c: 100 * v for c, v in zip(columns, per_t)}))
    section = Section('AP at each IoU threshold', [
        'AP x100 at IoU 0.50:0.05:0.95 (COCO\'s AP is their mean), mean '
        'over seeds, from the saved detections. ' + caption(df)])
    table = pd.DataFrame(rows)
    if table.empty:
        section.text.append('No finished run has saved detections.')
        return section
    section.add_table(table.round(1), (
        'AP x100 at each IoU threshold (column), one row per arm, dataset '
        'and task; seeds: how many runs the mean is over.'))
    section.figures.append(_plot_by_task(
        table, IOU_THRESHOLDS, columns, 'AP vs IoU threshold',
        osp.join(out_dir, 'ap_vs_iou.png'), xlabel='IoU threshold'))
    return section


def bootstrap_section(df: pd.DataFrame, evals: RunEvals,
                      n_resamples: int) -> Section:
    rows = []
    for grid, model, arm, dataset, runs, task, ev in _arm_evals(df, evals):
        samples = bootstrap_ap({'x': ev}, n_resamples)['x']
        e = estimate(ev, samples)
        rows.append(dict(grid=grid, arm=f'{model}/{arm}', dataset=dataset,
                         task=task, AP=f'{100 * e.value:.1f}',
                         **{'95% interval': f'[{100 * e.lo:.1f}, '
                            f'{100 * e.hi:.1f}]'},
                         seeds=e.n_seeds, images=e.n_images,
                         runs=','.join(runs.run_id)))
    section = Section('Uncertainty: image-bootstrap intervals', [
        f'Basic bootstrap over validation images ({n_resamples} resamples, '
        f'seeds averaged on each resample): the interval reflects which '
        f'images were drawn, not seed-to-seed variation. ' + caption(df)])
    section.add_table(pd.DataFrame(rows), (
        'AP x100 of each arm and task with its 95% image-bootstrap '
        'interval; seeds and images: what it is computed on; runs: the run '
        'ids.'))
    return section
