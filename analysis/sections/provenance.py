"""What every figure and table of a view says about where it came from."""
import functools
import json

import pandas as pd


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
