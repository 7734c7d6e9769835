"""The grid's results table: one row per run, rebuilt from the sentinels."""
from __future__ import annotations

import fcntl
import os
import os.path as osp
from typing import TYPE_CHECKING, Dict, List, Optional

from experiments.store.files import (
    DamagedFileError,
    atomic_write_json,
    atomic_write_text,
    read_json,
    warn,
)
from experiments.store.layout import COST, FAILED, MANIFEST, ORT_COST, RESULTS
from experiments.store.run_dir import finished_row, read_run_meta
from experiments.store.run_paths import (
    own_paths,
    relative_paths,
    resolved_paths,
)

# pandas is imported where a table is built or read: a training process
# imports this package for its file layout and never reads a table (pandas
# is 0.6 s of its start).
if TYPE_CHECKING:
    import pandas as pd

_METRICS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')


_COCO_SUFFIX = {'AP': 'mAP', 'AP50': 'mAP_50', 'AP75': 'mAP_75',
                'APs': 'mAP_s', 'APm': 'mAP_m', 'APl': 'mAP_l'}


METRIC_COLUMNS = [f'{task}_{m}' for task in ('box', 'mask') for m in _METRICS]


COLUMNS = (['run_id', 'grid', 'model', 'arm', 'dataset', 'seed', 'status']
           + METRIC_COLUMNS
           + ['params', 'gflops', 'backbone_gflops', 'latency_ms',
              'latency_device', 'latency_other_load', 'ort_latency_ms',
              'ort_latency_device', 'ort_latency_other_load',
              # The run's batch and recipe (experiments/grid/batch_recipe.py).
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
                work_dir=osp.abspath(run_dir))


def collect_rows(run_dirs: List[str]) -> pd.DataFrame:
    """One row per run that has a sentinel, in ``run_dirs`` order.

    A sentinel that does not read gives a ``damaged`` row naming the file,
    so the run stays in the table.
    """
    import pandas as pd
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
            rows.append(own_paths(failed, run_dir))
    return pd.DataFrame(rows, columns=COLUMNS)


TEXT_COLUMNS = ['run_id', 'grid', 'model', 'arm', 'dataset', 'status',
                'recipe', 'resumed_from', 'resume_exact', 'latency_device',
                'ort_latency_device', 'signals', 'config',
                'weights', 'work_dir', 'detections', 'finished_at', 'error',
                'log_tail']


def read_results_csv(path: str) -> pd.DataFrame:
    """Read a results table without pandas' guessing on text columns.

    By default pandas turns an arm called ``nan`` or ``null`` into NaN and a
    run id such as ``123e4567`` into a float. ``work_dir`` and
    ``detections`` come back absolute, in the run dirs next to ``path``
    (:func:`experiments.store.run_paths.resolved_paths`): a copied or moved
    work dir is read where it is.
    """
    import pandas as pd
    numeric = [c for c in COLUMNS if c not in TEXT_COLUMNS]
    df = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS},
                     keep_default_na=False,
                     na_values={c: ['', 'nan', 'NaN'] for c in numeric})
    return resolved_paths(df, osp.dirname(osp.abspath(path)))


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
        # Run dirs relative to the table, so a copy of the work dir reads
        # its own runs.
        table = relative_paths(collect_rows(run_dirs), osp.abspath(work_dir))
        atomic_write_text(path, table.to_csv(index=False))
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
