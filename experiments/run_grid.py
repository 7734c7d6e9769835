"""Train and evaluate every run of a grid; skip finished runs, resume others.

    python experiments/run_grid.py experiments/grids/smoke.yaml
    python experiments/run_grid.py GRID --dry-run
    python experiments/run_grid.py GRID --only model=mask_rcnn --only seed=0
    python experiments/run_grid.py GRID --retry-failed

Before anything trains, the whole grid is checked: the spec's keys, every
dataset (built-in ones are generated), every config with its overrides, and
every model build. Any problem is printed with the file and the key or run it
concerns, and nothing runs.

Each run trains in its own process (``experiments/train_run.py``) and its
own work dir, so a crash, a NaN loss or an out-of-memory kill fails that run
alone. ``results.csv`` in the grid's work dir is rebuilt from the runs'
sentinels after every run (see ``experiments/run_store.py``).
"""
import argparse
import dataclasses
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Tuple

from experiments.coco_check import CocoFormatError
from experiments.datasets import PreparedDataset, prepare_dataset
from experiments.grid_spec import (PROJECT_ROOT, GridSpec, GridSpecError,
                                   RunSpec, load_grid, project_path)
from experiments.run_config import (ConfigBuildError, check_model_builds,
                                    config_hash, resolve_config)
from experiments.run_store import (FAILED, RESULTS, atomic_write_json,
                                   read_json, run_dir_name, run_status,
                                   write_results)

LOG_TAIL_LINES = 20


@dataclasses.dataclass
class PlannedRun:
    """A grid run resolved and checked: what ``launch`` needs."""

    run: RunSpec
    run_id: str
    run_dir: str
    cfg: object
    dataset: PreparedDataset


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train and evaluate every run of a grid.')
    parser.add_argument('grid', help='grid specification (YAML)')
    parser.add_argument('--work-dir', default=None,
                        help='overrides the grid\'s work_dir')
    parser.add_argument('--dry-run', action='store_true',
                        help='check the grid and list its runs; train nothing')
    parser.add_argument('--retry-failed', action='store_true',
                        help='run failed runs again (they resume from their '
                        'last checkpoint)')
    parser.add_argument('--only', action='append', default=[],
                        metavar='FIELD=VALUE',
                        help='keep runs whose model, arm, dataset or seed '
                        'equals VALUE; repeat to combine')
    return parser.parse_args(argv)


def select(runs: List[RunSpec], only: List[str]) -> List[RunSpec]:
    for item in only:
        field, _, value = item.partition('=')
        if field not in ('model', 'arm', 'dataset', 'seed') or not value:
            raise GridSpecError(f'--only {item!r}: use model=, arm=, '
                                f'dataset= or seed=')
        runs = [r for r in runs if str(getattr(r, field)) == value]
    return runs


def plan(grid: GridSpec, runs: List[RunSpec], work_dir: str
         ) -> Tuple[List[PlannedRun], List[str]]:
    """Resolve every run; collect every problem instead of stopping early.

    Returns:
        The planned runs and the problems found.
    """
    problems: List[str] = []
    datasets: Dict[str, PreparedDataset] = {}
    for name in sorted({r.dataset for r in runs}):
        try:
            datasets[name] = prepare_dataset(grid.datasets[name], grid.path)
        except (CocoFormatError, ValueError) as e:
            problems.append(str(e))
    planned, built = [], set()
    for run in runs:
        if run.dataset not in datasets:
            continue
        dataset = datasets[run.dataset]
        try:
            cfg = resolve_config(run, dataset, grid.path)
            run_id = config_hash(cfg)
            # One build per model/arm/dataset: the seed does not change it.
            key = (run.model, run.arm, run.dataset)
            if key not in built:
                check_model_builds(cfg, f'{grid.path}: run {run.label}')
                built.add(key)
        except (ConfigBuildError, GridSpecError) as e:
            problems.append(str(e))
            continue
        run_dir = osp.join(work_dir, run_dir_name(
            run.model, run.arm, run.dataset, run.seed, run_id))
        planned.append(PlannedRun(run, run_id, run_dir, cfg, dataset))
    return planned, problems


def _log_tail(path: str) -> str:
    if not osp.isfile(path):
        return ''
    with open(path, errors='replace') as f:
        return ''.join(f.readlines()[-LOG_TAIL_LINES:])


def launch(planned: PlannedRun, grid: GridSpec) -> str:
    """Train one run in a child process; return its final status."""
    run, run_dir, dataset = planned.run, planned.run_dir, planned.dataset
    os.makedirs(run_dir, exist_ok=True)
    meta = dict(run_id=planned.run_id, grid=grid.name, model=run.model, arm=run.arm,
                dataset=run.dataset, seed=run.seed, config=run.config,
                val_images=dataset.val_images,
                val_instances=dataset.val_instances)
    planned.cfg.dump(osp.join(run_dir, 'config.py'))
    atomic_write_json(osp.join(run_dir, 'run.json'), meta)
    for stale in (FAILED, 'error.json'):
        if osp.isfile(osp.join(run_dir, stale)):
            os.remove(osp.join(run_dir, stale))
    log_path = osp.join(run_dir, 'run.log')
    with open(log_path, 'a') as log:
        log.write(f'\n===== attempt started {time.ctime()} =====\n')
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, '-m', 'experiments.train_run', run_dir],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            # The run stays "interrupted": the next invocation resumes it.
            proc.terminate()
            proc.wait()
            raise
    if code == 0 and run_status(run_dir) == 'finished':
        return 'finished'
    error = read_json(osp.join(run_dir, 'error.json'))
    if error:
        message = (f'{error["type"]} during {error["phase"]}: '
                   f'{error["message"]}')
    else:
        message = f'child process exited with status {code} (killed?)'
    row = dict(meta, status='failed', error=message, work_dir=run_dir,
               log_tail=_log_tail(log_path))
    atomic_write_json(osp.join(run_dir, FAILED), row)
    return 'failed'


def _fmt(value) -> str:
    return 'n/a' if value != value else f'{100 * value:.1f}'


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        grid = load_grid(args.grid)
        runs = select(grid.expand(), args.only)
    except GridSpecError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    work_dir = project_path(args.work_dir or grid.work_dir)
    planned, problems = plan(grid, runs, work_dir)
    if problems:
        print(f'error: grid {args.grid} has {len(problems)} problem(s); '
              f'nothing was run:', file=sys.stderr)
        for p in problems:
            print(f'  - {p}', file=sys.stderr)
        return 2

    print(f'grid {grid.name}: {len(planned)} run(s), work dir {work_dir}')
    if args.dry_run:
        for p in planned:
            print(f'  {run_status(p.run_dir):11s} {p.run.label:45s} '
                  f'{osp.basename(p.run_dir)}')
            for key, value in p.run.overrides.items():
                print(f'      {key} = {value!r}')
        return 0

    os.makedirs(work_dir, exist_ok=True)
    run_dirs = [p.run_dir for p in planned]
    write_results(work_dir, run_dirs)
    counts = dict(finished=0, failed=0, skipped=0)
    for i, p in enumerate(planned, 1):
        run, run_dir = p.run, p.run_dir
        status = run_status(run_dir)
        head = f'[{i}/{len(planned)}] {run.label}'
        if status == 'finished' or (status == 'failed'
                                    and not args.retry_failed):
            print(f'{head}: {status} earlier, skipped'
                  + ('' if status == 'finished' else
                     ' (--retry-failed runs it again)'))
            counts['skipped'] += 1
            continue
        print(f'{head}: {"resuming" if status == "interrupted" else "training"}'
              f' in {run_dir}', flush=True)
        start = time.time()
        status = launch(p, grid)
        write_results(work_dir, run_dirs)
        counts[status] += 1
        row = read_json(osp.join(
            run_dir, 'FINISHED.json' if status == 'finished' else FAILED))
        if status == 'finished':
            print(f'{head}: finished in {time.time() - start:.0f} s; box AP '
                  f'{_fmt(row["box_AP"])}, mask AP {_fmt(row["mask_AP"])}')
        else:
            print(f'{head}: FAILED: {row["error"]}\n  see '
                  f'{osp.join(run_dir, "run.log")}')
    print(f'done: {counts["finished"]} finished, {counts["failed"]} failed, '
          f'{counts["skipped"]} skipped; results in '
          f'{osp.join(work_dir, RESULTS)}')
    return 1 if counts['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
