"""A verdict for each reviewed weakness (W1-W11) from the runs that exist.

Each weakness in ``analysis/data/weaknesses.yaml`` names two sets of runs, a
metric and the kind of claim. The effect is ``metric(a) - metric(b)`` with a
95% interval:

- paired image bootstrap (:mod:`analysis.coco_eval.bootstrap`) when
  ``evidence`` (:func:`make_evidence`) gives per-image evaluations for both
  sides (saved detections);
- otherwise Welch's t interval over seeds, when both sides have two or more
  finished seeds;
- otherwise none: one seed without saved detections is never a verdict.

The interval decides, never the point estimate alone:

============== ===================== ======================= ==============
kind           supported             contradicted            else
============== ===================== ======================= ==============
greater        lo > 0                hi < 0                  inconclusive
less           hi < 0                lo > 0                  inconclusive
small_diff.    -m < lo and hi < m    lo > m or hi < -m       inconclusive
small_gain     hi < m                lo > m                  inconclusive
============== ===================== ======================= ==============
"""
import dataclasses
import math
import os.path as osp
from typing import Callable, Dict, List, Optional

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from analysis.coco_eval.bootstrap import (Estimate, bootstrap_ap,
                                          paired_difference)
from analysis.coco_eval.constants import metric_task_area
from analysis.coco_eval.run_eval import RunEvals
from analysis.latency import paired_latency
from experiments.store import project_path

DATA = osp.join(osp.dirname(osp.abspath(__file__)), 'data')
WEAKNESSES = osp.join(DATA, 'weaknesses.yaml')
# The grids whose results the verdicts read: name -> grid file.
REPORT_GRIDS = osp.join(DATA, 'grids.yaml')
KINDS = ('greater', 'less', 'small_difference', 'small_gain')
# Below this many validation images (the built-in smoke sets have 16) an
# interval is reported but no verdict is drawn from it: such runs test the
# harness, not the methods.
MIN_IMAGES = 500


@dataclasses.dataclass
class Verdict:
    """One row of the verdict table."""

    id: str
    claim: str
    comparison: str
    effect: str
    n_seeds: str
    n_images: str
    verdict: str
    sentence: str


def load_weaknesses(path: str = WEAKNESSES) -> Dict[str, dict]:
    with open(path) as f:
        spec = yaml.safe_load(f)
    for wid, w in spec.items():
        for key in ('claim', 'kind', 'metric', 'a', 'b'):
            if key not in w:
                raise ValueError(f'{path}: {wid} lacks "{key}"')
        if w['kind'] not in KINDS:
            raise ValueError(f'{path}: {wid}.kind must be one of {KINDS}, '
                             f'got {w["kind"]!r}')
    return spec


def load_report_grids(path: str = REPORT_GRIDS) -> Dict[str, str]:
    """The declared grids: name -> grid file (project-relative)."""
    with open(path) as f:
        grids = yaml.safe_load(f)
    if not isinstance(grids, dict) or not all(
            isinstance(k, str) and isinstance(v, str)
            for k, v in grids.items()):
        raise ValueError(f'{path}: expected "grid name: grid file" lines')
    return grids


def how_to_run(grid: str) -> str:
    """The command that runs a declared grid, or that it is not written."""
    path = load_report_grids().get(grid)
    if path and osp.isfile(project_path(path)):
        return f'python experiments/run_grid.py {path}'
    return f'a grid "{grid}" (not written yet)'


def select_runs(df: pd.DataFrame, side: dict) -> pd.DataFrame:
    """Finished runs of one side of a comparison."""
    rows = df[(df.status == 'finished') & (df.grid == side['grid'])
              & (df.model == side['model']) & (df.arm == side['arm'])]
    dataset = side.get('dataset')
    if dataset == 'not_coco':
        rows = rows[~rows.dataset.str.lower().str.startswith('coco')]
    elif dataset:
        rows = rows[rows.dataset == dataset]
    return rows


def welch_interval(a: np.ndarray, b: np.ndarray) -> Optional[Estimate]:
    """Difference of means with Welch's 95% t interval; None for < 2 each."""
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    diff = float(a.mean() - b.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return Estimate(diff, diff, diff, 0, min(len(a), len(b)), 0)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(stats.t.ppf(0.975, dof)) * se
    return Estimate(diff, diff - half, diff + half, 0, min(len(a), len(b)), 0)


def decide(kind: str, est: Estimate, margin: float = 0.0) -> str:
    """``supported``, ``contradicted`` or ``inconclusive`` from the
    interval."""
    lo, hi = est.lo, est.hi
    if lo != lo or hi != hi:
        return 'inconclusive'
    if kind == 'greater':
        return 'supported' if lo > 0 else 'contradicted' if hi < 0 \
            else 'inconclusive'
    if kind == 'less':
        return 'supported' if hi < 0 else 'contradicted' if lo > 0 \
            else 'inconclusive'
    if kind == 'small_difference':
        if -margin < lo and hi < margin:
            return 'supported'
        return 'contradicted' if lo > margin or hi < -margin \
            else 'inconclusive'
    if kind == 'small_gain':
        return 'supported' if hi < margin else 'contradicted' \
            if lo > margin else 'inconclusive'
    raise ValueError(f'unknown kind {kind!r}')


def _scale(metric: str) -> float:
    return 100.0 if 'AP' in metric else 1.0


def _fmt_est(est: Estimate, metric: str) -> str:
    s = _scale(metric)
    unit = ' AP' if 'AP' in metric else ' ms' if metric.endswith('_ms') \
        else ''
    return (f'{s * est.value:+.2f}{unit} [{s * est.lo:+.2f}, '
            f'{s * est.hi:+.2f}]')


def _label(side: dict) -> str:
    return f'{side["model"]}/{side["arm"]}'


def _missing(w: dict, sides: List[dict]) -> str:
    grids = sorted({s['grid'] for s in sides})
    where = [how_to_run(g) for g in grids]
    need = f'{w["needs"]}; ' if w.get('needs') else ''
    return f'not run: {need}needs {" and ".join(where)}'


Evidence = Callable[[pd.DataFrame, pd.DataFrame, str], Optional[Estimate]]


def make_evidence(evals: RunEvals, n_resamples: int) -> Evidence:
    """Paired image bootstrap for the verdicts, when detections (or, for
    latency, per-image timings) exist."""
    def evidence(a_runs, b_runs, metric):
        if metric == 'latency_ms':
            return paired_latency(a_runs, b_runs, n_resamples)
        task_area = metric_task_area(metric)
        if task_area is None:
            return None
        iou_type, area = task_area
        a = evals.for_runs(a_runs, iou_type)
        b = evals.for_runs(b_runs, iou_type)
        if not a or not b or a[0].img_ids != b[0].img_ids:
            return None
        s = bootstrap_ap({'a': a, 'b': b}, n_resamples, area=area)
        return paired_difference(a, b, s['a'], s['b'], area=area)
    return evidence


def judge(wid: str, w: dict, df: pd.DataFrame,
          evidence: Optional[Evidence] = None) -> Verdict:
    """The verdict on one weakness from the results table ``df``.

    Args:
        wid: ``W1``...
        w: Its entry of ``weaknesses.yaml``.
        df: Results of every grid available (``grid`` column set).
        evidence: ``evidence(runs_a, runs_b, metric)`` -> a paired bootstrap
            estimate, or None when it has no detections for them.
    """
    metric, kind = w['metric'], w['kind']
    margin = float(w.get('margin', 0.0))
    a_sides = w['a'] if isinstance(w['a'], list) else [w['a']]
    b = w['b']
    comparison = (', '.join(_label(s) for s in a_sides) + f' vs {_label(b)}'
                  f' ({metric}; {kind.replace("_", " ")}'
                  + (f', margin {_scale(metric) * margin:g}' if margin else '')
                  + ')')
    b_runs = select_runs(df, b) if metric in df.columns else df.iloc[0:0]
    parts, verdicts, seeds, images = [], [], [], []
    # Validation-set size, which decides smoke scale: for latency the
    # evidence counts timed images instead.
    val_images = [0]
    for side in a_sides:
        a_runs = select_runs(df, side) if metric in df.columns \
            else df.iloc[0:0]
        if a_runs.empty or b_runs.empty or a_runs[metric].isna().all():
            return Verdict(wid, w['claim'], comparison, '–', '0', '–',
                           'not run', _missing(w, a_sides + [b]))
        val_images.append(int(np.nanmax(a_runs.val_images.to_numpy(float)))
                          if a_runs.val_images.notna().any() else 0)
        est = evidence(a_runs, b_runs, metric) if evidence else None
        method = ('paired bootstrap over timed images and rounds'
                  if metric.startswith('latency') else
                  'paired image bootstrap')
        if est is None:
            est = welch_interval(a_runs[metric].to_numpy(float),
                                 b_runs[metric].to_numpy(float))
            method = 'Welch t over seeds'
        if est is None:
            value = (a_runs[metric].mean() - b_runs[metric].mean())
            parts.append(f'{_label(side)}: {_scale(metric) * value:+.2f} '
                         f'(no interval)')
            verdicts.append('inconclusive')
            seeds.append(min(len(a_runs), len(b_runs)))
            images.append(int(a_runs.val_images.iloc[0])
                          if 'val_images' in a_runs else 0)
            continue
        parts.append(f'{_label(side)}: {_fmt_est(est, metric)} ({method})')
        verdicts.append(decide(kind, est, margin))
        seeds.append(min(len(a_runs), len(b_runs)))
        images.append(est.n_images or int(a_runs.val_images.iloc[0]))
    devices = sorted(set(pd.concat([select_runs(df, s) for s in a_sides]
                                   + [b_runs]).get('latency_device',
                                                   pd.Series(dtype=str))
                         .dropna()))
    if metric.startswith('latency') and len(devices) > 1:
        return Verdict(wid, w['claim'], comparison, '; '.join(parts),
                       ', '.join(map(str, seeds)),
                       ', '.join(map(str, images)), 'inconclusive',
                       f'Not comparable: the arms were timed on different '
                       f'devices ({"; ".join(devices)}); time them together '
                       f'with experiments/measure_cost.py on one device.')
    if 'contradicted' in verdicts:
        verdict = 'contradicted'
    elif all(v == 'supported' for v in verdicts):
        verdict = 'supported'
    else:
        verdict = 'inconclusive'
    if w.get('params_greater') and verdict == 'supported':
        pa = select_runs(df, a_sides[0]).params.mean()
        pb = b_runs.params.mean()
        if not pa > pb:
            verdict = 'contradicted'
        parts.append(f'params {pa / 1e6:.2f}M vs {pb / 1e6:.2f}M')
    datasets = sorted(set(b_runs.dataset))
    sentence = _sentence(w, verdict, seeds, images, datasets)
    if (metric.startswith('latency') and w.get('device') == 'gpu'
            and verdict != 'inconclusive'
            and not all(d.startswith('cuda') for d in devices)):
        sentence = (f'Inconclusive here: the interval alone would say '
                    f'{verdict}, but the runs were timed on '
                    f'{"; ".join(devices)} and the claim is about GPU '
                    f'inference (experiments/measure_cost.py --device cuda).')
        verdict = 'inconclusive'
    elif verdict != 'inconclusive' and max(val_images) < MIN_IMAGES:
        sentence = (f'Inconclusive at this budget: the interval alone would '
                    f'say {verdict}, but {max(val_images)} validation images '
                    f'of {", ".join(datasets)} (smoke scale) test the '
                    f'harness, not the claim; it needs at least '
                    f'{MIN_IMAGES}.')
        verdict = 'inconclusive'

    return Verdict(wid, w['claim'], comparison, '; '.join(parts),
                   ', '.join(map(str, seeds)),
                   ', '.join(map(str, images)), verdict, sentence)


def _sentence(w: dict, verdict: str, seeds: List[int], images: List[int],
              datasets: List[str]) -> str:
    basis = (f'{min(seeds)} seed(s) per arm, {max(images)} validation images'
             f' of {", ".join(datasets)}')
    if verdict == 'supported':
        return (f'Our runs support it: the 95% interval lies on the claimed '
                f'side ({basis}).')
    if verdict == 'contradicted':
        return (f'Our runs contradict it: the 95% interval lies on the other '
                f'side ({basis}).')
    return (f'Inconclusive at this budget: the 95% interval includes both '
            f'outcomes or there is too little to form one ({basis}).')


def verdict_table(df: pd.DataFrame, evidence: Optional[Evidence] = None,
                  path: str = WEAKNESSES) -> pd.DataFrame:
    rows = [judge(wid, w, df, evidence)
            for wid, w in load_weaknesses(path).items()]
    return pd.DataFrame([dataclasses.asdict(r) for r in rows])
