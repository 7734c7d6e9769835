"""One run directory: its sentinels, metadata, attempts and checkpoints
(the file names are in :mod:`experiments.store.layout`)."""
import json
import math
import os
import os.path as osp
from typing import List, Optional, Tuple

from experiments.store.files import DamagedFileError, read_json, warn
from experiments.store.layout import (
    CHECKPOINT_NAME,
    FAILED,
    FINISHED,
    RUN_CONFIG,
    project_path,
)
from experiments.store.run_paths import own_paths


def finished_row(run_dir: str) -> Optional[dict]:
    """The row in ``FINISHED.json``; None when there is none.

    Its ``work_dir`` and ``detections`` name ``run_dir`` (where the file was
    read), not the absolute paths written in it: a copied or moved run dir
    is read where it is.

    Raises:
        DamagedFileError: The file exists but is not a finished row.
    """
    path = osp.join(run_dir, FINISHED)
    row = read_json(path)
    if row is not None and row.get('status') != 'finished':
        raise DamagedFileError(f'{path}: damaged, status is '
                               f'{row.get("status")!r}, not "finished"')
    return None if row is None else own_paths(row, run_dir)


def read_run_meta(run_dir: str) -> dict:
    """``run.json``, or ``{}`` when it is missing or damaged."""
    try:
        return read_json(osp.join(run_dir, 'run.json')) or {}
    except DamagedFileError:
        return {}


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


def evaluation_gt_file(run_dir: str) -> Optional[str]:
    """The annotation file a run is evaluated on.

    From ``run.json`` (``val_ann``); a run dir written before run.json
    recorded it is read from its ``config.py``.
    """
    meta = read_run_meta(run_dir)
    if meta.get('val_ann'):
        return project_path(meta['val_ann'])
    path = osp.join(run_dir, RUN_CONFIG)
    if not osp.isfile(path):
        return None
    from mmengine.config import Config
    # Only a path is read: importing the config's custom modules (mmdet and
    # the plugins, ~5 s) would be most of a cached report rebuild.
    cfg = Config.fromfile(path, import_custom_modules=False)
    ds = cfg.test_dataloader.dataset
    return project_path(osp.join(ds.get('data_root', ''), ds.ann_file))


def schedule_length(cfg, train_images: int) -> int:
    """Training-loop iterations of a placed config: ``max_iters``, or
    ``max_epochs`` x iterations per epoch at the placement's batch."""
    loop = cfg.get('train_cfg') or {}
    if 'max_iters' in loop:
        return int(loop['max_iters'])
    place = cfg.get('placement') or {}
    per_iter = place.get('processes', 1) * place.get(
        'images_per_process', cfg.train_dataloader.batch_size)
    return int(loop.get('max_epochs', 1)) * math.ceil(train_images / per_iter)
