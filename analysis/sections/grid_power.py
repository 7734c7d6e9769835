"""Report section: what the grids can decide, and planned vs actual cost.

For every verdict (W1-W11) the claimed effect beside the minimum detectable
effect with the seeds that exist (:mod:`analysis.power`), the seeds the
claim needs at 80% power and their device-hours; then, for finished runs,
the cost the rate table (``experiments/cost/iteration_rates.csv``) plans
against the wall time the run took. The rates come in as data: the report's
entry point looks each finished run's up (``run_rates``).
"""
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from analysis import power as pw
from analysis.published import published_table
from analysis.report import Section
from analysis.verdicts import (Evidence, load_weaknesses, select_runs,
                               verdict_table)
from uncertainty.noise import PRIOR_IMAGES, prior
from uncertainty.power import MAX_SEEDS, summarise

# (grid, run_id) -> the rate table's row for the run's config on the device
# it ran on (``setup_s``, ``s_per_iter``, ``images_per_process``,
# ``eval_s_per_image``, ``source``), or None when the table has none.
RunRates = Dict[Tuple[str, str], object]


def _sides(w: dict) -> List[dict]:
    return (w['a'] if isinstance(w['a'], list) else [w['a']]) + [w['b']]


def _device_hours(runs: pd.DataFrame) -> float:
    """Mean device-hours of one run (GPUs or CPU processes x wall)."""
    if runs.empty or 'wall_time_s' not in runs:
        return float('nan')
    procs = runs.get('world_size', pd.Series(1, index=runs.index)).fillna(1)
    return float((runs.wall_time_s * procs.clip(lower=1)).mean() / 3600)


def decide_table(all_results: pd.DataFrame, evals=None,
                 evidence=None) -> pd.DataFrame:
    """One row per verdict: claimed effect, MDE and seeds now, seeds
    needed and their device-hours, from the noise the runs show
    (:func:`analysis.power.measured_noise`; the prior where they cannot
    show it)."""
    published = published_table()
    verdicts = verdict_table(all_results, evidence).set_index('id')
    rows = []
    for wid, w in load_weaknesses().items():
        effect, src = pw.claimed_effect(wid, w, published)
        row = dict(id=wid, metric=w['metric'], kind=w['kind'],
                   claimed=('–' if effect is None else f'{effect:+.2f}'),
                   verdict=verdicts.verdict.get(wid, 'not run'))
        side_runs = [select_runs(all_results, s) if w['metric'] in
                     all_results else all_results.iloc[0:0]
                     for s in _sides(w)]
        n_now = min(len(r) for r in side_runs)
        row['seeds now'] = n_now
        if effect is None:
            row.update({'MDE now': '–', 'seeds needed': '–',
                        'device-h needed': '–', 'in words': src})
            rows.append(row)
            continue
        n_img = int(np.nanmax(side_runs[0].val_images)) if n_now and \
            'val_images' in side_runs[0] else PRIOR_IMAGES
        noise = pw.measured_noise(side_runs[0], side_runs[-1], w['metric'],
                                  evals) if n_now else \
            prior(w['metric'], n_img)
        margin = 100 * float(w.get('margin', 0.0))
        s = summarise(w['kind'], effect, noise, n_now, margin)
        need = s['seeds_needed']
        per_seed = sum(_device_hours(r) for r in side_runs)
        row.update({
            'MDE now': (f'{s["mde_now"]:.2f}' if n_now else
                        f'– (1 seed would give {s["mde_now"]:.2f})'),
            'seeds needed': need or f'> {MAX_SEEDS}',
            'device-h needed': (f'{per_seed * need:.2f}'
                                if need and per_seed == per_seed
                                else 'no finished run to cost'
                                if need else '–'),
            'in words': pw.words(row['verdict'], w['kind'], effect, margin,
                                 s['mde_now']) + f' ({noise.describe()}; '
            f'claim: {src})'})
        rows.append(row)
    return pd.DataFrame(rows)


def planned_vs_actual(all_results: pd.DataFrame,
                      rates: RunRates) -> pd.DataFrame:
    """Finished runs: the rate table's estimate against the wall time.

    Args:
        all_results: Results of every grid the report reads.
        rates: Each finished run's rate (:data:`RunRates`); a run not in it
            is not listed.
    """
    done = all_results[all_results.status == 'finished']
    rows = []
    for r in done.itertuples():
        if (r.grid, r.run_id) not in rates:
            continue
        rate = rates[(r.grid, r.run_id)]
        ipp = getattr(r, 'images_per_process', 1) or 1
        procs = getattr(r, 'world_size', 1) or 1
        planned: Optional[float] = None
        if rate is not None:
            planned = (rate.setup_s + r.iterations * rate.s_per_iter * ipp
                       / rate.images_per_process
                       + r.val_images * rate.eval_s_per_image / procs)
        rows.append(dict(run=f'{r.grid}: {r.model}/{r.arm}/seed{r.seed}',
                         config=osp.basename(r.config),
                         iterations=int(r.iterations),
                         planned_s=('no rate' if planned is None
                                    else round(planned, 1)),
                         actual_s=round(r.wall_time_s, 1),
                         **{'planned/actual': (
                             '–' if planned is None
                             else f'{planned / r.wall_time_s:.2f}')},
                         rate=(rate.source if rate else '')))
    return pd.DataFrame(rows)


def grid_power_section(all_results: pd.DataFrame, evals,
                       evidence: Optional[Evidence],
                       rates: RunRates) -> Section:
    """Args:
        all_results: Results of every grid the report reads.
        evals: The report's :class:`~analysis.coco_eval.run_eval.RunEvals`.
        evidence: The verdicts' evidence
            (:func:`analysis.verdicts.make_evidence`).
        rates: Each finished run's rate, looked up by the entry point.
    """
    table = decide_table(all_results, evals, evidence)
    section = Section('What the grids can decide (power and cost)', [
        'Per verdict: the effect the paper claims (AP points), the smallest '
        'gap to the verdict\'s boundary the runs that exist resolve at 95% '
        'confidence and 80% power (the verdict rule\'s own power: '
        'uncertainty/power.py, with the noise these runs show, '
        'analysis/power.py), the seeds per arm the claim '
        'needs, and their device-hours from these runs\' own cost. Before a '
        'grid runs: .venv/bin/python experiments/run_grid.py GRID --plan.'])
    section.add_table(table, (
        'What each verdict can decide: claimed: the paper\'s effect (AP '
        'points); MDE now: the smallest distance from the verdict\'s '
        'boundary the seeds that exist resolve at 80% power; '
        'seeds needed: per arm, for 80% power at the claimed effect; '
        'device-h needed: those seeds\' device-hours at these runs\' cost.'))
    cost = planned_vs_actual(all_results, rates)
    if cost.empty:
        section.text.append('No finished run to set against its planned '
                            'cost.')
        return section
    section.add_table(cost, (
        'Planned against actual wall time of each finished run: planned_s '
        'from the rate table (experiments/cost/iteration_rates.csv; "no '
        'rate" where it has no row for the config and device: run --plan '
        '--probe N --save-rates), actual_s the run\'s wall time, '
        'planned/actual = planned_s / actual_s (below 1: the run took '
        'longer than planned; above 1: shorter); rate: the rate row\'s '
        'source.'))
    return section
