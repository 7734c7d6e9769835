"""Measure FLOPs and inference latency of a grid's finished runs.

    python experiments/measure_cost.py experiments/grids/centermask_table4.yaml
    python experiments/measure_cost.py GRID --device cuda:0 --images 500
    python experiments/measure_cost.py GRID --device cpu --threads 2
    python experiments/measure_cost.py GRID --all-seeds --force

For each finished run in the grid's ``results.csv`` -- by default one per
model/arm/dataset (the lowest seed: cost depends on the architecture, not on
the seed) -- loads the final checkpoint, counts FLOPs on the first test
images and times ``--images`` test images one at a time
(``experiments/model_cost.py`` says exactly what is counted and timed). The
figures go to ``<run>/cost.json`` and into the results table's ``gflops``,
``backbone_gflops``, ``latency_ms`` and ``latency_device`` columns, which the
report's SE vs eSE table, speed-vs-accuracy figure and latency verdicts read.

Run it on an otherwise idle device: the runs are timed one after another in
this process, so every arm sees the same machine. A run measured before on
the same device is skipped unless ``--force``; a run that fails to measure
is reported by name and the others are still measured.
"""
import argparse
import os
import os.path as osp
import sys
import traceback

import pandas as pd

from experiments.grid_spec import GridSpecError, load_grid, project_path
from experiments.run_store import (COST, RESULTS, atomic_write_json,
                                   read_json, read_results_csv,
                                   refresh_results)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='FLOPs and latency of a grid\'s finished runs.')
    parser.add_argument('grid', help='grid specification (YAML)')
    parser.add_argument('--work-dir', default=None,
                        help='overrides the grid\'s work_dir')
    parser.add_argument('--device', default=None,
                        help='cpu, cuda or cuda:N (default: cuda if '
                        'available, else cpu)')
    parser.add_argument('--images', type=int, default=200,
                        help='test images timed per run')
    parser.add_argument('--warmup', type=int, default=10,
                        help='images run before timing starts')
    parser.add_argument('--flops-images', type=int, default=5,
                        help='test images FLOPs are averaged over')
    parser.add_argument('--threads', type=int, default=None,
                        help='CPU threads (default: torch\'s default)')
    parser.add_argument('--all-seeds', action='store_true',
                        help='measure every seed, not one per arm')
    parser.add_argument('--force', action='store_true',
                        help='measure again runs already measured on this '
                        'device')
    return parser.parse_args(argv)


def runs_to_measure(results: pd.DataFrame, all_seeds: bool) -> pd.DataFrame:
    done = results[results.status == 'finished']
    if all_seeds:
        return done
    return (done.sort_values('seed')
            .drop_duplicates(['model', 'arm', 'dataset']))


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        grid = load_grid(args.grid)
    except GridSpecError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    work_dir = project_path(args.work_dir or grid.work_dir)
    results_path = osp.join(work_dir, RESULTS)
    if not osp.isfile(results_path):
        print(f'error: {results_path}: no results table; run '
              f'experiments/run_grid.py {args.grid} first', file=sys.stderr)
        return 2
    todo = runs_to_measure(read_results_csv(results_path), args.all_seeds)
    if todo.empty:
        print(f'{results_path}: no finished run to measure')
        return 0

    from experiments.model_cost import device_name, measure_run
    if args.threads:
        torch.set_num_threads(args.threads)
    name = device_name(device)
    print(f'grid {grid.name}: measuring {len(todo)} run(s) on {name}')
    failed = []
    for r in todo.itertuples():
        label = f'{r.model}/{r.arm}/{r.dataset}/seed{r.seed}'
        old = read_json(osp.join(r.work_dir, COST))
        if old and old.get('device_name') == name and not args.force:
            print(f'  {label}: measured before on this device, skipped '
                  f'(--force measures again)')
            continue
        try:
            cost = measure_run(r.work_dir, device, args.images, args.warmup,
                               args.flops_images)
        except Exception as e:  # noqa: BLE001 -- reported, others go on
            traceback.print_exc()
            failed.append(f'{label} ({r.work_dir}): {type(e).__name__}: {e}')
            continue
        atomic_write_json(osp.join(r.work_dir, COST), cost)
        if cost['other_cpu_load'] > 0.25:
            print(f'  warning: other processes used '
                  f'{cost["other_cpu_load"]:.2f} of {os.cpu_count()} cores '
                  f'while {label} was timed; its latency is inflated',
                  file=sys.stderr)
        print(f'  {label}: {cost["flops"] / 1e9:.2f} GFLOPs (backbone '
              f'{cost["backbone_flops"] / 1e9:.2f}) at '
              f'{cost["input_hw"][0]:.0f}x{cost["input_hw"][1]:.0f}; '
              f'{cost["latency_ms"]:.1f} ms median over '
              f'{cost["timed_images"]} images')
    refresh_results(work_dir)
    print(f'results: {results_path}')
    if failed:
        print(f'error: {len(failed)} run(s) could not be measured:',
              file=sys.stderr)
        for f in failed:
            print(f'  - {f}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
