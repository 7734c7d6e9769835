"""What every figure and table of a view says about where it came from."""
import functools
import json
from typing import Dict, Optional, Tuple

import pandas as pd

from experiments.store import read_run_meta


@functools.lru_cache(maxsize=4)
def gt_json(ann_file: str) -> dict:
    """A COCO annotation file's content, read once per report; callers
    must not modify it."""
    with open(ann_file) as f:
        return json.load(f)


def caption(df: pd.DataFrame) -> str:
    """``From 3 finished runs (mask_rcnn/default: seeds 0; ...) on builtin
    (16 val images); weights: from scratch.``"""
    done = df[df.status == 'finished']
    if done.empty:
        return 'No finished runs.'
    arms = '; '.join(
        f'{m}/{a}: seed(s) {", ".join(str(int(s)) for s in sorted(g.seed))}'
        for (m, a), g in done.groupby(['model', 'arm'], sort=False))
    data = ', '.join(
        f'{d} ({int(g.val_images.max())} val images)'
        if 'val_images' in g and g.val_images.notna().any() else str(d)
        for d, g in done.groupby('dataset', sort=False))
    weights = ', '.join(sorted(set(done.weights.dropna().astype(str)))) \
        if 'weights' in done else 'unknown'
    return (f'From {len(done)} finished run(s) ({arms}) on {data}; '
            f'weights: {weights}.')


def arm_differences(df: pd.DataFrame) -> Optional[str]:
    """What makes the grid's arms differ, from each run's ``run.json``: the
    arm's description and the overrides whose values differ between arms
    of one model. None when no arm has a description or a difference."""
    arms: Dict[Tuple[str, str], dict] = {}
    for r in df.itertuples():
        work_dir = getattr(r, 'work_dir', None)
        if (r.model, r.arm) in arms or not isinstance(work_dir, str) \
                or not work_dir:
            continue
        meta = read_run_meta(work_dir)
        if meta:
            arms[(r.model, r.arm)] = meta
    parts = []
    for (model, arm), meta in arms.items():
        same_model = [m for (mod, _), m in arms.items() if mod == model]
        mine = meta.get('overrides') or {}
        keys = sorted(k for k in set().union(
            *[set(m.get('overrides') or {}) for m in same_model])
            if len({repr((m.get('overrides') or {}).get(k))
                    for m in same_model}) > 1)
        diff = ', '.join(f'`{k}={mine[k]!r}`' if k in mine
                         else f'`{k}` not set' for k in keys)
        text = '; '.join(x for x in (meta.get('arm_description'), diff) if x)
        if text:
            parts.append(f'{model}/{arm}: {text}')
    return ('Arms (from each run\'s run.json): ' + ' | '.join(parts)
            if parts else None)
