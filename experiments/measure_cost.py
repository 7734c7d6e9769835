"""Measure FLOPs and inference latency of a grid's finished runs.

    python experiments/measure_cost.py experiments/grids/centermask_table4.yaml
    python experiments/measure_cost.py GRID --device cuda:0 --images 500
    python experiments/measure_cost.py GRID --device cpu --threads 2
    python experiments/measure_cost.py GRID --all-seeds --force
    python experiments/measure_cost.py GRID --onnxruntime

For each finished run in the grid's ``results.csv`` -- by default one per
model/arm/dataset (the lowest seed: cost depends on the architecture, not on
the seed) -- loads the final checkpoint, counts FLOPs on the first test
images and times ``--images`` test images one at a time, in ``--rounds``
rounds that visit every run in turn (``experiments/cost/model_cost.py`` says
exactly what is counted and timed). The
figures go to ``<run>/cost.json`` and into the results table's ``gflops``,
``backbone_gflops``, ``latency_ms`` and ``latency_device`` columns, which the
report's SE vs eSE table, speed-vs-accuracy figure and latency verdicts read.
With ``--onnxruntime`` each run is also exported (``tools/export_onnx.py``'s
export, to ``<run>/onnx/``) and timed under onnxruntime right after its
PyTorch timing in every round, from the same resized images to the same
pasted masks; those figures go to ``<run>/cost_onnxruntime.json`` and the
``ort_latency_ms``, ``ort_latency_device`` and ``ort_latency_other_load``
columns, and the speed figure draws them beside PyTorch's.

Run it on an otherwise idle device: the runs are timed one after another in
this process, so every arm sees the same machine. A run measured before on
the same device is skipped unless ``--force``; a run that fails to measure
is reported by name and the others are still measured. Each run's last
checkpoint loads strictly: one that does not fit the run's ``config.py``
(missing, unexpected or misshapen keys) is named in one line, the run is
not measured, and the exit status is 2 (1 for other failures).
"""
import argparse
import os
import os.path as osp
import sys
import traceback

import pandas as pd

from experiments.cli import add_grid_arguments, fail, grid_work_dir
from experiments.grid.spec import GridSpecError, load_grid
from experiments.store import (
    COST,
    ORT_COST,
    RESULTS,
    DamagedFileError,
    atomic_write_json,
    load_results_table,
    read_json,
    run_label,
    warn,
    write_results,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='FLOPs and latency of a grid\'s finished runs.')
    add_grid_arguments(parser)
    parser.add_argument('--device', default=None,
                        help='cpu, cuda or cuda:N (default: cuda if '
                        'available, else cpu)')
    parser.add_argument('--images', type=int, default=200,
                        help='test images timed per run and round')
    parser.add_argument('--rounds', type=int, default=3,
                        help='timing rounds; each round times every run '
                        'in turn, so drift of the machine hits all arms')
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
    parser.add_argument('--onnxruntime', action='store_true',
                        help='also export each run to ONNX (<run>/onnx/) '
                        'and time it under onnxruntime in the same rounds '
                        '(CPU provider; CUDA provider with --device cuda)')
    return parser.parse_args(argv)


def runs_to_measure(results: pd.DataFrame, all_seeds: bool) -> pd.DataFrame:
    done = results[results.status == 'finished']
    if all_seeds:
        return done
    return (done.sort_values('seed')
            .drop_duplicates(['model', 'arm', 'dataset']))


def _measured(run_dir: str, name: str, device: str, rounds: int) -> bool:
    """Whether ``run_dir/name`` holds a measurement on ``device`` with at
    least ``rounds`` rounds."""
    try:
        old = read_json(osp.join(run_dir, name))
    except DamagedFileError as e:
        warn(f'{e}; measured again')
        return False
    return bool(old and old.get('device_name') == device
                and old.get('rounds', 1) >= rounds)


def _has_onnx_timing(run_dir: str, device: str, rounds: int) -> bool:
    """Timed under onnxruntime, or known to have no export (box-only)."""
    cost = read_json(osp.join(run_dir, COST))
    return bool(cost and cost.get('onnx_unsupported')) or _measured(
        run_dir, ORT_COST, device, rounds)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if min(args.rounds, args.images) < 1:
        return fail('--rounds and --images must be at least 1')
    try:
        grid = load_grid(args.grid)
    except GridSpecError as e:
        return fail(str(e))
    work_dir = grid_work_dir(args, grid.work_dir)
    results_path = osp.join(work_dir, RESULTS)
    if not osp.isfile(results_path):
        return fail(f'{results_path}: no results table; run '
                    f'experiments/run_grid.py {args.grid} first')
    try:
        table = load_results_table(results_path)
    except DamagedFileError as e:
        return fail(str(e))
    todo = runs_to_measure(table, args.all_seeds)
    if todo.empty:
        print(f'{results_path}: no finished run to measure')
        return 0

    from experiments.cost.model_cost import (
        combine_rounds,
        count_run_flops,
        device_name,
        time_run,
    )
    from mmdet_plugins.export.checkpoint import CheckpointMismatchError
    if args.threads:
        torch.set_num_threads(args.threads)
    name = device_name(device)
    todo = list(todo.itertuples())
    label = {r.work_dir: run_label(r.model, r.arm, r.dataset, r.seed)
             for r in todo}
    runs = []
    for r in todo:
        if not args.force and _measured(r.work_dir, COST, name,
                                        args.rounds) and (
                not args.onnxruntime or _has_onnx_timing(
                    r.work_dir, name, args.rounds)):
            print(f'  {label[r.work_dir]}: measured before on this device, '
                  f'skipped (--force measures again)')
        else:
            runs.append(r.work_dir)
    print(f'grid {grid.name}: measuring {len(runs)} run(s) on {name}, '
          f'{args.rounds} round(s) of up to {args.images} images each (a '
          f'smaller test set is timed whole)')
    failed, costs, rounds = {}, {}, {d: [] for d in runs}
    ort_rounds = {d: [] for d in runs}
    exported, no_export, mismatched = set(), {}, set()
    if args.onnxruntime:
        from experiments.cost.onnx_cost import (
            export_run,
            onnx_path,
            time_onnx_run,
        )
        from mmdet_plugins.export.graphs import UnsupportedModelError
        for run_dir in runs:
            try:
                export_run(run_dir)
                exported.add(run_dir)
            except CheckpointMismatchError as e:
                failed[run_dir] = str(e)
                mismatched.add(run_dir)
            except UnsupportedModelError as e:
                # A box-only baseline in a grid: timed in PyTorch only.
                print(f'  {label[run_dir]}: no ONNX export ({e}); timed in '
                      f'PyTorch only')
                no_export[run_dir] = str(e)
            except Exception as e:  # noqa: BLE001 -- reported, others go on
                traceback.print_exc()
                failed[run_dir] = f'ONNX export: {type(e).__name__}: {e}'
    for rnd in range(args.rounds):
        for run_dir in runs:
            if run_dir in failed:
                continue
            try:
                if rnd == 0:
                    costs[run_dir] = count_run_flops(run_dir, device,
                                                     args.flops_images)
                rounds[run_dir].append(time_run(run_dir, device, args.images,
                                                args.warmup))
                if run_dir in exported:
                    ort_rounds[run_dir].append(time_onnx_run(
                        run_dir, device, args.images, args.warmup))
            except CheckpointMismatchError as e:
                failed[run_dir] = str(e)
                mismatched.add(run_dir)
                continue
            except Exception as e:  # noqa: BLE001 -- reported, others go on
                traceback.print_exc()
                failed[run_dir] = f'{type(e).__name__}: {e}'
                continue
            t = rounds[run_dir][-1]
            print(f'  round {rnd + 1}: {label[run_dir]}: '
                  f'{t["latency_ms"]:.1f} ms median' + (
                      f' (onnxruntime '
                      f'{ort_rounds[run_dir][-1]["latency_ms"]:.1f} ms)'
                      if run_dir in exported else ''))
        # Written after every round: an interrupted measurement keeps the
        # rounds it finished (and is measured again, being short of rounds).
        for run_dir in runs:
            if run_dir not in failed:
                extra = ({'onnx_unsupported': no_export[run_dir]}
                         if run_dir in no_export else {})
                atomic_write_json(osp.join(run_dir, COST), dict(
                    costs[run_dir], **combine_rounds(rounds[run_dir]),
                    **extra))
                if ort_rounds[run_dir]:
                    ort = ort_rounds[run_dir]
                    atomic_write_json(osp.join(run_dir, ORT_COST), dict(
                        combine_rounds(ort), provider=ort[0]['provider'],
                        runtime=ort[0]['runtime'], onnx=onnx_path(run_dir)))
    for run_dir in runs:
        if run_dir in failed:
            continue
        cost = read_json(osp.join(run_dir, COST))
        print(f'  {label[run_dir]}: {cost["flops"] / 1e9:.2f} GFLOPs '
              f'(backbone {cost["backbone_flops"] / 1e9:.2f}) at '
              f'{cost["input_hw"][0]:.0f}x{cost["input_hw"][1]:.0f}; '
              f'{cost["latency_ms"]:.1f} ms median over '
              f'{len(cost["per_image_ms"])} images (rounds: '
              + ', '.join(f'{x:.1f}' for x in cost['round_latency_ms'])
              + ')')
        ort = read_json(osp.join(run_dir, ORT_COST)) \
            if args.onnxruntime else None
        if ort:
            print(f'    onnxruntime ({ort["provider"]}): '
                  f'{ort["latency_ms"]:.1f} ms median (rounds: '
                  + ', '.join(f'{x:.1f}' for x in ort['round_latency_ms'])
                  + ')')
        if cost['other_cpu_load'] > 0.25:
            warn(f'other processes used {cost["other_cpu_load"]:.2f} of '
                 f'{os.cpu_count()} cores while {label[run_dir]} was timed; '
                 f'its latency is inflated')
    write_results(work_dir)
    print(f'results: {results_path}')
    if failed:
        print(f'error: {len(failed)} run(s) could not be measured:',
              file=sys.stderr)
        for run_dir, why in failed.items():
            print(f'  - {label[run_dir]} ({run_dir}): {why}',
                  file=sys.stderr)
        return 2 if mismatched else 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
