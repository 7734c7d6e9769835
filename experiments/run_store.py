"""On-disk state of a grid: run directories, sentinels, the results table.

Layout under the grid's work dir::

    <model>__<arm>__<dataset>__seed<seed>__<run id>/
        run.json          what the run is (written before it starts)
        config.py         the resolved config it trains with
        .lock             flock held while a process trains the run
        run.log           stdout/stderr of every attempt
        attempts.jsonl    a start and an end record per attempt (iteration
                          resumed from, status, elapsed, peak memory)
        progress.json     the running attempt's iteration, rewritten often
        detections/       raw COCO results: val.bbox.json, val.segm.json
        FINISHED.json     written atomically after evaluation: the row
        FAILED.json       the row of the last failed attempt
        cost.json         FLOPs and latency (experiments/measure_cost.py)
    results.csv           one row per run, rebuilt from the sentinels

A run is finished if and only if ``FINISHED.json`` exists. The results table
is derived from the sentinels after every run, so it can never hold a row
twice or miss a finished run.
"""
import fcntl
import json
import os
import os.path as osp
import tempfile
from typing import Dict, List, Optional

import pandas as pd

FINISHED = 'FINISHED.json'
FAILED = 'FAILED.json'
COST = 'cost.json'
RESULTS = 'results.csv'

_METRICS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')
_COCO_SUFFIX = {'AP': 'mAP', 'AP50': 'mAP_50', 'AP75': 'mAP_75',
                'APs': 'mAP_s', 'APm': 'mAP_m', 'APl': 'mAP_l'}
METRIC_COLUMNS = [f'{task}_{m}' for task in ('box', 'mask') for m in _METRICS]
COLUMNS = (['run_id', 'grid', 'model', 'arm', 'dataset', 'seed', 'status']
           + METRIC_COLUMNS
           + ['params', 'gflops', 'backbone_gflops', 'latency_ms',
              'latency_device', 'latency_other_load', 'iterations',
              'wall_time_s', 'gpus', 'gpu_hours', 'peak_gpu_mem_mb',
              'peak_rss_mb', 'attempts', 'config', 'weights', 'work_dir',
              'detections',
              'val_images', 'val_instances', 'finished_at', 'error',
              'log_tail'])


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file."""
    directory = osp.dirname(osp.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-')
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_json(path: str, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str))


def read_json(path: str) -> Optional[dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def coco_metrics_to_row(metrics: Dict[str, float]) -> Dict[str, float]:
    """``runner.test()``'s CocoMetric keys to the table's columns.

    pycocotools reports -1 for an area range without ground truth; that is
    "undefined", not a score, so it becomes NaN.
    """
    row = {}
    for task, coco_task in (('box', 'bbox'), ('mask', 'segm')):
        for m in _METRICS:
            value = metrics.get(f'coco/{coco_task}_{_COCO_SUFFIX[m]}')
            row[f'{task}_{m}'] = (float('nan') if value is None or value < 0
                                  else float(value))
    return row


def run_dir_name(model: str, arm: str, dataset: str, seed: int,
                 run_id: str) -> str:
    return f'{model}__{arm}__{dataset}__seed{seed}__{run_id}'


def run_status(run_dir: str) -> str:
    """``finished``, ``failed``, ``interrupted`` (started) or ``pending``."""
    if osp.isfile(osp.join(run_dir, FINISHED)):
        return 'finished'
    if osp.isfile(osp.join(run_dir, FAILED)):
        return 'failed'
    if osp.isfile(osp.join(run_dir, 'run.json')):
        return 'interrupted'
    return 'pending'


def read_attempts(run_dir: str) -> List[dict]:
    path = osp.join(run_dir, 'attempts.jsonl')
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def append_attempt(run_dir: str, record: dict) -> None:
    with open(osp.join(run_dir, 'attempts.jsonl'), 'a') as f:
        f.write(json.dumps(record) + '\n')


def latency_device(cost: dict) -> str:
    """``"cuda: NVIDIA H100 ..."`` or ``"cpu: ..."`` from a ``cost.json``.

    The kind comes first: the verdicts check that a GPU claim was timed on
    a GPU.
    """
    return f"{cost['device'].split(':')[0]}: {cost['device_name']}"


def cost_columns(run_dir: str) -> dict:
    """The table's cost columns from a run's ``cost.json`` (or none)."""
    cost = read_json(osp.join(run_dir, COST))
    if not cost:
        return {}
    return dict(gflops=cost['flops'] / 1e9,
                backbone_gflops=cost['backbone_flops'] / 1e9,
                latency_ms=cost['latency_ms'],
                latency_device=latency_device(cost),
                latency_other_load=cost.get('other_cpu_load'))


def collect_rows(run_dirs: List[str]) -> pd.DataFrame:
    """One row per run that has a sentinel, in ``run_dirs`` order."""
    rows = []
    for run_dir in run_dirs:
        finished = read_json(osp.join(run_dir, FINISHED))
        if finished is not None:
            rows.append(dict(finished, **cost_columns(run_dir)))
            continue
        failed = read_json(osp.join(run_dir, FAILED))
        if failed is not None:
            rows.append(failed)
    return pd.DataFrame(rows, columns=COLUMNS)


TEXT_COLUMNS = ['run_id', 'grid', 'model', 'arm', 'dataset', 'status',
                'latency_device', 'config', 'weights', 'work_dir',
                'detections',
                'finished_at', 'error', 'log_tail']


def read_results_csv(path: str) -> pd.DataFrame:
    """Read a results table without pandas' guessing on text columns.

    By default pandas turns an arm called ``nan`` or ``null`` into NaN and a
    run id such as ``123e4567`` into a float.
    """
    numeric = [c for c in COLUMNS if c not in TEXT_COLUMNS]
    return pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS},
                       keep_default_na=False,
                       na_values={c: ['', 'nan', 'NaN'] for c in numeric})


def write_results(work_dir: str,
                  run_dirs: Optional[List[str]] = None) -> str:
    """Rebuild ``results.csv`` from the sentinels of ``run_dirs``.

    Serialised by an ``flock`` on ``.results.lock``: two runners (or Slurm
    jobs) finishing at once cannot leave a table that misses a sentinel one
    of them read too early.

    Args:
        work_dir: The grid's work dir.
        run_dirs: The runs to list; None keeps the runs the table already
            lists (read under the lock), for tools that add to finished
            runs -- ``cost.json`` -- without planning the grid.
    """
    path = osp.join(work_dir, RESULTS)
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, '.results.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if run_dirs is None:
            run_dirs = list(read_results_csv(path).work_dir)
        atomic_write_text(path, collect_rows(run_dirs).to_csv(index=False))
    return path
