"""Where a run dir's own files are, wherever the work dir now lives.

``FINISHED.json`` and ``FAILED.json`` record the run dir (``work_dir``) and
its ``detections`` as absolute paths, and results tables written before
issue 39 did too. A work dir that was copied or moved must be read (and
written, e.g. the evaluation cache) where it is, not where it was:

- a sentinel's row names the run dir it was read from;
- the results table stores ``work_dir`` and ``detections`` relative to the
  table's folder (the grid's work dir), and a reader resolves them against
  the table it read. An absolute path of an older table is kept only when
  no run dir of that name lies next to the table (a table copied away from
  its runs); otherwise the run dir next to the table is the run.
"""
from __future__ import annotations

import os.path as osp
from typing import TYPE_CHECKING, Optional

from experiments.store.layout import DETECTIONS

if TYPE_CHECKING:
    import pandas as pd

PATH_COLUMNS = ('work_dir', 'detections')


def _inside(path: str, root: str) -> bool:
    path, root = osp.abspath(path), osp.abspath(root)
    return osp.commonpath([path, root]) == root


def _text(value) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def rebased(path: str, old_root: str, new_root: str) -> str:
    """``path`` under ``new_root`` as it was under ``old_root``; the layout's
    place for it (``<new_root>/detections``) when it was not under it."""
    if not osp.isabs(path):
        return osp.join(new_root, path)
    if _inside(path, old_root):
        return osp.normpath(osp.join(new_root, osp.relpath(path, old_root)))
    return osp.join(new_root, DETECTIONS)


def own_paths(row: dict, run_dir: str) -> dict:
    """A sentinel's ``row`` with ``work_dir`` and ``detections`` in
    ``run_dir``, the dir it was read from (a copy names the copy)."""
    here = osp.abspath(run_dir)
    out = dict(row, work_dir=here)
    written = _text(row.get('work_dir')) or here
    if _text(row.get('detections')):
        out['detections'] = rebased(row['detections'], written, here)
    return out


def relative_paths(df: pd.DataFrame, table_dir: str) -> pd.DataFrame:
    """The table as written: path columns relative to ``table_dir`` where
    they lie inside it."""
    df = df.copy()
    for column in PATH_COLUMNS:
        if column in df.columns:
            df[column] = [
                osp.relpath(p, table_dir)
                if _text(p) and osp.isabs(p) and _inside(p, table_dir) else p
                for p in df[column]]
    return df


def _resolve_row(work_dir, detections, table_dir: str):
    written = _text(work_dir)
    if written is None:
        det = _text(detections)
        if det and not osp.isabs(det):
            det = osp.normpath(osp.join(table_dir, det))
        return work_dir, det if det else detections
    if osp.isabs(written):
        # An older table: the run dir of that name next to the table is the
        # run (a copy or a moved work dir); elsewhere only when there is none.
        beside = osp.join(table_dir, osp.basename(osp.normpath(written)))
        here = beside if osp.isdir(beside) else written
    else:
        here = osp.normpath(osp.join(table_dir, written))
    det = _text(detections)
    if det is None:
        return here, detections
    if osp.isabs(det):
        old = written if osp.isabs(written) else here
        return here, rebased(det, old, here)
    return here, osp.normpath(osp.join(table_dir, det))


def resolved_paths(df: pd.DataFrame, table_dir: str) -> pd.DataFrame:
    """The table as read from ``table_dir``: ``work_dir`` and ``detections``
    absolute, in the run dirs next to the table (see the module's note)."""
    if 'work_dir' not in df.columns:
        return df
    table_dir = osp.abspath(table_dir)
    detections = df['detections'] if 'detections' in df.columns else \
        [None] * len(df)
    pairs = [_resolve_row(w, d, table_dir)
             for w, d in zip(df['work_dir'], detections)]
    df = df.copy()
    df['work_dir'] = [w for w, _ in pairs]
    if 'detections' in df.columns:
        df['detections'] = [d for _, d in pairs]
    return df
