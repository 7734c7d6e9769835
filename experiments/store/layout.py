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
    results.csv           one row per run, rebuilt from the sentinels; its
                          work_dir and detections are relative to the work
                          dir, so a copied or moved work dir reads its own
                          runs (experiments/store/run_paths.py)
    grid_runs.json        the run dirs results.csv lists (to rebuild it)

A run is finished if and only if ``FINISHED.json`` exists and reads as a
finished row; one that does not (a damaged file) makes the run ``damaged``,
and its next attempt evaluates it again from its last checkpoint. The
results table is derived from the sentinels after every run, so it can never
hold a row twice or miss a finished run; a damaged table is rebuilt.
"""
import os.path as osp
import re

# The checkout: grids, configs and data roots are written relative to it.
PROJECT_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

RUN_META = 'run.json'
RUN_CONFIG = 'config.py'
RUN_LOG = 'run.log'
ATTEMPTS = 'attempts.jsonl'
DETECTIONS = 'detections'
FINISHED = 'FINISHED.json'
FAILED = 'FAILED.json'
COST = 'cost.json'
ORT_COST = 'cost_onnxruntime.json'
RESULTS = 'results.csv'
MANIFEST = 'grid_runs.json'
CHECKPOINT_NAME = re.compile(r'(iter|epoch)_(\d+)\.pth')


def run_dir_name(model: str, arm: str, dataset: str, seed: int,
                 run_id: str) -> str:
    return f'{model}__{arm}__{dataset}__seed{seed}__{run_id}'


def project_path(path: str) -> str:
    """``path`` as given when absolute, else under the checkout."""
    return path if osp.isabs(path) else osp.join(PROJECT_ROOT, path)


def run_label(model: str, arm: str, dataset: str, seed) -> str:
    """``model/arm/dataset/seedN``: how messages and the report name a run."""
    return f'{model}/{arm}/{dataset}/seed{int(seed)}'


def detections_prefix(run_dir: str) -> str:
    """CocoMetric's ``outfile_prefix`` for a run's raw results."""
    return osp.join(run_dir, DETECTIONS, 'val')


def detections_file(detections_dir: str, iou_type: str) -> str:
    """``<detections dir>/val.{bbox,segm}.json``, as CocoMetric writes it."""
    return osp.join(detections_dir, f'val.{iou_type}.json')
