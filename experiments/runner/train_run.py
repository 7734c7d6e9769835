"""Train and evaluate one prepared run directory (a child of run_grid.py).

    python -m experiments.runner.train_run work_dirs/smoke/<run dir>
    python -m experiments.runner.rank_launch --nproc 8 <run dir>  # k ranks

Under ``torchrun`` (``experiments/runner/rank_launch.py``) each process is one
rank:
NCCL on GPUs; on a machine without CUDA the ranks are CPU processes joined by
gloo, so the k-process path runs (and is tested) anywhere. The run's
``placement`` in its config says how many processes it was planned for; a
different world size is refused, because the total batch would change.

Reads ``run.json`` and ``config.py`` from the run directory, trains through
mmengine's ``Runner`` with ``work_dir`` set to it -- resuming from its last
checkpoint when there is one -- evaluates the test split with ``CocoMetric``
(keeping the raw detections under ``detections/``), and writes
``FINISHED.json`` atomically. A config with ``evaluate_only = True`` only
evaluates its ``load_from`` checkpoint (0 iterations). On an exception it
writes ``error.json``
(phase, type, message) and exits with status 1.

The run's lock (``experiments/runner/lock.py``) is held for the whole attempt:
inherited from run_grid.py, or taken here; when another process holds it
the attempt exits with status 75 and touches nothing. A run that is already
finished exits 0 at once.
"""
import argparse
import datetime
import os
import os.path as osp
import sys
import traceback
import zipfile
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from experiments.grid.run_config import unformatted
from experiments.grid.spec import TRACKERS
from experiments.runner.child import EXIT_LOCKED, die_with_parent
from experiments.runner.lock import LOCK_FD_ENV, RunLock
from experiments.runner.progress import AttemptRecorder, attempt_signals
from experiments.runner.progress_hook import RunProgressHook
from experiments.runner.resume_row import resume_columns
from experiments.store import (
    FINISHED,
    append_attempt,
    atomic_write_json,
    atomic_write_text,
    coco_metrics_to_row,
    detections_prefix,
    last_checkpoint_target,
    read_attempts,
    read_json,
    run_label,
    run_status,
    saved_checkpoints,
    set_aside,
)

def build_runner(cfg: Config) -> Runner:
    """Build the runner the way mmdet's ``tools/train.py`` does, without
    yapf-formatting the config's text at every checkpoint
    (:func:`~experiments.grid.run_config.unformatted`; the run dir's
    ``config.py``, written by the grid runner, stays formatted)."""
    unformatted(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def intact_checkpoint(path: str) -> Optional[str]:
    """None if ``path`` reads back whole, else what is wrong with it.

    ``torch.save`` writes a zip archive: a truncated file has no central
    directory, a damaged one fails its CRC-32 check. Reading it through
    costs about a second per 300 MB, once per attempt.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return f'{type(e).__name__}: {e}'
    return f'member {bad} fails its CRC check' if bad else None


def repair_last_checkpoint(run_dir: str) -> None:
    """Point ``last_checkpoint`` at the newest checkpoint that reads back.

    mmengine writes the checkpoint, then ``last_checkpoint``, neither
    atomically. An attempt killed while writing either leaves a file the
    next resume fails on: a damaged checkpoint is set aside (renamed, not
    deleted) and the attempt resumes from the newest intact one, saying so
    in ``run.log``.
    """
    path = osp.join(run_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return
    with open(path) as f:
        written = f.read().strip()
    target = last_checkpoint_target(run_dir)
    saved = saved_checkpoints(run_dir)
    candidates = ([target] if target and osp.isfile(target) else []) + [
        osp.abspath(osp.join(run_dir, name)) for _, _, name in saved
        if osp.abspath(osp.join(run_dir, name)) != target]
    for candidate in candidates:
        problem = intact_checkpoint(candidate)
        if problem is None:
            if candidate != target:
                print(f'{path}: resuming from {candidate}', flush=True)
            if candidate != written:
                atomic_write_text(path, candidate)
            return
        kept = set_aside(candidate)
        print(f'{candidate}: damaged checkpoint ({problem}); kept as '
              f'{osp.basename(kept)}, trying an earlier one', flush=True)
    print(f'{run_dir}: no intact checkpoint; training starts from the '
          f'beginning', flush=True)
    os.remove(path)


def prepare_config(run_dir: str, launcher: str = 'none') -> Config:
    """The run's config with its work dir, resume and detection output."""
    cfg = Config.fromfile(osp.join(run_dir, 'config.py'))
    cfg.work_dir = run_dir
    cfg.launcher = launcher
    if cfg.get('evaluate_only'):
        # Nothing trains: runner.test() loads load_from (checked and made
        # absolute when the grid was planned).
        cfg.resume = False
    else:
        # Resume from run_dir/last_checkpoint when an earlier attempt left
        # one.
        cfg.resume = True
        repair_last_checkpoint(run_dir)
        cfg.load_from = None
    # The harness evaluates once, with runner.test(). A validation that the
    # train loop would run only after its last iteration (val_interval not
    # reached earlier) would repeat that evaluation, so it is dropped.
    loop = cfg.get('train_cfg', {})
    last = loop.get('max_iters', loop.get('max_epochs'))
    if last is not None and loop.get('val_interval', 1) >= last:
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    evaluators = cfg.test_evaluator
    for ev in evaluators if isinstance(evaluators, list) else [evaluators]:
        if ev.get('type') == 'CocoMetric':
            ev['outfile_prefix'] = detections_prefix(run_dir)
    return cfg


def add_tracker(cfg: Config, meta: dict) -> None:
    """Add the grid's live tracker to the visualizer, at training time.

    Not part of the resolved config (or the run id): watching a run must
    not make it another run.
    """
    backend = TRACKERS.get(meta.get('tracker') or 'none')
    if backend is None:
        return
    vis = cfg.get('visualizer') or dict(type='DetLocalVisualizer')
    backends = list(vis.get('vis_backends') or
                    [dict(type='LocalVisBackend')])
    if any(b.get('type') == backend for b in backends):
        return
    extra = dict(type=backend)
    label = run_label(meta['model'], meta['arm'], meta['dataset'],
                      meta['seed'])
    if backend == 'MLflowVisBackend':
        extra.update(exp_name=meta.get('grid') or 'grid', run_name=label)
    elif backend == 'WandbVisBackend':
        extra.update(init_kwargs=dict(project=meta.get('grid') or 'grid',
                                      name=label, group=meta.get('arm')))
    vis['vis_backends'] = backends + [extra]
    cfg.visualizer = vis


def unwrapped(model):
    """The model inside a DDP wrapper."""
    return model.module if hasattr(model, 'module') else model


def _rank() -> int:
    return int(os.environ.get('RANK', '0'))


def _is_rank0() -> bool:
    return _rank() == 0


def _world_size(launcher: str) -> int:
    return int(os.environ.get('WORLD_SIZE', '1')) if launcher != 'none' \
        else 1


def check_world_size(cfg: Config, launcher: str) -> None:
    """Refuse to train on another number of processes than planned.

    Raises:
        RuntimeError: Naming both numbers.
    """
    planned = (cfg.get('placement') or {}).get('processes', 1)
    world = _world_size(launcher)
    if planned != world:
        raise RuntimeError(
            f'the run was planned for {planned} process(es) (total batch '
            f'{cfg.placement.get("total_batch")}) and started on {world}; '
            f'plan it again for this placement')


def init_cpu_process_group(launcher: str) -> None:
    """Join the ranks with gloo where there is no GPU.

    mmengine's ``init_dist`` always calls ``torch.cuda.set_device``; with the
    group already initialised here, the runner uses it as it is.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(
            backend='gloo', timeout=datetime.timedelta(minutes=30))
        print(f'rank {dist.get_rank()} of {dist.get_world_size()}: no CUDA, '
              f'ranks joined with gloo', flush=True)


def write_error(run_dir: str, launcher: str, phase: str,
                error: BaseException) -> None:
    """``error.json`` (one process) or ``error.rank<r>.json`` (k ranks:
    ``rank_launch`` keeps the earliest as the run's error)."""
    record = dict(phase=phase, type=type(error).__name__,
                  message=str(error), traceback=traceback.format_exc(),
                  rank=_rank(), time=datetime.datetime.now().timestamp())
    name = 'error.json' if launcher == 'none' else \
        f'error.rank{_rank()}.json'
    atomic_write_json(osp.join(run_dir, name), record)


def train_and_evaluate(run_dir: str, launcher: str = 'none') -> dict:
    """Run one attempt; return the FINISHED row (rank 0) or ``{}``."""
    meta = read_json(osp.join(run_dir, 'run.json'))
    rank0 = _is_rank0()
    recorder = AttemptRecorder(run_dir)
    if rank0:
        recorder.close_killed_attempts()
    phase = 'build'
    runner = None
    try:
        cfg = prepare_config(run_dir, launcher)
        check_world_size(cfg, launcher)
        add_tracker(cfg, meta or {})
        init_cpu_process_group(launcher)
        runner = build_runner(cfg)
        if cfg.get('evaluate_only'):
            # Strict, before runner.test() loads load_from its own
            # (non-strict) way: a checkpoint that does not fit fails here.
            from mmdet_plugins.export.checkpoint import load_weights
            load_weights(unwrapped(runner.model), cfg.load_from,
                         osp.join(run_dir, 'config.py'),
                         allow_partial=bool(
                             cfg.get('allow_partial_checkpoint')))
        if rank0:
            runner.register_hook(RunProgressHook(recorder))
        # Every rank tests rank 0's trained model, resumed or not.
        from mmdet_plugins.engine.same_model_test_hook import \
            SameModelTestHook
        tested = SameModelTestHook()
        runner.register_hook(tested)
        if not cfg.get('evaluate_only'):
            phase = 'train'
            runner.train()
        phase = 'test'
        metrics = runner.test()
    except BaseException as e:
        if launcher != 'none' or rank0:
            write_error(run_dir, launcher, phase, e)
        if rank0 and launcher == 'none':
            # With k ranks an exception may follow another rank's death (a
            # collective whose peer is gone): the runner records the
            # attempt's end from what rank_launch says was the cause.
            recorder.end(f'failed in {phase}',
                         runner.iter if runner is not None else None)
        raise
    if not rank0:
        return {}
    # The sentinel counts this attempt before its end record is appended: a
    # kill in between leaves a finished run, never one that trains twice.
    this = recorder.end_record('finished', runner.iter)
    ends = [a for a in read_attempts(run_dir)
            if a.get('event') == 'end'] + [this]
    model = unwrapped(runner.model)
    gpus = _world_size(launcher) if torch.cuda.is_available() else 0
    accumulation = (cfg.get('placement') or {}).get('accumulation', 1)
    wall = sum(a['elapsed_s'] for a in ends)
    peaks = {k: max((a[k] for a in ends if a.get(k) is not None),
                    default=None)
             for k in ('peak_rss_mb', 'peak_gpu_mem_mb')}
    row = dict(meta)
    row.update(coco_metrics_to_row(metrics))
    row.update(
        status='finished',
        params=sum(p.numel() for p in model.parameters()),
        iterations=runner.iter,
        optimizer_steps=runner.iter // accumulation,
        wall_time_s=round(wall, 2),
        gpus=gpus,
        gpu_hours=round(wall * gpus / 3600, 4),
        **peaks,
        attempts=len(ends),
        signals=attempt_signals(ends),
        **resume_columns(run_dir, tested.problems()),
        work_dir=run_dir,
        detections=osp.join(run_dir, 'detections'),
        finished_at=datetime.datetime.now().isoformat(timespec='seconds'),
        error='', log_tail='')
    atomic_write_json(osp.join(run_dir, FINISHED), row)
    append_attempt(run_dir, this)
    return row


def run_locked(run_dir: str, launcher: str = 'none') -> int:
    """Train ``run_dir`` under its lock; return the process exit status.

    Under ``torchrun`` only rank 0 takes the lock: the other ranks cannot
    start training without it (they wait for rank 0 in the process group).
    """
    lock = None
    if os.environ.get(LOCK_FD_ENV) is None and _is_rank0():
        lock = RunLock(run_dir)
        if not lock.acquire():
            print(f'{run_dir}: locked by another process '
                  f'({lock.holder()}); nothing done', file=sys.stderr)
            return EXIT_LOCKED
    try:
        if run_status(run_dir) == 'finished':
            print(f'{run_dir}: already finished; nothing done')
            return 0
        train_and_evaluate(run_dir, launcher)
        return 0
    except Exception:  # noqa: BLE001 -- recorded in error.json
        traceback.print_exc()
        return 1
    finally:
        if lock is not None:
            lock.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('run_dir')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm'])
    args = parser.parse_args()
    if args.launcher != 'none':
        die_with_parent()
        if os.getppid() == 1:   # the launcher died before the prctl
            raise SystemExit('launcher gone before this rank started')
    code = run_locked(args.run_dir, args.launcher)
    if args.launcher != 'none':
        close_process_group()
    raise SystemExit(code)


def close_process_group() -> None:
    """Destroy the rank's process group while Python still runs.

    Left to the interpreter's teardown, gloo's threads were once destroyed
    still joinable: rank 1 of a finished run aborted at exit ("terminate
    called without an active exception", SIGABRT), and its launcher
    recorded a rank failure for a run that had finished.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
