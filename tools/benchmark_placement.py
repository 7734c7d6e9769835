"""Seconds per iteration of one total batch placed three ways, on CPU.

    python tools/benchmark_placement.py                 # tiny Mask R-CNN
    python tools/benchmark_placement.py \
        --config configs/centermask/centermask_r18-tiny_fpn_builtin.py \
        --iters 40 --total-batch 2

Trains the same tiny model on the built-in dataset through the harness
(``run_grid.py``) as 1 process x 2 images, 2 processes x 1 image (gloo) and
1 process x 1 image x 2 accumulation steps, and prints each placement's
median seconds per optimizer step (mmengine's ``time`` scalar, the first
logging window dropped as warm-up) and its wall time. Run it on an otherwise
idle machine: the figures are what this machine gives, not a GPU's.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile

import yaml

from experiments.store import PROJECT_ROOT, read_results_csv

PLACEMENTS = {'1x2': dict(processes=1, max_images_per_process=2),
              '2x1': dict(processes=2, max_images_per_process=1),
              '1x1x2acc': dict(processes=1, max_images_per_process=1)}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config',
                        default='configs/mask_rcnn/'
                        'mask-rcnn_r18-tiny_fpn_builtin.py')
    parser.add_argument('--iters', type=int, default=40,
                        help='optimizer steps per placement')
    parser.add_argument('--total-batch', type=int, default=2)
    parser.add_argument('--work-dir', default=None,
                        help='default: a temporary directory')
    return parser.parse_args(argv)


def step_times(run_dir: str, accumulation: int) -> list:
    """Seconds per optimizer step from mmengine's logged ``time``."""
    # The newest attempt's mmengine log folder (a timestamp).
    logs = sorted(d for d in os.listdir(run_dir) if osp.isfile(
        osp.join(run_dir, d, 'vis_data', 'scalars.json')))
    scalars = osp.join(run_dir, logs[-1], 'vis_data', 'scalars.json')
    times = []
    with open(scalars) as f:
        for line in f:
            record = json.loads(line)
            if 'time' in record:
                times.append(record['time'] * accumulation)
    return times[1:]


def main(argv=None) -> int:
    args = parse_args(argv)
    work = args.work_dir or tempfile.mkdtemp(prefix='placement-')
    os.makedirs(work, exist_ok=True)
    models = {name: dict(config=args.config, **placement)
              for name, placement in PLACEMENTS.items()}
    grid = osp.join(work, 'placement.yaml')
    with open(grid, 'w') as f:
        yaml.safe_dump(dict(
            name='placement', work_dir=osp.join(work, 'runs'), models=models,
            datasets={'builtin': {'synthetic': dict(
                num_train=64, num_val=16, image_size=128, num_classes=3,
                seed=0)}},
            seeds=[0], total_batch=args.total_batch, lr_scaling='manual',
            overrides={'train_cfg.max_iters': args.iters,
                       'default_hooks.checkpoint.interval': args.iters,
                       'default_hooks.logger.interval': 5}), f)
    # One run at a time: each placement gets the whole machine.
    for name in PLACEMENTS:
        done = subprocess.run(
            [sys.executable, 'experiments/run_grid.py', grid, '--slots', '2',
             '--only', f'model={name}'], cwd=PROJECT_ROOT)
        if done.returncode:
            return done.returncode
    # Run dirs come back absolute (the table keeps them relative to it).
    table = read_results_csv(osp.join(work, 'runs', 'results.csv'))
    print(f'{args.config}, total batch {args.total_batch}, {args.iters} '
          f'optimizer steps, CPU')
    for row in table.itertuples():
        times = step_times(row.work_dir, int(row.accumulation))
        print(f'  {row.model:10s} {row.world_size:.0f} x '
              f'{row.images_per_process:.0f} x {row.accumulation:.0f}: '
              f'{statistics.median(times):.3f} s per optimizer step '
              f'(median of {len(times)} windows), wall {row.wall_time_s:.0f}'
              f' s, box AP {row.box_AP:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
