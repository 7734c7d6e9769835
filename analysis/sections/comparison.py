"""The report's frame: the comparison table (one row per model/arm/dataset,
AP with its interval over seeds) and AP by object size. The writer
(:func:`analysis.report.write_report`) puts them first, after the
provenance, and then the sections of :mod:`analysis.sections.report_order`.
"""
from typing import Optional, Tuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from experiments.store import TASKS

# Table task -> its label in headings: box -> Box, mask -> Mask.
TASK_LABELS = tuple((task, task.capitalize()) for _, task in TASKS)
SIZE_BINS = (('APs', 'small'), ('APm', 'medium'), ('APl', 'large'))
TABLE_METRICS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')
# Above this many cores' worth of CPU used by other processes while a model
# was timed, its milliseconds are inflated (experiments/measure_cost.py
# warns at the same load).
LOADED_CORES = 0.25
COMPARISON_CAPTION = (
    'One row per model/arm/dataset. AP x100 (COCO); "± x" is the half-width '
    'of the 95% interval over seeds (two or more seeds). ms: median latency '
    "per image at batch 1; load (cores): how many cores' worth of CPU "
    'other processes used while it was timed -- above '
    f'{LOADED_CORES} the ms is inflated and marked "(under load)", not a '
    'speed of the model. iters and wall (s): training iterations and wall '
    'time; weights: what the runs started from; runs: their run ids.')


def latency_cells(ms: float, load: float) -> Tuple[str, str]:
    """The comparison table's ``ms`` and ``load (cores)`` cells.

    Args:
        ms: Median latency per image (NaN: not timed).
        load: Cores' worth of CPU other processes used while it was timed
            (NaN: not recorded).

    Returns:
        ``('14423.7 (under load)', '13.00')`` for a timing above
        :data:`LOADED_CORES`, ``('41.2', '0.02')`` for a clean one, ``'–'``
        for what is missing.
    """
    if ms != ms:
        return '–', '–'
    if load != load:
        return f'{ms:.1f}', '–'
    flag = ' (under load)' if load > LOADED_CORES else ''
    return f'{ms:.1f}{flag}', f'{load:.2f}'


def ap_cell(mean: float, ci: float, n: int) -> str:
    """AP (x100) with its 95% interval over seeds, or why there is none."""
    if n == 0 or mean != mean:
        return '–'
    if ci == ci:
        return f'{100 * mean:.1f} ± {100 * ci:.1f}'
    return f'{100 * mean:.1f}'


def comparison_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The report's main table: one row per model/arm/dataset."""
    rows = []
    for _, r in summary.iterrows():
        row = {'model': r.model, 'arm': r.arm, 'dataset': r.dataset,
               'status': r.status, 'seeds': int(r.n_seeds)}
        for task, label in TASK_LABELS:
            for m in TABLE_METRICS:
                col = f'{task}_{m}'
                row[f'{label} {m}'] = ap_cell(r[col], r[f'{col}_ci'],
                                            int(r.n_seeds))
        row['params (M)'] = ('–' if r.params != r.params
                             else f'{r.params / 1e6:.2f}')
        row['GFLOPs'] = '–' if r.gflops != r.gflops else f'{r.gflops:.2f}'
        row['ms'], row['load (cores)'] = latency_cells(
            r.latency_ms, r.get('latency_other_load', float('nan')))
        row['iters'] = '–' if r.iterations != r.iterations \
            else f'{int(r.iterations)}'
        row['wall (s)'] = '–' if r.wall_time_s != r.wall_time_s \
            else f'{r.wall_time_s:.0f}'
        row['weights'] = r.weights or '–'
        row['runs'] = r.run_ids or '–'
        rows.append(row)
    return pd.DataFrame(rows)


def plot_ap_by_size(summary: pd.DataFrame, path: str) -> Optional[str]:
    """Grouped bars of APs/APm/APl per model, box and mask side by side.

    Error bars are 95% intervals over seeds where there are two or more.
    Returns None when no run has finished.
    """
    done = summary[summary.n_seeds > 0]
    if done.empty:
        return None
    labels = [f'{r.model}/{r.arm}' + (f'\n{r.dataset}'
                                      if summary.dataset.nunique() > 1
                                      else '')
              for _, r in done.iterrows()]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    x = np.arange(len(SIZE_BINS))
    width = 0.8 / len(done)
    for ax, (task, label) in zip(axes, TASK_LABELS):
        for i, ((_, r), name) in enumerate(zip(done.iterrows(), labels)):
            means = [100 * r[f'{task}_{m}'] for m, _ in SIZE_BINS]
            cis = [100 * r[f'{task}_{m}_ci'] for m, _ in SIZE_BINS]
            has_ci = any(c == c for c in cis)
            ax.bar(x + (i - (len(done) - 1) / 2) * width,
                   np.nan_to_num(means), width,
                   label=f'{name} (n={int(r.n_seeds)})',
                   yerr=[0 if c != c else c for c in cis] if has_ci
                   else None, capsize=3)
        ax.set_xticks(x, [f'{b}\n({m})' for m, b in SIZE_BINS])
        ax.set_title(f'{label} AP by object size')
        ax.grid(axis='y', alpha=0.3)
    axes[0].set_ylabel('AP (COCO, x100)')
    axes[1].legend(fontsize=8, loc='upper left')
    fig.text(0.01, 0.01, 'Bars: mean over n seeds; error bars: 95% interval '
             'over seeds (n >= 2). Datasets: '
             + ', '.join(sorted(done.dataset.unique())), fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
