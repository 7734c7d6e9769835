"""How training went: every run's mmengine scalars, seeds overlaid.

mmengine's ``LocalVisBackend`` writes ``<run>/<timestamp>/vis_data/
scalars.json`` per attempt: training records (``loss``, each ``loss_*``
term, ``lr``, the self-adjusting loss's ``sasl1_beta_*``) at each logging
interval, and validation records (``coco/bbox_mAP``, ``coco/segm_mAP``) at
each validation. A resumed run has one file per attempt; they are joined by
step, the later attempt winning where both logged one. The self-adjusting
loss's beta gets a figure of its own.
"""
import glob
import json
import os.path as osp
from typing import Dict, List

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.figure_labels import plain_log_ticks
from analysis.report import Section, save_figure
from analysis.sections.provenance import caption

VAL_KEYS = ('coco/bbox_mAP', 'coco/segm_mAP')
# The self-adjusting loss's beta, mean over its coordinates.
BETA = 'sasl1_beta (mean)'


def read_scalars(run_dir: str) -> pd.DataFrame:
    """One row per logged step (``step`` column), training and validation
    records merged; empty when the run logged nothing."""
    records: Dict[int, dict] = {}
    for path in sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut by a kill
                step = rec.get('step', rec.get('iter'))
                if step is None:
                    continue
                records.setdefault(int(step), {}).update(rec)
    if not records:
        return pd.DataFrame()
    df = pd.DataFrame([dict(r, step=s) for s, r in sorted(records.items())])
    beta = [c for c in df.columns if c.startswith('sasl1_beta_')]
    if beta:
        df[BETA] = df[beta].mean(axis=1)
    return df


def _panels(curves: List[pd.DataFrame]) -> List[str]:
    columns = set().union(*(c.columns for c in curves))
    losses = sorted(c for c in columns if c.startswith('loss_'))
    panels = ['loss'] + losses + ['lr']
    if BETA in columns:
        panels.append(BETA)
    panels += [k for k in VAL_KEYS if k in columns]
    return [p for p in panels if p in columns]


def training_curves_section(df: pd.DataFrame, out_dir: str) -> Section:
    section = Section('Training curves', [])
    runs = df[df.work_dir.notna() & df.status.isin(['finished', 'failed'])]
    curves, labels, colors = [], [], {}
    for r in runs.itertuples():
        c = read_scalars(r.work_dir)
        if c.empty:
            continue
        arm = f'{r.model}/{r.arm}'
        colors.setdefault(arm, f'C{len(colors) % 10}')
        curves.append(c)
        labels.append((arm, int(r.seed), r.status))
    if not curves:
        section.text.append('No run logged training scalars.')
        return section
    panels = _panels(curves)
    ncols = 3
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(4.2 * ncols, 2.8 * nrows))
    for ax, panel in zip(axes.flat, panels):
        for c, (arm, seed, status) in zip(curves, labels):
            if panel not in c or c[panel].isna().all():
                continue
            s = c[['step', panel]].dropna()
            ax.plot(s.step, s[panel], color=colors[arm], alpha=0.8,
                    marker='o' if panel in VAL_KEYS else None,
                    linestyle='--' if status == 'failed' else '-',
                    label=f'{arm} seed {seed}')
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel('iteration', fontsize=8)
        ax.grid(alpha=0.3)
        if panel.startswith('loss') and (
                ax.get_ylim()[0] > 0 and ax.get_ylim()[1] > 0):
            ax.set_yscale('log')
            plain_log_ticks(ax.yaxis)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis('off')
    handles, names = axes.flat[0].get_legend_handles_labels()
    # The legend goes above the panels, in a band kept free for it: over
    # the panels it would cover a curve or an axis label.
    ncol = min(len(names), 4)
    band = (0.2 * np.ceil(len(names) / ncol) + 0.15) / fig.get_figheight()
    fig.legend(handles, names, loc='upper center', ncol=ncol, fontsize=7,
               bbox_to_anchor=(0.5, 1.0), frameon=False)
    section.figures.append(save_figure(
        fig, osp.join(out_dir, 'training_curves.png'),
        rect=(0, 0, 1, 1 - band)))
    section.text.append(
        'mmengine scalars of every finished or failed run (dashed: failed), '
        'one colour per model/arm, one line per seed (legend above the '
        'panels); loss panels on a log scale; validation AP (coco/*_mAP, a '
        'fraction) where the schedule validated. ' + caption(df))
    return section


def beta_section(df: pd.DataFrame, out_dir: str) -> Section:
    section = Section('Self-adjusting smooth L1: beta over training', [])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    drawn = 0
    for r in df[df.status == 'finished'].itertuples():
        scalars = read_scalars(r.work_dir)
        if BETA not in scalars:
            continue
        beta = scalars[['step', BETA]].dropna()
        ax.plot(beta.step, beta[BETA], label=f'{r.model}/{r.arm}/seed{r.seed}')
        drawn += 1
    if not drawn:
        plt.close(fig)
        section.text.append('No finished run logged sasl1_beta_* (the '
                            'self-adjusting loss is not in these runs).')
        return section
    ax.set_xlabel('iteration')
    ax.set_ylabel('beta (mean of dx, dy, dw, dh)')
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    path = save_figure(fig, osp.join(out_dir, 'beta_over_training.png'))
    section.text.append('Mean of the four coordinates\' beta as logged each '
                        'logging interval (clipped at beta_max 0.11). '
                        + caption(df))
    section.figures.append(path)
    return section
