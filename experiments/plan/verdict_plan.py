"""``--plan``'s verdict lines: what each verdict the grid feeds can decide,
with the variance model the report's verdicts use (:mod:`uncertainty`), and
what every side of it costs, in whichever grid its runs live.

The noise is the COCO prior (:func:`uncertainty.noise.prior`) or, with
``--pilot``, what pilot runs show (:func:`analysis.power.measured_noise`:
the seed SD from their spread, its seed x image part from the paired
bootstrap of two seeds of one arm, the image term from the paired bootstrap
of two arms), scaled to the grid's number of validation images.
"""
import dataclasses
import math
import os.path as osp
from typing import Callable, Dict, List, Optional, Tuple

import pandas as pd
from scipy import optimize

from analysis.coco_eval.run_eval import RunEvals
from analysis.power import measured_noise
from analysis.verdicts import load_report_grids, load_weaknesses
from experiments.grid.spec import GridSpec, load_grid
from experiments.store import project_path
from uncertainty.noise import Noise, prior
from uncertainty.power import (MAX_SEEDS, POWER, image_floor, mde, power,
                               seeds_needed)

# side -> (device-hours of one seed of it (NaN: no rate), the grid its
# runs belong to).
SideCost = Callable[[dict], Tuple[float, str]]


def sides(w: dict) -> List[dict]:
    return (w['a'] if isinstance(w['a'], list) else [w['a']]) + [w['b']]


def fed_verdicts(grid: GridSpec) -> Dict[str, dict]:
    """The verdicts with a side in ``grid``."""
    return {wid: w for wid, w in load_weaknesses().items()
            if any(s['grid'] == grid.name for s in sides(w))}


def other_grid(name: str) -> Optional[GridSpec]:
    """A declared grid (``analysis/data/grids.yaml``) by name, or None
    when it is not written yet."""
    path = load_report_grids().get(name)
    if not path or not osp.isfile(project_path(path)):
        return None
    return load_grid(project_path(path))


def pilot_noise(pilot: pd.DataFrame, w: dict, n_images: int) -> Noise:
    """The noise pilot runs show for verdict ``w``, at ``n_images``.

    Uses the verdict's own arms when the pilot has them, else the first two
    pilot arms on one dataset, else one arm's seeds; the source says which.
    """
    metric = w['metric']
    groups = [g for _, g in pilot.groupby(['grid', 'model', 'arm',
                                           'dataset'])]
    if not groups:
        raise ValueError('the pilot has no finished run')
    wanted = {s['arm'] for s in sides(w)}
    groups.sort(key=lambda g: g.arm.iloc[0] not in wanted)
    pair = next(((a, b) for i, a in enumerate(groups) for b in groups[i + 1:]
                 if a.dataset.iloc[0] == b.dataset.iloc[0]), None)
    n_pilot = int(pilot.val_images.max()) if 'val_images' in pilot else 0
    base = prior(metric, n_pilot or n_images)
    if pair is None:
        a, b, evals = groups[0], groups[0].iloc[0:0], None
    else:
        (a, b), evals = pair, RunEvals()
    which = ('this verdict\'s arms' if {a.arm.iloc[0]} | (
        {b.arm.iloc[0]} if len(b) else set()) <= wanted
             else 'pilot arms ' + ' vs '.join(
                 g.arm.iloc[0] for g in (a, b) if len(g))
             + ' (the pilot has not all of this verdict\'s arms)')
    noise = measured_noise(a, b, metric, evals, base=base)
    noise = dataclasses.replace(noise, source=f'pilot, {which}: '
                                f'{noise.source}')
    return noise.at_images(n_images)


def _largest(f: Callable[[float], bool], hi: float) -> float:
    """The largest x in (0, hi] with f(x) true (f true at 0, monotone)."""
    if f(hi):
        return hi
    return float(optimize.bisect(lambda x: 0.5 - f(x), 1e-6, hi,
                                 xtol=1e-4))


def what_would_work(kind: str, effect: float, noise: Noise,
                    margin: float) -> str:
    """For a claim out of reach: the design that would reach it."""
    def reachable(n):
        def ok(x, field):
            v = dataclasses.replace(noise, **{field: x}) if field != \
                'seed' else dataclasses.replace(
                    noise, run_sd=x * noise.run_sd / noise.seed_sd,
                    seed_image_sd=x * noise.seed_image_sd / noise.seed_sd)
            return power(kind, effect, v, n, margin) >= POWER
        return ok
    if image_floor(kind, effect, noise, margin):
        sd = _largest(lambda x: reachable(MAX_SEEDS)(x, 'image_sd'),
                      noise.image_sd)
        images = noise.n_images * (noise.image_sd / sd) ** 2 \
            if sd > 0 else math.inf
        return (f'the image term {noise.image_sd:.2f} AP alone keeps it '
                f'under 80% at any seed count: reachable if a pilot with '
                f'saved detections (--pilot) shows an image SD <= '
                f'{sd:.2f} AP for these arms (pairing often cancels most '
                f'of it), or on >= {images:,.0f} validation images')
    seed = noise.seed_sd
    at10 = _largest(lambda x: reachable(10)(x, 'seed'), seed) \
        if seed > 0 else 0.0
    return (f'seed SD {seed:.2f} AP needs more than {MAX_SEEDS} seeds: 10 '
            f'seeds would do if a pilot showed a seed SD <= {at10:.2f} AP')


def plan_lines(grid: GridSpec, n_now: int, n_images: int,
               pilot: Optional[pd.DataFrame], published: pd.DataFrame,
               side_cost: SideCost, extra_seeds: Optional[int],
               claimed: Callable) -> List[str]:
    """The verdict lines of ``--plan``.

    Args:
        grid: The grid planned.
        n_now: Its seeds per arm.
        n_images: Its validation images.
        pilot: Finished pilot runs, or None for the prior.
        published: The published table.
        side_cost: Device-hours of one seed of a side, and the grid it is
            costed in.
        extra_seeds: ``--seeds N``.
        claimed: :func:`analysis.power.claimed_effect`.
    """
    lines = []
    for wid, w in fed_verdicts(grid).items():
        effect, src = claimed(wid, w, published)
        if effect is None:
            lines.append(f'  {wid}: {src}')
            continue
        noise = pilot_noise(pilot, w, n_images) if pilot is not None \
            else prior(w['metric'], n_images)
        margin = 100 * float(w.get('margin', 0.0))
        kind = w['kind']
        now = power(kind, effect, noise, max(n_now, 1), margin)
        need = seeds_needed(kind, effect, noise, margin)
        costs = [side_cost(s) for s in sides(w)]
        per_seed = sum(h for h, _ in costs)
        where = '; '.join(f'{s["model"]}/{s["arm"]} in {g}'
                          for s, (_, g) in zip(sides(w), costs))
        lines.append(f'  {wid} {w["metric"]} {kind}: claimed {effect:+.2f}'
                     f' AP ({src})')
        lines.append(f'      now ({n_now} seed(s)): MDE '
                     f'{mde(kind, noise, max(n_now, 1)):.2f} AP (distance '
                     f'from the verdict\'s boundary resolved at 80% power),'
                     f' power {now:.0%}')
        lines.append('      seeds needed for 80%: ' + (
            f'{need} per arm, device-hours {_hours(per_seed * need)} '
            f'(every side: {where})' if need else
            f'not reachable with <= {MAX_SEEDS} seeds: '
            + what_would_work(kind, effect, noise, margin)))
        if extra_seeds:
            lines.append(
                f'      with --seeds {extra_seeds}: power '
                f'{power(kind, effect, noise, extra_seeds, margin):.0%}, '
                f'MDE {mde(kind, noise, extra_seeds):.2f} AP, device-hours '
                f'{_hours(per_seed * extra_seeds)}')
        lines.append(f'      noise: {noise.describe()}')
    return lines


def _hours(h: float) -> str:
    return 'no rate: run --probe' if h != h else f'{h:,.1f} h'
