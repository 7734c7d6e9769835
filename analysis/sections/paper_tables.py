"""The paper's tables beside ours, and RetinaMask's best-matching sweep.

Published numbers come from ``analysis/data/published.csv``
(:mod:`analysis.published`); ours are the mean over seeds of the runs with
the same grid/model/arm, from every grid's results table the report reads.
"""
import os.path as osp
from typing import List

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.published import published_table
from analysis.report import Section, save_figure
from analysis.verdicts import how_to_run


def paper_tables_section(all_results: pd.DataFrame) -> Section:
    pub = published_table()
    done = all_results[all_results.status == 'finished'].copy()
    if 'params' in done:
        done['params_M'] = done.params / 1e6
    rows = []
    for r in pub.itertuples():
        ours = done[(done.grid == r.grid) & (done.model == r.model)
                    & (done.arm == r.arm)]
        vals = ours[r.metric].dropna().to_numpy(float) if r.metric in ours \
            else np.array([])
        scale = 1.0 if r.metric in ('params_M', 'latency_ms') else 100.0
        mean = vals.mean() * scale if vals.size else float('nan')
        ours_text = 'not run' if not vals.size else f'{mean:.1f}'
        delta = '–' if not vals.size else f'{mean - r.value:+.1f}'
        if r.metric == 'latency_ms' and vals.size:
            # The paper's milliseconds are from its GPU: a delta against
            # another device would mean nothing.
            devices = ', '.join(sorted(set(ours.latency_device.dropna())))
            ours_text, delta = f'{mean:.1f} ({devices})', 'other device'
        weights = ', '.join(sorted(set(ours.weights.dropna()))) \
            if 'weights' in ours and vals.size else ''
        recipe = recipe_text(ours) if vals.size else ''
        if vals.size and recipe != 'paper' and delta != 'other device':
            delta = f'{delta} (not the paper\'s recipe)'
        rows.append(dict(table=r.table, row=r.row, metric=r.metric,
                         published=r.value, ours=ours_text, delta=delta,
                         seeds=len(vals), batch=batch_text(ours)
                         if vals.size else '', recipe=recipe,
                         weights=weights, source=r.source, grid=r.grid))
    table = pd.DataFrame(rows)
    # A table none of whose rows has a run is one line naming its grid,
    # not dozens of "not run" rows.
    ran = table.groupby('table', sort=False).seeds.transform('max') > 0
    missing = [f'{name} ({len(g)} published numbers): not run; '
               f'{how_to_run(g.grid.iloc[0])}'
               for name, g in table[~ran].groupby('table', sort=False)]
    section = Section('Paper tables beside ours', [
        'Published numbers are COCO val2017 as printed unless the source '
        'column says otherwise (the data file is analysis/data/'
        'published.csv). "ours" is the mean over seeds of the run with the '
        'same grid/model/arm; "weights" is what those runs started from '
        '(backbone ImageNet weights, "from scratch", or "evaluated: <file>" '
        'for a released checkpoint run without training); "batch" is the '
        'total batch as processes x images per process x accumulation steps '
        'and the base LR, "recipe" says whether the runs trained the '
        'paper\'s total batch, LR, warm-up and schedule ("paper") or how '
        'they differ (a scaling rule, a manual LR, a shortened schedule): '
        'such a delta is marked "not the paper\'s recipe" and compares '
        'different trainings (experiments/grid/batch_recipe.py); intervals '
        'are in the bootstrap and verdict sections. latency_ms rows: ours is '
        'the median per image on the device named (experiments/'
        'measure_cost.py); the paper timed its own GPU, so no delta.'])
    if ran.any():
        section.add_table(table[ran].drop(columns='grid'), (
            'One row per published number of a paper table that has a run '
            'of ours: published and ours (x100 for APs), delta = ours - '
            'published; seeds: runs in our mean.'))
    if missing:
        section.text.append('Tables without a run of ours: '
                            + '; '.join(missing) + '.')
    return section


def batch_text(runs: pd.DataFrame) -> str:
    """``16 = 8x2x1, LR 0.01`` for each distinct batch of ``runs``."""
    if 'total_batch' not in runs or runs.total_batch.isna().all():
        return 'not recorded'
    out = []
    for r in runs.drop_duplicates(['total_batch', 'world_size',
                                   'images_per_process', 'accumulation',
                                   'base_lr']).itertuples():
        out.append(f'{r.total_batch:.0f} = {r.world_size:.0f}x'
                   f'{r.images_per_process:.0f}x{r.accumulation:.0f}, '
                   f'LR {r.base_lr:g}')
    return '; '.join(out)


def recipe_text(runs: pd.DataFrame) -> str:
    """``paper`` when every run trained the paper's recipe, else how not."""
    if 'recipe' not in runs or runs.recipe.isna().all():
        return 'not recorded (run predates batch recording)'
    out = []
    for r in runs.drop_duplicates(['recipe', 'total_batch',
                                   'paper_total_batch', 'base_lr',
                                   'paper_lr']).itertuples():
        text = str(r.recipe)
        if r.total_batch != r.paper_total_batch:
            text += (f'; batch {r.total_batch:.0f} (paper '
                     f'{r.paper_total_batch:.0f})')
        if r.base_lr != r.paper_lr:
            text += f'; LR {r.base_lr:g} (paper {r.paper_lr:g})'
        out.append(text)
    return ' | '.join(sorted(set(out)))


def _arm_means(df: pd.DataFrame, arms: List[str], metric: str) -> pd.DataFrame:
    done = df[(df.status == 'finished') & df.arm.isin(arms)]
    return done.groupby(['grid', 'model', 'arm'], sort=False)[metric].agg(
        ['mean', 'count']).reset_index()


def threshold_sweep_section(all_results: pd.DataFrame,
                            out_dir: str) -> Section:
    """RetinaMask's best-matching threshold sweep, published and ours."""
    arms = ['bm_off', 'bm_0.4', 'bm_0.3', 'bm_0.2', 'bm_0.0']
    thresholds = [0.5, 0.4, 0.3, 0.2, 0.0]
    pub = published_table()
    pub = pub[(pub.table == 'RetinaMask best-matching sweep')
              & (pub.metric == 'box_AP')].set_index('arm').value
    ours = _arm_means(all_results, arms + ['default'], 'box_AP')
    section = Section('Best-matching threshold sweep (RetinaMask)', [
        'Box AP x100 against the best-match IoU threshold (0.5 = off). '
        'Published: RetinaNet R-50-FPN 1x on COCO val; ours: every grid '
        'with bm_* arms (mean over seeds; n in the legend).'])
    curves = [(grid, model, g.set_index('arm')) for (grid, model), g in
              ours.groupby(['grid', 'model'], sort=False)
              if any(a in set(g.arm) for a in arms[1:])]
    if not curves:
        section.text.append(
            'No grid of ours has bm_* arms, so there is nothing to set '
            'beside the published sweep (' + ', '.join(
                f'{t}: {pub.get(a, np.nan):.1f}'
                for t, a in zip(thresholds, arms)) + '); .venv/bin/python '
            'experiments/run_grid.py '
            'experiments/grids/retinamask_best_matching.yaml.')
        return section
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(thresholds, [pub.get(a, np.nan) for a in arms], 'k--o',
            label='published (COCO val)')
    for grid, model, g in curves:
        # RetinaMask's default is best matching at 0.0.
        y = [g['mean'].get(a, g['mean'].get('default') if a == 'bm_0.0'
                           else np.nan) for a in arms]
        n = int(g['count'].max())
        ax.plot(thresholds, [100 * v for v in y], marker='o',
                label=f'{grid}: {model} (n={n})')
    ax.set_xlabel('best-match IoU threshold (0.5 = no best matching)')
    ax.set_ylabel('box AP (x100)')
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    section.figures.append(save_figure(
        fig, osp.join(out_dir, 'best_matching_sweep.png')))
    return section
