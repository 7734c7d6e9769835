"""On-disk state of a grid: run directories, sentinels, the results table.

Layout under the grid's work dir::

    <model>__<arm>__<dataset>__seed<seed>__<run id>/
        run.json          what the run is (written before it starts)
        config.py         the resolved config it trains with
        .lock             flock held while a process trains the run
        run.log           stdout/stderr of every attempt
        attempts.jsonl    a launch, a start and an end record per attempt
                          (iteration resumed from, status, the signal that
                          killed it, elapsed, peak memory)
        progress.json     the running attempt's iteration, rewritten often
        detections/       raw COCO results: val.bbox.json, val.segm.json
        FINISHED.json     written atomically after evaluation: the row
        FAILED.json       the row of the last failed attempt
        cost.json         FLOPs and latency (experiments/measure_cost.py)
        cost_onnxruntime.json  latency of the ONNX export under onnxruntime
                          (measure_cost.py --onnxruntime; export in onnx/)
    results.csv           one row per run, rebuilt from the sentinels
    grid_runs.json        the run dirs results.csv lists (to rebuild it)

A run is finished if and only if ``FINISHED.json`` exists and reads as a
finished row; one that does not (a damaged file) makes the run ``damaged``,
and its next attempt evaluates it again from its last checkpoint. The
results table is derived from the sentinels after every run, so it can never
hold a row twice or miss a finished run; a damaged table is rebuilt.
"""
import fcntl
import json
import os
import os.path as osp
import re
import sys
import tempfile
import time
from typing import IO, Callable, Dict, List, Optional, Tuple

import pandas as pd

FINISHED = 'FINISHED.json'
FAILED = 'FAILED.json'
COST = 'cost.json'
ORT_COST = 'cost_onnxruntime.json'
RESULTS = 'results.csv'
MANIFEST = 'grid_runs.json'

_METRICS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')
_COCO_SUFFIX = {'AP': 'mAP', 'AP50': 'mAP_50', 'AP75': 'mAP_75',
                'APs': 'mAP_s', 'APm': 'mAP_m', 'APl': 'mAP_l'}
METRIC_COLUMNS = [f'{task}_{m}' for task in ('box', 'mask') for m in _METRICS]
COLUMNS = (['run_id', 'grid', 'model', 'arm', 'dataset', 'seed', 'status']
           + METRIC_COLUMNS
           + ['params', 'gflops', 'backbone_gflops', 'latency_ms',
              'latency_device', 'latency_other_load', 'ort_latency_ms',
              'ort_latency_device', 'ort_latency_other_load',
              # The run's batch and recipe (experiments/batch_recipe.py).
              'total_batch', 'world_size', 'images_per_process',
              'accumulation', 'base_lr', 'recipe', 'paper_total_batch',
              'paper_lr', 'iterations', 'optimizer_steps',
              'wall_time_s', 'gpus', 'gpu_hours', 'peak_gpu_mem_mb',
              'peak_rss_mb', 'attempts', 'signals', 'resumed_from',
              'resume_exact', 'config', 'weights',
              'work_dir',
              'detections',
              'val_images', 'val_instances', 'finished_at', 'error',
              'log_tail'])


def atomic_write(path: str, write: Callable[[IO], None],
                 binary: bool = False) -> None:
    """Write ``path`` through ``write(file)`` so readers see the old or the
    new file, never a part of it."""
    directory = osp.dirname(osp.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-')
    except OSError as e:
        # A read-only or full place: name the file the caller meant.
        raise OSError(e.errno, e.strerror, path) from None
    try:
        with os.fdopen(fd, 'wb' if binary else 'w') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if osp.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.filename in (None, tmp):
            # Name the file the caller meant, not the temporary one.
            raise OSError(e.errno, e.strerror, path) from None
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text))


def atomic_write_json(path: str, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str))


def warn(message: str) -> None:
    """One line on stderr: something was wrong and was dealt with."""
    print(f'warning: {message}', file=sys.stderr)


class DamagedFileError(ValueError):
    """A file the harness wrote no longer reads back; names the file."""


def read_json(path: str) -> Optional[dict]:
    """The JSON object in ``path``, or None when there is no such file.

    Raises:
        DamagedFileError: The file is not a JSON object (truncated,
            overwritten, binary).
    """
    if not osp.isfile(path):
        return None
    try:
        with open(path, 'rb') as f:
            obj = json.loads(f.read().decode('utf-8'))
    except ValueError as e:  # UnicodeDecodeError is one too
        raise DamagedFileError(f'{path}: damaged, not valid JSON '
                               f'({str(e).splitlines()[0][:80]})') from None
    if not isinstance(obj, dict):
        raise DamagedFileError(f'{path}: damaged, holds a JSON '
                               f'{type(obj).__name__}, not an object')
    return obj


def finished_row(run_dir: str) -> Optional[dict]:
    """The row in ``FINISHED.json``; None when there is none.

    Raises:
        DamagedFileError: The file exists but is not a finished row.
    """
    path = osp.join(run_dir, FINISHED)
    row = read_json(path)
    if row is not None and row.get('status') != 'finished':
        raise DamagedFileError(f'{path}: damaged, status is '
                               f'{row.get("status")!r}, not "finished"')
    return row


def read_run_meta(run_dir: str) -> dict:
    """``run.json``, or ``{}`` when it is missing or damaged."""
    try:
        return read_json(osp.join(run_dir, 'run.json')) or {}
    except DamagedFileError:
        return {}


CHECKPOINT_NAME = re.compile(r'(iter|epoch)_(\d+)\.pth')


def saved_checkpoints(run_dir: str) -> List[Tuple[str, int, str]]:
    """(``iter`` or ``epoch``, number, file name) of mmengine's checkpoints
    in ``run_dir``, newest first."""
    found = [(m.group(1), int(m.group(2)), name)
             for name in os.listdir(run_dir)
             if (m := CHECKPOINT_NAME.fullmatch(name))]
    return sorted(found, key=lambda c: c[1], reverse=True)


def last_checkpoint_target(run_dir: str) -> str:
    """The checkpoint ``run_dir/last_checkpoint`` names, inside ``run_dir``.

    mmengine writes an absolute path. A work dir that was copied or moved
    still names the original's file, which may exist (and then the resume
    would load another run's weights, or fail the trusted-dir check): a
    file of that name in ``run_dir``, where mmengine saves every
    checkpoint, comes first; the path as written otherwise. '' when there
    is no ``last_checkpoint`` or it is empty.
    """
    path = osp.join(run_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return ''
    with open(path) as f:
        target = f.read().strip()
    if not target:
        return ''
    own = osp.join(osp.abspath(run_dir), osp.basename(target))
    return own if osp.isfile(own) or not osp.isfile(target) else target


def set_aside(path: str) -> str:
    """Rename a damaged file to ``<name>.damaged-<time>``; return the name.

    Kept, not deleted: it may be worth a look, and nothing is ever lost.
    """
    target = f'{path}.damaged-{time.strftime("%Y%m%dT%H%M%S")}'
    os.replace(path, target)
    return target


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
    """``finished``, ``damaged`` (a ``FINISHED.json`` that does not read),
    ``failed``, ``interrupted`` (started) or ``pending``."""
    if osp.isfile(osp.join(run_dir, FINISHED)):
        try:
            finished_row(run_dir)
        except DamagedFileError:
            return 'damaged'
        return 'finished'
    if osp.isfile(osp.join(run_dir, FAILED)):
        return 'failed'
    if osp.isfile(osp.join(run_dir, 'run.json')):
        return 'interrupted'
    return 'pending'


def read_attempts(run_dir: str) -> List[dict]:
    """The records of ``attempts.jsonl``; a line that does not read (a kill
    in the middle of an append) is skipped with a warning."""
    path = osp.join(run_dir, 'attempts.jsonl')
    if not osp.isfile(path):
        return []
    records = []
    with open(path, errors='replace') as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                warn(f'{path}: line {number} is damaged; skipped')
    return records


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
    try:
        cost = read_json(osp.join(run_dir, COST))
    except DamagedFileError as e:
        warn(f'{e}; no cost columns (measure_cost.py --force '
                      f'measures again)')
        return {}
    if not cost:
        return {}
    columns = dict(gflops=cost['flops'] / 1e9,
                   backbone_gflops=cost['backbone_flops'] / 1e9,
                   latency_ms=cost['latency_ms'],
                   latency_device=latency_device(cost),
                   latency_other_load=cost.get('other_cpu_load'))
    try:
        ort = read_json(osp.join(run_dir, ORT_COST))
    except DamagedFileError as e:
        warn(f'{e}; no onnxruntime columns (measure_cost.py --onnxruntime '
             f'--force measures again)')
        ort = None
    if ort:
        columns.update(ort_latency_ms=ort['latency_ms'],
                       ort_latency_device=latency_device(ort),
                       ort_latency_other_load=ort.get('other_cpu_load'))
    return columns


def _damaged_row(run_dir: str, message: str) -> dict:
    return dict(read_run_meta(run_dir), status='damaged', error=message,
                work_dir=run_dir)


def collect_rows(run_dirs: List[str]) -> pd.DataFrame:
    """One row per run that has a sentinel, in ``run_dirs`` order.

    A sentinel that does not read gives a ``damaged`` row naming the file,
    so the run stays in the table.
    """
    rows = []
    for run_dir in run_dirs:
        try:
            finished = finished_row(run_dir)
            if finished is not None:
                rows.append(dict(finished, **cost_columns(run_dir)))
                continue
            failed = read_json(osp.join(run_dir, FAILED))
        except DamagedFileError as e:
            rows.append(_damaged_row(run_dir, str(e)))
            continue
        if failed is not None:
            rows.append(failed)
    return pd.DataFrame(rows, columns=COLUMNS)


TEXT_COLUMNS = ['run_id', 'grid', 'model', 'arm', 'dataset', 'status',
                'recipe', 'resumed_from', 'resume_exact', 'latency_device', 'ort_latency_device', 'signals', 'config',
                'weights', 'work_dir', 'detections', 'finished_at', 'error',
                'log_tail']


def read_results_csv(path: str) -> pd.DataFrame:
    """Read a results table without pandas' guessing on text columns.

    By default pandas turns an arm called ``nan`` or ``null`` into NaN and a
    run id such as ``123e4567`` into a float.
    """
    numeric = [c for c in COLUMNS if c not in TEXT_COLUMNS]
    return pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS},
                       keep_default_na=False,
                       na_values={c: ['', 'nan', 'NaN'] for c in numeric})


def listed_run_dirs(work_dir: str) -> List[str]:
    """The run dirs the grid's table lists, to rebuild it without a plan.

    From ``grid_runs.json``; for a work dir without one (or with a damaged
    one), every run dir in it that has a ``run.json``.
    """
    try:
        manifest = read_json(osp.join(work_dir, MANIFEST))
    except DamagedFileError as e:
        warn(f'{e}; listing the run dirs found in {work_dir}')
        manifest = None
    if manifest is not None:
        return [osp.join(work_dir, name) for name in manifest['runs']]
    if not osp.isdir(work_dir):
        return []
    return sorted(osp.join(work_dir, name) for name in os.listdir(work_dir)
                  if osp.isfile(osp.join(work_dir, name, 'run.json')))


def write_results(work_dir: str,
                  run_dirs: Optional[List[str]] = None) -> str:
    """Rebuild ``results.csv`` (and ``grid_runs.json``) from the sentinels.

    Serialised by an ``flock`` on ``.results.lock``: two runners (or Slurm
    jobs) finishing at once cannot leave a table that misses a sentinel one
    of them read too early.

    Args:
        work_dir: The grid's work dir.
        run_dirs: The runs to list; None keeps the runs the table already
            lists (``grid_runs.json``, read under the lock), for tools that
            add to finished runs -- ``cost.json`` -- or rebuild a damaged
            table without planning the grid.
    """
    path = osp.join(work_dir, RESULTS)
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, '.results.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if run_dirs is None:
            run_dirs = listed_run_dirs(work_dir)
        atomic_write_text(path, collect_rows(run_dirs).to_csv(index=False))
        atomic_write_json(osp.join(work_dir, MANIFEST), dict(
            runs=[osp.relpath(d, work_dir) for d in run_dirs]))
    return path


REQUIRED_COLUMNS = ('run_id', 'model', 'arm', 'dataset', 'seed', 'status')


def load_results_table(path: str) -> pd.DataFrame:
    """Read a grid's ``results.csv``; rebuild it first if it is damaged.

    The table is derived from the run dirs' sentinels, so a table that does
    not parse, or lacks its columns, is rebuilt from them (with a warning
    naming the file) when its work dir holds run dirs.

    Raises:
        FileNotFoundError: naming the path.
        DamagedFileError: The table is damaged and nothing is there to
            rebuild it from.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: results table does not exist '
                                f'(run experiments/run_grid.py first)')
    try:
        df = read_results_csv(path)
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        problem = (f'lacks column(s) {", ".join(missing)}' if missing
                   else '')
    except ValueError as e:  # ParserError, UnicodeDecodeError
        problem = f'does not parse ({type(e).__name__}: ' \
            f'{str(e).splitlines()[0][:80]})'
    if not problem:
        return df
    work_dir = osp.dirname(osp.abspath(path))
    run_dirs = listed_run_dirs(work_dir)
    if not run_dirs:
        raise DamagedFileError(f'{path}: damaged results table ({problem}) '
                               f'and no run dirs beside it to rebuild it '
                               f'from')
    warn(f'{path}: damaged results table ({problem}); rebuilt from '
                  f'the {len(run_dirs)} run dir(s) of {work_dir}')
    write_results(work_dir, run_dirs)
    return read_results_csv(path)
