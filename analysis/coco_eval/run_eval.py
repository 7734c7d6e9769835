"""Per-image evaluations of runs: from a run's saved detections, through
the cache, once per report.

A run's detections (``<run>/detections/val.{bbox,segm}.json``) are
evaluated against the ground truth its run dir names, with COCO's four
area ranges and the report's fine bins. A run whose detections do not read
is recorded as damaged (with a warning) and left out of what needs them.
"""
import contextlib
import io
import os.path as osp
from typing import Dict, List, Optional, Tuple

import pandas as pd
from pycocotools.coco import COCO

from analysis.coco_eval import eval_cache
from analysis.coco_eval.constants import COCO_AREAS, FINE_BINS
from analysis.coco_eval.detections import load_detections
from analysis.coco_eval.image_eval import ImageEval, evaluate_images
from analysis.parallel import map_runs
from experiments.store import (detections_file, evaluation_gt_file,
                               run_label, warn)

# What the report evaluates every run on: COCO's ranges and the fine bins.
REPORT_AREAS = dict(COCO_AREAS, **FINE_BINS)


def load_ground_truth(ann_file: str) -> COCO:
    """A COCO annotation file, loaded without pycocotools' prints."""
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(ann_file)


def image_eval_for_run(detections_dir: str, ann_file: str, iou_type: str,
                       areas: Optional[Dict[str, Tuple[float, float]]] = None,
                       coco_gt=None, use_cache: bool = True) -> ImageEval:
    """:func:`evaluate_images` on a run's saved ``val.<bbox|segm>.json``.

    Args:
        detections_dir: The run's ``detections/``.
        ann_file: The ground truth the run was evaluated on.
        iou_type: ``'bbox'`` or ``'segm'``.
        areas: Area ranges; default COCO's four.
        coco_gt: The loaded ground truth, or a function returning it (only
            called when the cache cannot answer), or None to load
            ``ann_file``.
        use_cache: Read and write :mod:`analysis.coco_eval.eval_cache`.
    """
    areas = dict(areas or COCO_AREAS)
    path = detections_file(detections_dir, iou_type)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: detections file does not exist')
    if use_cache:
        ev = eval_cache.load(path, ann_file, iou_type, areas)
        if ev is not None:
            return ev
    if callable(coco_gt):
        coco_gt = coco_gt()
    if coco_gt is None:
        coco_gt = load_ground_truth(ann_file)
    ev = evaluate_images(coco_gt, load_detections(path), iou_type, areas)
    if use_cache:
        eval_cache.store(ev, path, ann_file, iou_type)
    return ev


_WORKER_GT: Dict[str, COCO] = {}


def evaluate_in_worker(det_dir: str, ann_file: str, iou_type: str
                       ) -> Tuple[Optional[ImageEval], Optional[str]]:
    """(evaluation, None) or (None, what is damaged) of one run, as
    :class:`RunEvals` computes it; the ground truth is loaded once per
    process."""
    def ground_truth():
        if ann_file not in _WORKER_GT:
            _WORKER_GT[ann_file] = load_ground_truth(ann_file)
        return _WORKER_GT[ann_file]

    try:
        return image_eval_for_run(det_dir, ann_file, iou_type,
                                  REPORT_AREAS, ground_truth), None
    except (ValueError, OSError) as e:
        return None, str(e)


def note_damaged(damaged: Dict[str, str], row, message: str) -> None:
    """Record ``row``'s damage once, with a warning on stderr."""
    label = run_label(row.model, row.arm, row.dataset, row.seed)
    if label not in damaged:
        damaged[label] = message
        warn(f'run {label} left out of the report sections that read its '
             f'detections: {message}')


class RunEvals:
    """Per-image evaluations of finished runs, computed once each."""

    def __init__(self) -> None:
        self._gt = {}
        self._evals: Dict[tuple, Optional[ImageEval]] = {}
        # run label -> what is damaged; the run is left out of every
        # section that needs its detections, and listed in the report.
        self.damaged: Dict[str, str] = {}

    def get(self, row, iou_type: str) -> Optional[ImageEval]:
        key = (row.run_id, iou_type)
        if key not in self._evals:
            self._evals[key] = self._compute(row, iou_type)
        return self._evals[key]

    def _compute(self, row, iou_type: str) -> Optional[ImageEval]:
        det_dir = row.detections if isinstance(row.detections, str) else ''
        if not det_dir or not osp.isfile(detections_file(det_dir,
                                                         iou_type)):
            return None
        ann = evaluation_gt_file(row.work_dir)

        def ground_truth():
            # Loaded only when a run's evaluation is not cached.
            if ann not in self._gt:
                self._gt[ann] = load_ground_truth(ann)
            return self._gt[ann]

        try:
            return image_eval_for_run(det_dir, ann, iou_type, REPORT_AREAS,
                                      ground_truth)
        except (ValueError, OSError) as e:
            note_damaged(self.damaged, row, str(e))
            return None

    def evaluate_all(self, df: pd.DataFrame) -> None:
        """Evaluate every finished run of ``df``, box and mask, now (the
        sections then read them): from the cache, and what it lacks on
        every core (:func:`analysis.parallel.map_runs`), each run whole."""
        todo = []
        for iou_type in ('bbox', 'segm'):
            for row in df[df.status == 'finished'].itertuples():
                key = (row.run_id, iou_type)
                det_dir = row.detections if isinstance(row.detections,
                                                       str) else ''
                ann = evaluation_gt_file(row.work_dir) if det_dir else None
                if key in self._evals or not ann or not osp.isfile(
                        detections_file(det_dir, iou_type)):
                    self.get(row, iou_type)
                    continue
                try:
                    cached = eval_cache.load(
                        detections_file(det_dir, iou_type), ann, iou_type,
                        REPORT_AREAS)
                except OSError:
                    cached = None  # the worker names the problem
                if cached is not None:
                    self._evals[key] = cached
                else:
                    todo.append((row, (det_dir, ann, iou_type)))
        results = map_runs(evaluate_in_worker, [args for _, args in todo])
        for (row, (_, _, iou_type)), (ev, error) in zip(todo, results):
            if error is not None:
                note_damaged(self.damaged, row, error)
            self._evals[(row.run_id, iou_type)] = ev

    def for_runs(self, runs: pd.DataFrame,
                 iou_type: str) -> List[ImageEval]:
        evals = [self.get(r, iou_type) for r in runs.itertuples()]
        return [e for e in evals if e is not None]
