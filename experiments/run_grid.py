"""Train and evaluate every run of a grid; skip finished runs, resume others.

    python experiments/run_grid.py experiments/grids/smoke.yaml
    python experiments/run_grid.py GRID --gpus 0,1,2,3      # runs on 4 GPUs
    python experiments/run_grid.py GRID --gpus 0 --max-images-per-process 16
    python experiments/run_grid.py GRID --slots 2       # 2 CPU runs at once
    python experiments/run_grid.py GRID --executor slurm --partition gpu \
        --time-min 1440 --max-parallel 16
    python experiments/run_grid.py GRID --dry-run
    python experiments/run_grid.py GRID --only model=mask_rcnn --only seed=0
    python experiments/run_grid.py GRID --cfg-options train_cfg.max_iters=50
    python experiments/run_grid.py GRID --retry-failed
    python experiments/run_grid.py GRID --plan --plan-devices 8 \
        --plan-device V100 --pilot work_dirs/pilot_tiny/results.csv

Before anything trains, the whole grid is checked: the spec's keys, every
dataset (built-in ones are generated), every config with its overrides, and
every model build. Any problem is printed with the file and the key or run it
concerns, and nothing runs.

Each run trains in its own process (``experiments/runner/train_run.py``) and
its
own work dir, so a crash, a NaN loss or an out-of-memory kill fails that run
alone. Each run trains at its grid's total batch, placed on the GPUs (or CPU
processes) it gets as processes x images x accumulation steps, with its
config's recipe (``experiments/grid/batch_recipe.py``); ``--dry-run`` shows
it. A training process killed by a signal (out of memory, a kill) is first
resumed from its last checkpoint, up to ``--signal-retries`` times in a row;
each attempt's signal is in the run's ``attempts.jsonl`` and its row. Runs
execute concurrently, one per slot (``experiments/runner/scheduler.py``); a run
with k processes takes k slots and runs under ``torchrun``
(``experiments/runner/rank_launch.py``).
A lock per run (``experiments/runner/lock.py``) keeps two runners -- on one
machine or many -- from training the same run; an interrupted run resumes
from its last checkpoint. ``results.csv`` in the grid's work dir is rebuilt
from the runs' sentinels after every run (see ``experiments/store/``).
Ctrl-C or SIGTERM stops the running children; they resume next time.
"""
import argparse
import os
import os.path as osp
import signal
import sys
from typing import List

from experiments.cli import add_grid_arguments, fail, grid_work_dir
from experiments.grid.cfg_options import (
    add_cfg_options_argument,
    with_cfg_options,
)
from experiments.grid.spec import TRACKERS, GridSpec, GridSpecError, load_grid
from experiments.grid.table import cell, grid_completion, table_run_dirs
from experiments.plan.args import add_plan_args
from experiments.runner.grid_progress import GridProgress, fmt_ap
from experiments.runner.grid_runs import (
    check_work_dir,
    estimated_cost,
    plan,
    print_dry_run,
    select,
    with_hardware,
)
from experiments.runner.launch import (
    CPU_SLOT_PREFIX,
    SIGNAL_RETRIES,
    PlannedRun,
    exit_status,
    make_job,
)
from experiments.runner.scheduler import SlotScheduler
from experiments.runner.slots import resolve_slots
from experiments.slurm.queue import active_jobs
from experiments.store import (
    FAILED,
    RESULTS,
    DamagedFileError,
    finished_row,
    read_json,
    write_results,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train and evaluate every run of a grid.')
    add_grid_arguments(parser)
    parser.add_argument('--dry-run', action='store_true',
                        help='check the grid and list its runs; train nothing')
    parser.add_argument('--retry-failed', action='store_true',
                        help='run failed runs again (they resume from their '
                        'last checkpoint)')
    parser.add_argument('--signal-retries', type=int, default=SIGNAL_RETRIES,
                        metavar='N',
                        help='a run whose training process is killed by a '
                        'signal (out of memory, a kill) is resumed from its '
                        'last checkpoint up to N times in a row before it '
                        'fails (default: %(default)s); an exception or a NaN '
                        'loss fails it at once')
    parser.add_argument('--tracker', default=None, choices=list(TRACKERS),
                        help='log every run to this tracker too (mmengine '
                        'visualisation backend; overrides the grid\'s '
                        '"tracker"); TensorBoard: tensorboard --logdir '
                        '<work dir>')
    parser.add_argument('--only', action='append', default=[],
                        metavar='FIELD=VALUE',
                        help='keep runs whose model, arm, dataset or seed '
                        'equals VALUE; repeat to combine')
    add_cfg_options_argument(parser)
    parser.add_argument('--random-init-missing-weights', action='store_true',
                        help='start from random initialisation where an '
                        'initial weight (ImageNet backbone, load_from) is not '
                        'in the cache its run reads (a machine without '
                        'internet); recorded in the run\'s config and '
                        '"weights", so these are other runs. Default: refuse '
                        'the grid, one line per missing file '
                        '(tools/fetch_weights.py GRID fetches them)')
    parser.add_argument('--executor', default='local',
                        choices=['local', 'slurm', 'submitit-local'],
                        help='local: this machine\'s GPUs or CPU slots; '
                        'slurm: one Slurm job per run through submitit; '
                        'submitit-local: the Slurm path run by submitit\'s '
                        'local executor (for testing it without Slurm)')
    add_plan_args(parser)
    batch = parser.add_argument_group(
        'total batch (experiments/grid/batch_recipe.py)')
    batch.add_argument('--processes-per-run', type=int, default=None,
                       metavar='K',
                       help='training processes per run (one per GPU; on '
                       'CPU, gloo processes); overrides the grid\'s '
                       '"processes". Default: every GPU given (the most '
                       'that split the total batch), 1 on CPU')
    batch.add_argument('--max-images-per-process', type=int, default=None,
                       metavar='N',
                       help='memory limit: images one process may take at '
                       'once; the rest of the total batch is gradient '
                       'accumulation. Overrides the grid\'s '
                       '"max_images_per_process"; default: the config\'s '
                       'per-GPU batch')
    local = parser.add_argument_group('local executor')
    local.add_argument('--gpus', default=None,
                       help='GPU ids, e.g. 0,1,2,3, or "all" (default: all '
                       'visible GPUs; with none, one CPU slot)')
    local.add_argument('--slots', type=int, default=None,
                       help='run this many CPU runs at once (no GPU)')
    local.add_argument('--tick', type=float, default=30.0,
                       help='seconds between progress lines')
    slurm = parser.add_argument_group('slurm executor')
    slurm.add_argument('--partition', default=None)
    slurm.add_argument('--account', default=None)
    slurm.add_argument('--qos', default=None)
    slurm.add_argument('--time-min', type=int, default=24 * 60,
                       help='time limit per job; a job that reaches it is '
                       'requeued and resumes from its last checkpoint')
    slurm.add_argument('--max-parallel', type=int, default=16,
                       help='jobs of the array running at once')
    slurm.add_argument('--cpus-per-gpu', type=int, default=8)
    slurm.add_argument('--mem-gb-per-gpu', type=int, default=48)
    slurm.add_argument('--signal-delay-s', type=int, default=120,
                       help='Slurm sends USR2 this long before the time '
                       'limit; the job stops its run and requeues itself '
                       '(it resumes from its last checkpoint)')
    slurm.add_argument('--no-wait', action='store_true',
                       help='submit and exit; run again to collect results')
    args = parser.parse_args(argv)
    if args.signal_retries < 0:
        parser.error(f'--signal-retries {args.signal_retries}: give 0 or '
                     f'more')
    for flag in ('processes_per_run', 'max_images_per_process'):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f'--{flag.replace("_", "-")}: give 1 or more')
    return args



class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


def _raise_terminated(signum, frame):
    raise _Terminated()


def run_local(args, grid: GridSpec, planned: List[PlannedRun],
              work_dir: str, slot_ids: List[str],
              run_dirs: List[str]) -> int:
    cpu_threads = max(1, (os.cpu_count() or 1) // len(slot_ids))
    # A thread count the user (or `make test`, two workers on two cores)
    # set is a ceiling: more threads than cores makes OpenMP spin.
    if os.environ.get('OMP_NUM_THREADS', '').isdigit():
        cpu_threads = max(1, min(cpu_threads,
                                 int(os.environ['OMP_NUM_THREADS'])))
    progress = GridProgress(len(planned), len(slot_ids),
                            {p.run.label: p.run_dir for p in planned})

    def on_finish(p: PlannedRun, status: str) -> None:
        write_results(work_dir, run_dirs)
        try:
            row = (finished_row(p.run_dir) if status == 'finished'
                   else read_json(osp.join(p.run_dir, FAILED))) or {}
        except DamagedFileError as e:
            row = dict(error=str(e))
        if status == 'finished':
            detail = (f'finished in {row.get("wall_time_s", 0):.0f} s; '
                      f'box AP {fmt_ap(row.get("box_AP"))}, mask AP '
                      f'{fmt_ap(row.get("mask_AP"))}')
        else:
            detail = (f'FAILED: {row.get("error")}\n  see '
                      f'{osp.join(p.run_dir, "run.log")}')
        progress.ended(p.run.label, status, detail)

    by_name = {p.run.label: p for p in planned}

    def on_event(kind, job, detail):
        if kind == 'start':
            p = by_name[job.name]
            verb = ('resuming' if osp.isfile(osp.join(
                p.run_dir, 'last_checkpoint')) else 'training')
            progress.started(job.name, f'{verb} on slot(s) '
                             f'{",".join(detail)} in {p.run_dir}')
        elif kind == 'skip':
            hint = '' if detail == 'finished' else \
                ' (--retry-failed runs it again)'
            progress.ended(job.name, detail,
                           f'{detail} earlier, skipped{hint}')
        elif kind == 'again':
            progress.note(f'{job.name}: {exit_status(detail)}; retrying '
                          f'from its last checkpoint')
        elif kind == 'deferred':
            progress.note(f'{job.name}: locked by another runner; '
                          f'will check again')
        elif kind == 'tick':
            progress.tick()

    # A run a Slurm job holds is the job's to train, even before it starts
    # (and takes the run's lock).
    in_slurm = active_jobs([p.run_dir for p in planned])
    for p in planned:
        if p.run_dir in in_slurm:
            progress.ended(p.run.label, 'skipped', f'queued as Slurm job '
                           f'{in_slurm[p.run_dir]}; skipped (that job '
                           f'trains it)')
    jobs = [make_job(p, grid, args.retry_failed, cpu_threads, on_finish,
                     args.signal_retries)
            for p in sorted(planned, key=estimated_cost, reverse=True)
            if p.run_dir not in in_slurm]
    scheduler = SlotScheduler(slot_ids, on_event, tick_s=args.tick)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        scheduler.run(jobs)
    except KeyboardInterrupt:
        progress.close()
        write_results(work_dir, run_dirs)
        print('interrupted: running runs were stopped and resume from their '
              'last checkpoint next time', file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    progress.close()
    write_results(work_dir, run_dirs)
    c = progress.counts
    print(f'done: {c["finished"]} finished, {c["failed"]} failed, '
          f'{sum(v for k, v in c.items() if k.startswith("earlier_"))} '
          f'skipped; results '
          f'in {osp.join(work_dir, RESULTS)}')
    code, summary = grid_completion({p.run.label: p.run_dir
                                     for p in planned})
    print(summary, file=sys.stderr if code else sys.stdout)
    return code


def main(argv=None) -> int:
    try:
        return _main(argv)
    except (DamagedFileError, OSError) as e:
        # A damaged file, a full disk, a work dir gone read-only: one line,
        # not a traceback. Runs resume from their last checkpoint next time.
        where = f'{e.strerror}: {e.filename}' if isinstance(e, OSError) \
            and e.filename else str(e)
        return fail(f'{where}; stopped. Finished runs and checkpoints are '
                    f'kept; the same command resumes')


def _main(argv=None) -> int:
    args = parse_args(argv)
    try:
        grid = load_grid(args.grid)
        if args.tracker:
            grid.tracker = args.tracker
        if grid.weights_cache:
            # Before any check reads the caches; the runs inherit it.
            from experiments.plan.weights_check import use_weights_cache
            use_weights_cache(grid.weights_cache)
        runs = with_cfg_options(grid.path, select(grid.expand(), args.only),
                                args.cfg_options)
        slot_ids = (resolve_slots(args.gpus, args.slots)
                    if args.executor == 'local' else [])
    except GridSpecError as e:
        return fail(str(e))
    work_dir = grid_work_dir(args, grid.work_dir)
    if args.plan:
        # Before the work dir is checked or made: a plan writes nothing.
        from experiments.plan.grid_plan import print_plan
        try:
            return print_plan(args, grid, with_hardware(
                runs, args.processes_per_run, args.max_images_per_process),
                work_dir)
        except (GridSpecError, ValueError) as e:
            return fail(f'grid {args.grid} --plan: {e}; nothing was run')
    # A grid refused at planning leaves no empty work dir behind.
    created_work_dir = not osp.exists(work_dir)
    problem = None if args.dry_run else check_work_dir(work_dir)
    if problem:
        return fail(f'grid {args.grid}: {problem}; nothing was run')
    runs = with_hardware(runs, args.processes_per_run,
                         args.max_images_per_process)
    # A run takes every GPU given by default (the paper's total batch on
    # the fewest accumulation steps); CPU slots run one process per run
    # unless the grid or --processes-per-run says more.
    on_cpu = not slot_ids or slot_ids[0].startswith(CPU_SLOT_PREFIX)
    planned, problems = plan(grid, runs, work_dir,
                             devices=1 if on_cpu else len(slot_ids),
                             random_init_missing_weights=args
                             .random_init_missing_weights)
    if slot_ids:
        for p in planned:
            if p.processes > len(slot_ids):
                kind = 'CPU slots (--slots)' if on_cpu else 'GPUs'
                problems.append(f'{grid.path}: run {p.run.label} needs '
                                f'{p.processes} {kind}; {len(slot_ids)} '
                                f'given')
    if problems:
        if created_work_dir and osp.isdir(work_dir) and \
                not os.listdir(work_dir):
            os.rmdir(work_dir)
        return fail(f'grid {args.grid} has {len(problems)} problem(s); '
                    f'nothing was run:', problems)

    where = (f'{len(slot_ids)} slot(s): {",".join(slot_ids)}' if slot_ids
             else f'executor {args.executor}')
    print(f'grid {grid.name}: {len(planned)} run(s) on {where}, work dir '
          f'{work_dir}')
    if args.dry_run:
        print_dry_run(planned)
        return 0
    table = table_run_dirs(grid, {cell(p.run): p.run_dir for p in planned},
                           work_dir)
    if len(planned) < len(grid.expand()):
        print(f'{osp.join(work_dir, RESULTS)} lists all {len(table)} run(s) '
              f'of the grid on disk; this invocation runs {len(planned)}')
    write_results(work_dir, table)
    if args.executor == 'local':
        return run_local(args, grid, planned, work_dir, slot_ids, table)
    from experiments.slurm.executor import run_submitit
    return run_submitit(args, grid, planned, work_dir, table)


if __name__ == '__main__':
    sys.exit(main())
