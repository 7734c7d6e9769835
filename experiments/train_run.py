"""Train and evaluate one prepared run directory (a child of run_grid.py).

    python -m experiments.train_run work_dirs/smoke/<run dir>

Reads ``run.json`` and ``config.py`` from the run directory, trains through
mmengine's ``Runner`` with ``work_dir`` set to it -- resuming from its last
checkpoint when there is one -- evaluates the test split with ``CocoMetric``
(keeping the raw detections under ``detections/``), and writes
``FINISHED.json`` atomically. On an exception it writes ``error.json``
(phase, type, message) and exits with status 1.
"""
import argparse
import datetime
import os.path as osp
import time
import traceback

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from experiments.run_store import (FINISHED, append_attempt,
                                   atomic_write_json, coco_metrics_to_row,
                                   read_attempts, read_json)


def build_runner(cfg: Config) -> Runner:
    """Build the runner the way mmdet's ``tools/train.py`` does."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def prepare_config(run_dir: str) -> Config:
    """The run's config with its work dir, resume and detection output."""
    cfg = Config.fromfile(osp.join(run_dir, 'config.py'))
    cfg.work_dir = run_dir
    # Resume from run_dir/last_checkpoint when an earlier attempt left one.
    cfg.resume = True
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
            ev['outfile_prefix'] = osp.join(run_dir, 'detections', 'val')
    return cfg


def train_and_evaluate(run_dir: str) -> dict:
    """Run one attempt; return the FINISHED row."""
    meta = read_json(osp.join(run_dir, 'run.json'))
    start = time.time()
    phase = 'build'
    try:
        cfg = prepare_config(run_dir)
        runner = build_runner(cfg)
        phase = 'train'
        runner.train()
        phase = 'test'
        metrics = runner.test()
    except BaseException as e:
        atomic_write_json(osp.join(run_dir, 'error.json'), dict(
            phase=phase, type=type(e).__name__, message=str(e),
            traceback=traceback.format_exc()))
        append_attempt(run_dir, dict(elapsed_s=time.time() - start,
                                     status=f'failed in {phase}'))
        raise
    append_attempt(run_dir, dict(elapsed_s=time.time() - start,
                                 status='finished'))
    attempts = read_attempts(run_dir)
    model = runner.model.module if hasattr(runner.model, 'module') \
        else runner.model
    row = dict(meta)
    row.update(coco_metrics_to_row(metrics))
    row.update(
        status='finished',
        params=sum(p.numel() for p in model.parameters()),
        iterations=runner.iter,
        wall_time_s=round(sum(a['elapsed_s'] for a in attempts), 2),
        attempts=len(attempts),
        work_dir=run_dir,
        detections=osp.join(run_dir, 'detections'),
        finished_at=datetime.datetime.now().isoformat(timespec='seconds'),
        error='', log_tail='')
    atomic_write_json(osp.join(run_dir, FINISHED), row)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('run_dir')
    args = parser.parse_args()
    try:
        train_and_evaluate(args.run_dir)
    except Exception:  # noqa: BLE001 -- recorded in error.json above
        traceback.print_exc()
        raise SystemExit(1)


if __name__ == '__main__':
    main()
