"""The report sections that test the claims: per-image metrics and verdicts.

Everything here starts from finished runs' saved detections
(``<run>/detections/val.{bbox,segm}.json``) and the ground truth their
config names, re-evaluated once per image (:mod:`analysis.image_eval`):
fine object-size bins, AP at each IoU threshold, image-bootstrap intervals,
the paper tables beside ours, the verdicts on W1-W11, the best-matching
sweep and the self-adjusting loss's beta over training.
"""
import contextlib
import io
import os.path as osp
from typing import Dict, List, Optional

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.bootstrap import (bootstrap_ap, estimate,  # noqa: E402
                                paired_difference)
from analysis.image_eval import (COCO_AREAS, IOU_THRESHOLDS,  # noqa: E402
                                 ImageEval, image_eval_for_run, log_area_bins)
from analysis.cost_report import (PUBLISHED, arm_cost_rows,  # noqa: E402
                                  attention_section, speed_accuracy_section)
from analysis.latency import paired_latency  # noqa: E402
from analysis.report import Section, save_figure  # noqa: E402
from analysis.verdicts import verdict_table  # noqa: E402
from analysis.views.error_breakdown import (  # noqa: E402
    error_breakdown_section)
from analysis.views.per_category import per_category_section  # noqa: E402
from analysis.views.grid_power import grid_power_section  # noqa: E402
from analysis.views.provenance import caption  # noqa: E402
from experiments.store import evaluation_gt_file
from analysis.views.damaged_runs import (  # noqa: E402
    damaged_runs_section, note_damaged)
from analysis.views.qualitative import qualitative_section  # noqa: E402
from analysis.views.training_curves import (  # noqa: E402
    BETA, read_scalars, training_curves_section)

FINE_BINS = log_area_bins(8)
IOU_TYPES = (('bbox', 'box'), ('segm', 'mask'))


class RunEvals:
    """Per-image evaluations of finished runs, computed once each."""

    def __init__(self) -> None:
        self._gt = {}
        self._evals: Dict[tuple, Optional[ImageEval]] = {}
        # run label -> what is damaged; the run is left out of every
        # section that needs its detections, and listed in the report.
        self.damaged: Dict[str, str] = {}

    def get(self, row, iou_type: str) -> Optional[ImageEval]:
        key = (row.run_id, iou_type)
        if key not in self._evals:
            self._evals[key] = self._compute(row, iou_type)
        return self._evals[key]

    def _compute(self, row, iou_type: str) -> Optional[ImageEval]:
        det_dir = row.detections if isinstance(row.detections, str) else ''
        if not det_dir or not osp.isfile(
                osp.join(det_dir, f'val.{iou_type}.json')):
            return None
        ann = evaluation_gt_file(row.work_dir)

        def ground_truth():
            # Loaded only when a run's evaluation is not cached.
            if ann not in self._gt:
                from pycocotools.coco import COCO
                with contextlib.redirect_stdout(io.StringIO()):
                    self._gt[ann] = COCO(ann)
            return self._gt[ann]

        try:
            return image_eval_for_run(det_dir, ann, iou_type,
                                      dict(COCO_AREAS, **FINE_BINS),
                                      ground_truth)
        except (ValueError, OSError) as e:
            note_damaged(self.damaged, row, str(e))
            return None

    def for_runs(self, runs: pd.DataFrame,
                 iou_type: str) -> List[ImageEval]:
        evals = [self.get(r, iou_type) for r in runs.itertuples()]
        return [e for e in evals if e is not None]


def _arm_evals(df: pd.DataFrame, evals: RunEvals):
    """(grid, model, arm, dataset, runs, task, evals) of every finished arm
    and task that has saved detections."""
    done = df[df.status == 'finished']
    for (grid, model, arm, dataset), runs in done.groupby(
            ['grid', 'model', 'arm', 'dataset'], sort=False):
        for iou_type, task in IOU_TYPES:
            ev = evals.for_runs(runs, iou_type)
            if ev:
                yield grid, model, arm, dataset, runs, task, ev


def _plot_by_task(table: pd.DataFrame, x, columns: List[str], title: str,
                  path: str, xticks: Optional[List[str]] = None,
                  xlabel: str = '') -> str:
    """Box and mask panels, one line per arm over ``columns`` of ``table``."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, (_, task) in zip(axes, IOU_TYPES):
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
        'from the saved detections. GT counts per bin are in the second '
        'table; a bin with few objects gives a noisy AP. ' + caption(df)])
    if table.empty:
        section.text.append('No finished run has saved detections.')
        return section
    section.tables += [table.round(1),
                       pd.DataFrame(counts).T.rename_axis('dataset')
                       .reset_index()]
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
    section.tables.append(table.round(1))
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
    return Section('Uncertainty: image-bootstrap intervals', [
        f'Basic bootstrap over validation images ({n_resamples} resamples, '
        f'seeds averaged on each resample): the interval reflects which '
        f'images were drawn, not seed-to-seed variation. ' + caption(df)],
        [pd.DataFrame(rows)])


def make_evidence(evals: RunEvals, n_resamples: int):
    """Paired image bootstrap for the verdicts, when detections (or, for
    latency, per-image timings) exist."""
    def evidence(a_runs, b_runs, metric):
        if metric == 'latency_ms':
            return paired_latency(a_runs, b_runs, n_resamples)
        task, _, name = metric.partition('_')
        iou_type = 'bbox' if task == 'box' else 'segm'
        areas = {'AP': 'all', 'APs': 'small', 'APm': 'medium',
                 'APl': 'large'}
        if name not in areas:
            return None
        a = evals.for_runs(a_runs, iou_type)
        b = evals.for_runs(b_runs, iou_type)
        if not a or not b or a[0].img_ids != b[0].img_ids:
            return None
        s = bootstrap_ap({'a': a, 'b': b}, n_resamples, area=areas[name])
        return paired_difference(a, b, s['a'], s['b'], area=areas[name])
    return evidence


def verdict_section(all_results: pd.DataFrame, evals: RunEvals,
                    n_resamples: int, sources: List[str]) -> Section:
    table = verdict_table(all_results, make_evidence(evals, n_resamples))
    return Section('Verdicts on the reviewed weaknesses (W1-W11)', [
        'Effect = metric(a) - metric(b) with its 95% interval (AP x100); '
        'the verdict follows the interval only (analysis/verdicts.py). '
        'Results read from: ' + ', '.join(sources)], [table])


def paper_tables_section(all_results: pd.DataFrame) -> Section:
    pub = pd.read_csv(PUBLISHED)
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
    missing = [f'{name} ({len(g)} published numbers): not run; python '
               f'experiments/run_grid.py experiments/grids/'
               f'{g.grid.iloc[0]}.yaml'
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
        'different trainings (experiments/grid/batch_recipe.py); intervals are in '
        'the bootstrap and verdict sections. latency_ms rows: ours is the '
        'median per image on the device named (experiments/'
        'measure_cost.py); the paper timed its own GPU, so no delta.'],
        [table[ran].drop(columns='grid')] if ran.any() else [])
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
    pub = pd.read_csv(PUBLISHED)
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
                for t, a in zip(thresholds, arms)) + '); python experiments/'
            'run_grid.py experiments/grids/retinamask_best_matching.yaml.')
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


def claims_sections(df: pd.DataFrame, all_results: pd.DataFrame,
                    out_dir: str, n_resamples: int,
                    sources: List[str]) -> List[Section]:
    evals = RunEvals()
    costs = arm_cost_rows(all_results, n_resamples)
    sections = [error_breakdown_section(df, out_dir, evals.damaged),
            per_category_section(df, evals, n_resamples),
            qualitative_section(df, evals, out_dir),
            training_curves_section(df, out_dir),
            fine_bins_section(df, evals, out_dir),
            iou_sweep_section(df, evals, out_dir),
            bootstrap_section(df, evals, n_resamples),
            verdict_section(all_results, evals, n_resamples, sources),
            paper_tables_section(all_results),
            threshold_sweep_section(all_results, out_dir),
            attention_section(costs),
            speed_accuracy_section(costs, out_dir),
            beta_section(df, out_dir),
            grid_power_section(all_results, evals, n_resamples)]
    if evals.damaged:
        sections.append(damaged_runs_section(evals.damaged))
    return sections
