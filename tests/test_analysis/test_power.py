"""The claimed effects and the noise that runs show (analysis/power.py)."""
import contextlib
import io

import pandas as pd
import pytest
from pycocotools.coco import COCO

from analysis import power as pw
from analysis.coco_eval.image_eval import evaluate_images
from analysis.published import published_table
from analysis.verdicts import load_weaknesses
from uncertainty.noise import prior


def test_claimed_effects_from_the_published_table():
    spec = load_weaknesses()
    pub = published_table()
    w4, src = pw.claimed_effect('W4', spec['W4'], pub)
    assert w4 == pytest.approx(1.0) and 'published.csv' in src
    # W9: every threshold must beat "off"; the nearest (0.4: +0.5) decides.
    assert pw.claimed_effect('W9', spec['W9'], pub)[0] == pytest.approx(0.5)
    assert pw.claimed_effect('W5', spec['W5'], pub)[0] is None


class _Evals:
    """Stands in for RunEvals: each run's evaluation by run id."""

    def __init__(self, by_run):
        self.by_run = by_run

    def for_runs(self, runs, iou_type):
        return [self.by_run[r] for r in runs.run_id if r in self.by_run]


def _runs(arm, ids, values):
    return pd.DataFrame(dict(grid='g', model='m', arm=arm, dataset='d',
                             status='finished', run_id=ids, val_images=4,
                             box_AP=values))


def _image_eval(found: int):
    """Box evaluation of 4 images with one object each, ``found`` of them
    detected exactly."""
    coco = COCO()
    coco.dataset = dict(
        images=[dict(id=i, width=50, height=50) for i in range(1, 5)],
        annotations=[dict(id=i, image_id=i, category_id=1, iscrowd=0,
                          bbox=[5, 5, 20, 20], area=400.0)
                     for i in range(1, 5)],
        categories=[dict(id=1, name='a')])
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    dets = [dict(image_id=i, category_id=1, bbox=[5, 5, 20, 20], score=0.9)
            for i in range(1, found + 1)]
    return evaluate_images(coco, dets, 'bbox')


def test_measured_noise_from_two_seeds_splits_the_seed_noise():
    three = _image_eval(3)
    evals = _Evals({'a0': _image_eval(4), 'a1': three,
                    'b0': _image_eval(2), 'b1': _image_eval(2)})
    a = _runs('a', ['a0', 'a1'], [1.0, 0.75])
    b = _runs('b', ['b0', 'b1'], [0.5, 0.5])
    n = pw.measured_noise(a, b, 'box_AP', evals)
    # The seeds' APs as the evidence computes them (100 and about 75),
    # pooled over both arms' 2 dof; b's two seeds are equal.
    gap = 100 - 100 * three.ap()
    assert n.seed_sd == pytest.approx((gap ** 2 / 2 / 2) ** 0.5, rel=1e-6)
    assert n.seed_image_sd > 0 and n.image_sd > 0 and n.n_images == 4
    assert 'measured on 2+2 runs' in n.source


def test_measured_noise_without_detections_keeps_the_prior_split():
    a = _runs('a', ['a0', 'a1'], [0.30, 0.32])
    b = _runs('b', ['b0', 'b1'], [0.29, 0.29])
    base = prior('box_AP', run_fraction=0.5)
    n = pw.measured_noise(a, b, 'box_AP', None, base=base)
    assert n.run_sd == pytest.approx(n.seed_image_sd)
    assert n.image_sd == base.image_sd
    assert 'split as the prior' in n.source
    # One seed each, no detections: the prior as it is.
    assert pw.measured_noise(a[:1], b[:1], 'box_AP', None, base=base) == base
