"""``run_grid.py GRID --plan``: what the grid can decide and what it costs.

Trains nothing (except the short ``--probe``, in a temporary directory) and
writes nothing into run dirs. For every verdict (W1-W11,
``analysis/data/weaknesses.yaml``) the grid feeds it prints the claimed
effect, the minimum detectable effect with the grid's seeds, the seeds the
claim needs at 80% power (:mod:`analysis.power`) and their device-hours; for
every run its estimated wall time and device-hours
(:mod:`experiments.cost.plan_cost`).
"""
import copy
import os
import os.path as osp
from typing import Dict, List, Tuple

import pandas as pd

from analysis.power import claimed_effect
from analysis.published import published_table
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
from experiments.plan.verdict_plan import other_grid, plan_lines
from experiments.plan.weights_check import (
    drop_unavailable_weights,
    refusal,
    weight_sources,
)
from experiments.store import (COLUMNS, project_path, read_results_csv,
                               run_dir_name)

# COCO 2017 split sizes, for planning before the data is downloaded.
COCO_SIZES = {'instances_val2017.json': (118287, 5000)}
# Notes already printed by this plan (another grid's sides reuse them).
NOTED = set()


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
        note = (f'  (dataset {spec.name}: {spec.val_ann} is not here; the '
                f'plan uses COCO 2017\'s known sizes, {sizes[0]} train and '
                f'{sizes[1]} val images)')
        if note not in NOTED:
            print(note)
            NOTED.add(note)
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
    ``results.csv``).

    Raises:
        ValueError: A pilot file is missing, not a results table, or has
            no finished run; the message names the file.
    """
    frames = []
    for given in paths:
        path = given
        if path.endswith(('.yaml', '.yml')):
            g = load_grid(path)
            path = osp.join(project_path(g.work_dir), 'results.csv')
        path = project_path(path)
        if not osp.isfile(path):
            raise ValueError(f'--pilot {given}: {path} does not exist (a '
                             f'results.csv, or a grid whose runs have '
                             f'finished)')
        try:
            df = read_results_csv(path)
        except (UnicodeDecodeError, pd.errors.ParserError,
                pd.errors.EmptyDataError, ValueError) as e:
            raise ValueError(f'--pilot {given}: {path} is not a results '
                             f'table ({type(e).__name__}: '
                             f'{str(e).splitlines()[0][:120]})') from None
        missing = {'status', 'grid', 'model', 'arm', 'dataset', 'run_id',
                   'val_images'} - set(df.columns)
        if missing:
            raise ValueError(f'--pilot {given}: {path} lacks the results '
                             f'columns {", ".join(sorted(missing))}')
        # A hand-made pilot table may leave out what it does not know.
        df = df.reindex(columns=list(dict.fromkeys(
            list(df.columns) + list(COLUMNS))))
        frames.append(df[df.status == 'finished'])
    df = pd.concat(frames, ignore_index=True)
    if df.empty:
        raise ValueError(f'--pilot {", ".join(paths)}: no finished run')
    return df


def grouped_runs(costs: List[Tuple[PlannedRun, RunCost]]):
    """Runs that differ only in their seed, as one line each: (label,
    seeds, planned run, cost) of the first seed."""
    groups: Dict[tuple, list] = {}
    for p, c in costs:
        key = (p.run.model, p.run.arm, p.run.dataset)
        groups.setdefault(key, []).append((p, c))
    for (model, arm, dataset), members in groups.items():
        seeds = [p.run.seed for p, _ in members]
        yield f'{model}/{arm}/{dataset}', seeds, members[0][0], \
            members[0][1]


def fmt_h(hours: float) -> str:
    return 'no rate: run --probe' if hours != hours else f'{hours:,.1f} h'


def print_plan(args, grid: GridSpec, runs: List[RunSpec],
               work_dir: str) -> int:
    """Print the plan; raises ValueError (naming the option, file or
    field) on bad input, before anything is printed."""
    if args.probe < 0:
        raise ValueError(f'--probe {args.probe}: the iterations to train '
                         f'must be a positive number (0: no probe)')
    if args.plan_devices < 1:
        raise ValueError(f'--plan-devices {args.plan_devices}: at least 1')
    pilot = pilot_results(args.pilot) if args.pilot else None
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
                # A rate does not depend on the weights: a missing one
                # (said below) is random init in the probe.
                cfg = copy.deepcopy(p.cfg)
                drop_unavailable_weights(cfg, weight_sources(cfg, key))
                probed[key] = probe(cfg, key, args.probe,
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
    # The plan goes on (it trains nothing); the runs would be refused.
    for line in dict.fromkeys(
            refusal(w, args.grid) for p in planned
            for w in weight_sources(p.cfg, p.run.config) if not w.available):
        print(f'  (weights: {line})')
    total_h, wall = 0.0, 0.0
    for label, seeds, p, c in grouped_runs(costs):
        fits = ''
        if mem_gb and c.peak_mem_mb == c.peak_mem_mb:
            fits = '' if c.peak_mem_mb <= mem_gb * 1024 else \
                f'  DOES NOT FIT {mem_gb:g} GB'
        each = 'each ' if len(seeds) > 1 else ''
        print(f'  {label} seed {",".join(map(str, seeds))}: '
              f'{p.recipe.placement.text()}, {c.iterations} iters, '
              + (f'{each}{c.wall_s / 3600:,.2f} h wall, '
                 f'{c.device_hours:,.1f} device-h, '
                 f'{c.peak_mem_mb / 1024:.1f} GB/process{fits}'
                 if c.wall_s == c.wall_s else c.source))
    for p, c in costs:
        total_h += c.device_hours
        wall += c.wall_s * c.processes / max(devices, 1)
    srcs = sorted({c.source for _, c in costs})
    print(f'  total device-hours: {fmt_h(total_h)}; wall on {devices} '
          f'device(s), runs in turn: {fmt_h(wall / 3600)}; rates from: '
          f'{"; ".join(srcs)}')
    n_now = len(grid.seeds)
    source = ('pilot ' + ', '.join(args.pilot) if pilot is not None
              else 'COCO prior')
    print(f'verdicts this grid feeds ({n_now} seed(s) now; {source}):')
    side_cost = side_costs(grid, costs, args, devices)
    for line in plan_lines(grid, n_now, planned[0].dataset.val_images, pilot,
                           published_table(), side_cost, args.seeds,
                           claimed_effect):
        print(line)
    return 0


def side_costs(grid: GridSpec, costs: List[Tuple[PlannedRun, RunCost]],
               args, devices: int):
    """Device-hours of one seed of a verdict's side, in whichever grid its
    runs live (another declared grid is resolved and costed the same way,
    at the same rates)."""
    rates = load_rates(args.rates or RATES)
    cache: Dict[str, List[Tuple[PlannedRun, RunCost]]] = {grid.name: costs}

    def grid_costs(name: str):
        if name not in cache:
            other = other_grid(name)
            cache[name] = []
            if other is not None:
                runs = [r for r in other.expand()
                        if r.seed == min(other.seeds)]
                planned, n_train = resolve(other, runs, project_path(
                    other.work_dir), devices)
                cache[name] = [(p, estimate(
                    p.run.label, p.cfg, p.run.config,
                    find_rate(rates, p.run.config, args.plan_device),
                    n_train[p.run.dataset], p.dataset.val_images))
                    for p in planned]
        return cache[name]

    def cost(side: dict) -> Tuple[float, str]:
        found = grid_costs(side['grid'])
        if not found:
            return float('nan'), f'{side["grid"]} (not written yet)'
        first = min(p.run.seed for p, _ in found)
        hours = [c.device_hours for p, c in found
                 if (p.run.model, p.run.arm) == (side['model'], side['arm'])
                 and p.run.seed == first]
        return (sum(hours) if hours else float('nan')), side['grid']
    return cost
