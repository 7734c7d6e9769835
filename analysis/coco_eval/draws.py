"""The image bootstrap's draws: how many times each validation image is
drawn in each resample (:mod:`analysis.coco_eval.bootstrap` and
:mod:`analysis.coco_eval.resampled` share them)."""
from typing import Dict, Iterator, List

import numpy as np

# The most recent draws, by (n_images, n_resamples, seed, chunk): a report
# resamples the same validation set for every arm, section and verdict.
_DRAWS: Dict[tuple, List[np.ndarray]] = {}
_DRAWS_KEPT = 2


def resample_counts(n_images: int, n_resamples: int, seed: int = 0,
                    chunk: int = 100) -> Iterator[np.ndarray]:
    """Draw counts (chunk x n_images) of image bootstrap resamples (the
    same draws for the same arguments; the latest are kept in memory)."""
    key = (n_images, n_resamples, seed, chunk)
    if key not in _DRAWS:
        rng = np.random.default_rng(seed)
        p = np.full(n_images, 1.0 / n_images)
        blocks, done = [], 0
        while done < n_resamples:
            size = min(chunk, n_resamples - done)
            block = rng.multinomial(n_images, p, size=size).astype(
                np.float64)
            block.setflags(write=False)
            blocks.append(block)
            done += size
        while len(_DRAWS) >= _DRAWS_KEPT:
            _DRAWS.pop(next(iter(_DRAWS)))
        _DRAWS[key] = blocks
    yield from _DRAWS[key]
