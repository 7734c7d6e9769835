"""``run_grid.py GRID --plan``: what the grid can decide and what it costs.

Trains nothing (except the short ``--probe``, in a temporary directory) and
writes nothing into run dirs. For every verdict (W1-W11,
``analysis/data/weaknesses.yaml``) the grid feeds it prints the claimed
effect, the minimum detectable effect with the grid's seeds, the seeds the
claim needs at 80% power (:mod:`analysis.power`) and their device-hours; for
every run its estimated wall time and device-hours
(:mod:`experiments.cost.plan_cost`).
"""
import dataclasses
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import pandas as pd

from analysis import power as pw
from analysis.coco_eval.run_eval import RunEvals
from analysis.published import published_table
from analysis.verdicts import load_weaknesses
from experiments.cost.plan_cost import (
    RATES,
    RunCost,
    estimate,
    find_rate,
    load_rates,
    probe,
    save_rate,
)
from experiments.data.coco_check import CocoFormatError
from experiments.data.prepare import PreparedDataset, prepare_dataset
from experiments.grid.run_config import config_hash, resolve_run
from experiments.grid.spec import GridSpec, RunSpec, load_grid
from experiments.runner.launch import PlannedRun
from experiments.store import project_path, read_results_csv, run_dir_name

# COCO 2017 split sizes, for planning before the data is downloaded.
COCO_SIZES = {'instances_val2017.json': (118287, 5000)}


def unreachable_reason(kind: str, effect: float, v, margin: float) -> str:
    """Why no seed count up to the cap reaches 80% power: the image term
    (a floor no seed count lowers) or the seed noise."""
    infinite = pw.power(kind, effect, v, 10 ** 6, margin)
    if infinite < pw.POWER:
        return (f'image term {v.image_sd:.2f} AP: even infinitely many '
                f'seeds stay below 80%; needs more images')
    return (f'seed SD {v.seed_sd:.2f} AP: needs more than {pw.MAX_SEEDS} '
            f'seeds')


def stand_in(spec, grid_path: str) -> Tuple[PreparedDataset, int]:
    """The dataset and its train-image count; COCO 2017 by its known sizes
    when its files are not here yet."""
    try:
        ds = prepare_dataset(spec, grid_path, verbose=False)
        return ds, ds.train_images
    except (CocoFormatError, OSError) as e:
        sizes = COCO_SIZES.get(osp.basename(spec.val_ann or ''))
        if sizes is None:
            raise ValueError(str(e)) from None
        from mmdet.datasets import CocoDataset
        return PreparedDataset(
            spec.name, spec.data_root, spec.train_ann, spec.train_img,
            spec.val_ann, spec.val_img, tuple(CocoDataset.METAINFO['classes']),
            sizes[1], 0, sizes[0]), sizes[0]


def resolve(grid: GridSpec, runs: List[RunSpec], work_dir: str,
            devices: int) -> Tuple[List[PlannedRun], Dict[str, int]]:
    """Planned runs (no model build, no write) and train images per
    dataset."""
    datasets, n_train = {}, {}
    for name in sorted({r.dataset for r in runs}):
        datasets[name], n_train[name] = stand_in(grid.datasets[name],
                                                 grid.path)
    planned = []
    for run in runs:
        cfg, recipe = resolve_run(run, datasets[run.dataset], grid.path,
                                  devices)
        run_id = config_hash(cfg)
        planned.append(PlannedRun(run, run_id, osp.join(work_dir, run_dir_name(
            run.model, run.arm, run.dataset, run.seed, run_id)), cfg,
            datasets[run.dataset], recipe))
    return planned, n_train


def pilot_results(paths: List[str]) -> pd.DataFrame:
    """Finished runs of the pilot results tables (or grids: their
    ``results.csv``)."""
    frames = []
    for path in paths:
        if path.endswith(('.yaml', '.yml')):
            g = load_grid(path)
            path = osp.join(project_path(g.work_dir), 'results.csv')
        frames.append(read_results_csv(project_path(path)))
    df = pd.concat(frames, ignore_index=True)
    return df[df.status == 'finished']


def pilot_variance(pilot: pd.DataFrame, w: dict,
                   n_images: int) -> pw.Variance:
    """Seed and image terms from the pilot runs, the prior for what the
    pilot cannot give; the image term scaled to ``n_images``."""
    metric = w['metric']
    base = pw.prior(metric, n_images)
    arms = {s['arm'] for s in (w['a'] if isinstance(w['a'], list)
                               else [w['a']]) + [w['b']]}
    same = pilot[pilot.arm.isin(arms)]
    sd, dof = pw.pooled_seed_sd(same, metric)
    where = 'the same arms'
    if not dof or not sd > 0:
        sd, dof = pw.pooled_seed_sd(pilot, metric)
        where = 'all pilot arms'
    # A metric equal in every pilot run (0 AP after a few iterations)
    # carries no information on its noise.
    dof = dof if sd > 0 else 0
    parts = [f'seed SD from pilot ({where}, {dof} dof)' if dof
             else 'seed SD: prior (pilot has < 2 seeds of an arm)']
    img = pilot_image_sd(pilot, metric, arms)
    v = pw.Variance(sd if dof else base.seed_sd, base.image_sd, n_images, '')
    if img is not None and img[0] > 0:
        sd_img, n_pilot = img
        v = dataclasses.replace(v, image_sd=sd_img * math.sqrt(
            n_pilot / n_images))
        parts.append(f'image SD from a pilot paired bootstrap on {n_pilot} '
                     f'images, scaled to {n_images}')
    else:
        parts.append('image SD: prior (no pilot detections, or a '
                     'constant metric)')
    v.source = '; '.join(parts)
    return v


def pilot_image_sd(pilot: pd.DataFrame, metric: str,
                   arms: set) -> Optional[Tuple[float, int]]:
    """SD of the paired bootstrap difference of two pilot arms with saved
    detections (the verdict's arms when the pilot has them)."""
    groups = [g for _, g in pilot.groupby(['grid', 'model', 'arm',
                                           'dataset'])]
    groups.sort(key=lambda g: g.arm.iloc[0] not in arms)
    evals = RunEvals()
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            if a.dataset.iloc[0] != b.dataset.iloc[0]:
                continue
            est_samples = pw.paired_samples(evals, a, b, metric)
            if est_samples is not None:
                return est_samples
    return None



def fed_verdicts(grid: GridSpec) -> Dict[str, dict]:
    out = {}
    for wid, w in load_weaknesses().items():
        sides = (w['a'] if isinstance(w['a'], list) else [w['a']]) + [w['b']]
        if any(s['grid'] == grid.name for s in sides):
            out[wid] = w
    return out


def seed_cost(costs: List[Tuple[PlannedRun, RunCost]], w: dict) -> float:
    """Device-hours of one seed of every arm the verdict compares."""
    sides = (w['a'] if isinstance(w['a'], list) else [w['a']]) + [w['b']]
    keys = {(s['model'], s['arm']) for s in sides}
    first = min(p.run.seed for p, _ in costs)
    return sum(c.device_hours for p, c in costs
               if (p.run.model, p.run.arm) in keys and p.run.seed == first)


def fmt_h(hours: float) -> str:
    return 'no rate: run --probe' if hours != hours else f'{hours:,.1f} h'


def print_plan(args, grid: GridSpec, runs: List[RunSpec],
               work_dir: str) -> int:
    devices = args.plan_devices
    planned, n_train = resolve(grid, runs, work_dir, devices)
    device = args.plan_device
    rates = load_rates(args.rates or RATES)
    probed = {}
    costs = []
    for p in planned:
        rate = None
        if args.probe:
            key = p.run.config
            if key not in probed:
                probed[key] = probe(p.cfg, key, args.probe,
                                    threads=max(1, (os.cpu_count() or 1)
                                                // max(devices, 1)))
                if args.save_rates:
                    save_rate(probed[key], args.rates or RATES)
            rate = probed[key]
        else:
            rate = find_rate(rates, p.run.config, device)
        costs.append((p, estimate(p.run.label, p.cfg, p.run.config, rate,
                                  n_train[p.run.dataset],
                                  p.dataset.val_images)))
    mem_gb = args.plan_device_mem_gb
    print(f'plan for grid {grid.name}: {len(planned)} run(s) on '
          f'{devices} x {device} (rates: '
          f'{"probe" if args.probe else args.rates or RATES})')
    total_h, wall = 0.0, 0.0
    for p, c in costs:
        fits = ''
        if mem_gb and c.peak_mem_mb == c.peak_mem_mb:
            fits = '' if c.peak_mem_mb <= mem_gb * 1024 else \
                f'  DOES NOT FIT {mem_gb:g} GB'
        print(f'  {p.run.label:48s} {p.recipe.placement.text()}, '
              f'{c.iterations} iters: '
              + (f'{c.wall_s / 3600:,.2f} h wall, '
                 f'{c.device_hours:,.1f} device-h, '
                 f'{c.peak_mem_mb / 1024:.1f} GB/process{fits}'
                 if c.wall_s == c.wall_s else c.source))
        total_h += c.device_hours
        wall += c.wall_s * c.processes / max(devices, 1)
    srcs = sorted({c.source for _, c in costs})
    print(f'  total device-hours: {fmt_h(total_h)}; wall on {devices} '
          f'device(s), runs in turn: {fmt_h(wall / 3600)}; rates from: '
          f'{"; ".join(srcs)}')
    pilot = pilot_results(args.pilot) if args.pilot else None
    published = published_table()
    n_now = len(grid.seeds)
    source = ('pilot ' + ', '.join(args.pilot) if pilot is not None
              else 'COCO prior')
    print(f'verdicts this grid feeds ({n_now} seed(s) now; {source}):')
    for wid, w in fed_verdicts(grid).items():
        effect, src = pw.claimed_effect(wid, w, published)
        if effect is None:
            print(f'  {wid}: {src}')
            continue
        n_img = planned[0].dataset.val_images
        v = pilot_variance(pilot, w, n_img) if pilot is not None \
            else pw.prior(w['metric'], n_img)
        margin = 100 * float(w.get('margin', 0.0))
        s = pw.summarise(w['kind'], effect, v, n_now, margin)
        need = s['seeds_needed']
        per_seed = seed_cost(costs, w)
        print(f'  {wid} {w["metric"]} {w["kind"]}: claimed {effect:+.2f} AP '
              f'(gap {pw.gap(w["kind"], effect, margin):.2f}; {src})')
        print(f'      now: MDE {s["mde_now"]:.2f} AP, power '
              f'{s["power_now"]:.0%}; seeds needed for 80%: '
              + (f'{need}, device-hours: {fmt_h(per_seed * need)}'
                 if need else f'not reachable with <= {pw.MAX_SEEDS} seeds '
                 f'({unreachable_reason(w["kind"], effect, v, margin)})'))
        if args.seeds:
            print(f'      with --seeds {args.seeds}: power '
                  f'{pw.power(w["kind"], effect, v, args.seeds, margin):.0%}'
                  f', MDE {pw.mde(w["kind"], v, args.seeds):.2f} AP, '
                  f'device-hours: {fmt_h(per_seed * args.seeds)}')
        print(f'      noise: {pw.describe(v)}')
    return 0
