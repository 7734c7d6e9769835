"""A verdict for each reviewed weakness (W1-W11) from the runs that exist.

Each weakness in ``analysis/data/weaknesses.yaml`` names two sets of runs, a
metric and the kind of claim. The effect is ``metric(a) - metric(b)`` (AP
points for AP columns) with a 95% interval that covers image sampling, the
run-wide seed offset and the seed x image part
(:mod:`uncertainty.difference`):

- with saved detections (or, for latency, per-image timings)
  (:func:`analysis.evidence.make_evidence`): the paired image bootstrap of
  every run, plus the seeds' own variance (two or more seeds in an arm) or
  the prior's run-wide seed term (one seed; the verdict says so);
- otherwise: the seeds' variance plus the prior's image term, or the prior
  alone with one seed.

The interval decides, never the point estimate alone
(:func:`uncertainty.decision.decide`). ``analysis.calibration`` simulates
this module's decision to show "supported" comes as often as the level says.
"""
import dataclasses
import math
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import pandas as pd
import yaml

from analysis.coco_eval.constants import metric_task_area
from analysis.evidence import Evidence, scale
from experiments.store import project_path
from uncertainty.decision import KINDS, decide
from uncertainty.difference import Difference, from_run_values
from uncertainty.noise import PRIOR_IMAGES, Noise, prior
from uncertainty.power import mde

__all__ = ['Evidence', 'KINDS', 'Verdict', 'decide', 'how_to_run', 'judge',
           'load_report_grids', 'load_weaknesses', 'select_runs',
           'verdict_table']

DATA = osp.join(osp.dirname(osp.abspath(__file__)), 'data')
WEAKNESSES = osp.join(DATA, 'weaknesses.yaml')
# The grids whose results the verdicts read: name -> grid file.
REPORT_GRIDS = osp.join(DATA, 'grids.yaml')
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
    seed_sd: str = '–'
    image_sd: str = '–'
    mde: str = '–'


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
        return f'.venv/bin/python experiments/run_grid.py {path}'
    return f'a grid "{grid}" (not written yet)'


def select_runs(df: pd.DataFrame, side: dict) -> pd.DataFrame:
    """Finished runs of one side of a comparison."""
    def column(name):
        return df[name].to_numpy()

    keep = ((column('status') == 'finished') & (column('grid') == side['grid'])
            & (column('model') == side['model'])
            & (column('arm') == side['arm']))
    dataset = side.get('dataset')
    if dataset == 'not_coco':
        keep &= ~df.dataset.str.lower().str.startswith('coco').to_numpy(bool)
    elif dataset:
        keep &= column('dataset') == dataset
    # The rows df[keep] gives. A side's runs are usually adjacent rows: a
    # slice then (60 us for the calibration's table against 320 us for a
    # take; it selects runs a hundred thousand times).
    rows = np.flatnonzero(keep)
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1:
        return df.iloc[rows[0]:rows[-1] + 1]
    return df.iloc[rows]


def _label(side: dict) -> str:
    return f'{side["model"]}/{side["arm"]}'


def _missing(w: dict, sides: List[dict]) -> str:
    grids = sorted({s['grid'] for s in sides})
    where = [how_to_run(g) for g in grids]
    need = f'{w["needs"]}; ' if w.get('needs') else ''
    return f'not run: {need}needs {" and ".join(where)}'


def fallback_difference(a: np.ndarray, b: np.ndarray, n_images: int,
                        metric: str) -> Optional[Difference]:
    """The effect from the runs' values alone (no saved detections): the
    prior's image term for an AP column; None with one seed of a metric
    the prior does not cover."""
    noise = prior(metric, n_images or PRIOR_IMAGES) \
        if metric_task_area(metric) else None
    if noise is None:
        noise = Noise(0.0, float('nan'), float('nan'), n_images,
                      'no prior for this metric')
        if min(np.isfinite(a).sum(), np.isfinite(b).sum()) < 2:
            return None
    return from_run_values(a, b, n_images, noise)


def _fmt(est: Difference, metric: str) -> str:
    unit = ' AP' if 'AP' in metric else ' ms' if metric.endswith('_ms') \
        else ''
    return f'{est.value:+.2f}{unit} [{est.lo:+.2f}, {est.hi:+.2f}]'


def detectable(kind: str, est: Difference) -> float:
    """The minimum detectable effect (80% power, distance from the
    boundary) of this interval's noise at its seeds."""
    n = min(est.n_a, est.n_b)
    noise = Noise(math.sqrt(est.image_var), est.seed_sd
                  if est.seed_sd == est.seed_sd else 0.0, 0.0,
                  est.n_images, '')
    return mde(kind, noise, n)


def judge(wid: str, w: dict, df: pd.DataFrame,
          evidence: Optional[Evidence] = None) -> Verdict:
    """The verdict on one weakness from the results table ``df``.

    Args:
        wid: ``W1``...
        w: Its entry of ``weaknesses.yaml``.
        df: Results of every grid available (``grid`` column set).
        evidence: ``evidence(runs_a, runs_b, metric)`` -> the effect from
            image resamples (:func:`analysis.evidence.make_evidence`), or
            None when it has no detections for them.
    """
    metric, kind = w['metric'], w['kind']
    unit = scale(metric)
    margin = unit * float(w.get('margin', 0.0))
    a_sides = w['a'] if isinstance(w['a'], list) else [w['a']]
    b = w['b']
    comparison = (', '.join(_label(s) for s in a_sides) + f' vs {_label(b)}'
                  f' ({metric}; {kind.replace("_", " ")}'
                  + (f', margin {margin:g}' if margin else '') + ')')
    b_runs = select_runs(df, b) if metric in df.columns else df.iloc[0:0]
    parts, verdicts, seeds, images, ests = [], [], [], [], []
    # Validation-set size, which decides smoke scale: for latency the
    # evidence counts timed images instead.
    val_images = [0]
    for side in a_sides:
        a_runs = select_runs(df, side) if metric in df.columns \
            else df.iloc[0:0]
        if a_runs.empty or b_runs.empty or a_runs[metric].isna().all():
            return Verdict(wid, w['claim'], comparison, '–', '0', '–',
                           'not run', _missing(w, a_sides + [b]))
        n_val = (int(np.nanmax(a_runs.val_images.to_numpy(float)))
                 if 'val_images' in a_runs and a_runs.val_images.notna().any()
                 else 0)
        val_images.append(n_val)
        seeds.append(min(len(a_runs), len(b_runs)))
        est = evidence(a_runs, b_runs, metric) if evidence else None
        if est is None:
            est = fallback_difference(unit * a_runs[metric].to_numpy(float),
                                      unit * b_runs[metric].to_numpy(float),
                                      n_val, metric)
        if est is None:
            value = unit * (a_runs[metric].mean() - b_runs[metric].mean())
            parts.append(f'{_label(side)}: {value:+.2f} (no interval: one '
                         f'seed and no prior for {metric})')
            verdicts.append('inconclusive')
            images.append(n_val)
            continue
        parts.append(f'{_label(side)}: {_fmt(est, metric)}')
        verdicts.append(decide(kind, est.lo, est.hi, margin))
        images.append(est.n_images or n_val)
        ests.append(est)
    devices = sorted(set(pd.concat(
        [select_runs(df, s) for s in a_sides] + [b_runs]).get(
            'latency_device', pd.Series(dtype=str)).dropna())) \
        if metric.startswith('latency') else []
    noise_cols = _noise_columns(kind, ests)
    if metric.startswith('latency') and len(devices) > 1:
        return Verdict(wid, w['claim'], comparison, '; '.join(parts),
                       ', '.join(map(str, seeds)),
                       ', '.join(map(str, images)), 'inconclusive',
                       f'Not comparable: the arms were timed on different '
                       f'devices ({"; ".join(devices)}); time them together '
                       f'with experiments/measure_cost.py on one device.',
                       *noise_cols)
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
    sentence = _sentence(w, verdict, seeds, images, datasets, ests)
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
                    f'{MIN_IMAGES}. ' + _noise_words(ests))
        verdict = 'inconclusive'

    return Verdict(wid, w['claim'], comparison, '; '.join(parts),
                   ', '.join(map(str, seeds)),
                   ', '.join(map(str, images)), verdict, sentence,
                   *noise_cols)


def _noise_columns(kind: str, ests: List[Difference]) -> List[str]:
    """seed SD (and where from), image SD, MDE: one entry per side."""
    if not ests:
        return ['–', '–', '–']
    seed = '; '.join(
        f'{e.seed_sd:.2f} (' + ('prior' if e.seeds_from_prior else
                                f'these runs, {e.seed_dof} dof') + ')'
        for e in ests)
    image = '; '.join(f'{math.sqrt(e.image_var):.2f}' for e in ests)
    mdes = '; '.join(f'{detectable(kind, e):.2f} at '
                     f'{min(e.n_a, e.n_b)} seed(s)' for e in ests)
    return [seed, image, mdes]


def _noise_words(ests: List[Difference]) -> str:
    return ' '.join(f'Noise: {e.components()}.' for e in ests[:1])


def _sentence(w: dict, verdict: str, seeds: List[int], images: List[int],
              datasets: List[str], ests: List[Difference]) -> str:
    basis = (f'{min(seeds)} seed(s) per arm, {max(images)} validation images'
             f' of {", ".join(datasets)}')
    noise = _noise_words(ests)
    if verdict == 'supported':
        return (f'Our runs support it: the 95% interval lies on the claimed '
                f'side ({basis}). {noise}')
    if verdict == 'contradicted':
        return (f'Our runs contradict it: the 95% interval lies on the other '
                f'side ({basis}). {noise}')
    return (f'Inconclusive at this budget: the 95% interval includes both '
            f'outcomes or there is too little to form one ({basis}). '
            f'{noise}').rstrip()


def verdict_table(df: pd.DataFrame, evidence: Optional[Evidence] = None,
                  path: str = WEAKNESSES) -> pd.DataFrame:
    rows = [judge(wid, w, df, evidence)
            for wid, w in load_weaknesses(path).items()]
    return pd.DataFrame([dataclasses.asdict(r) for r in rows])
