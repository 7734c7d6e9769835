"""Per-category AP and its paired differences, on a hand-built case."""
import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from analysis.coco_eval.image_eval import evaluate_images
from analysis.sections.per_category import (category_differences,
                                            per_category_ap)


def square(x, y, s):
    return [[x, y, x + s, y, x + s, y + s, x, y + s]]


def hand_gt() -> dict:
    """Two 100x100 images: a 40 px square of category 1 in each, a 10 px
    square of category 2 in the first."""
    images = [dict(id=i, file_name=f'{i}.png', width=100, height=100)
              for i in (1, 2)]
    anns = [dict(id=1, image_id=1, category_id=1, bbox=[10, 10, 40, 40],
                 area=1600.0, iscrowd=0, segmentation=square(10, 10, 40)),
            dict(id=2, image_id=2, category_id=1, bbox=[20, 20, 40, 40],
                 area=1600.0, iscrowd=0, segmentation=square(20, 20, 40)),
            dict(id=3, image_id=1, category_id=2, bbox=[70, 70, 10, 10],
                 area=100.0, iscrowd=0, segmentation=square(70, 70, 10))]
    return dict(images=images, annotations=anns,
                categories=[dict(id=1, name='big'), dict(id=2, name='tiny')])


def hand_det(image_id, cat, box, score):
    x, y, w, h = box
    rle = mask_utils.merge(mask_utils.frPyObjects(
        [[x, y, x + w, y, x + w, y + h, x, y + h]], 100, 100))
    rle['counts'] = rle['counts'].decode()
    return dict(image_id=image_id, category_id=cat, bbox=list(box),
                score=score, segmentation=rle)


def hand_coco(gt: dict) -> COCO:
    coco = COCO()
    coco.dataset = json.loads(json.dumps(gt))
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def test_per_category_ap_by_hand():
    # Category 1 found exactly in both images; category 2 never detected.
    dets = [hand_det(1, 1, (10, 10, 40, 40), 0.9),
            hand_det(2, 1, (20, 20, 40, 40), 0.8)]
    ev = evaluate_images(hand_coco(hand_gt()), dets, 'bbox')
    ap = per_category_ap(ev)
    assert ev.cat_ids == [1, 2]
    np.testing.assert_allclose(ap, [1.0, 0.0])
    assert ev.ap() == pytest.approx(ap.mean())
    # On image 2 alone category 2 has no ground truth: NaN, not 0.
    w = np.array([0.0, 1.0])
    np.testing.assert_allclose(per_category_ap(ev, w), [1.0, np.nan])


def test_per_category_difference_is_paired():
    gt = hand_coco(hand_gt())
    good = evaluate_images(gt, [hand_det(1, 1, (10, 10, 40, 40), 0.9),
                                hand_det(2, 1, (20, 20, 40, 40), 0.8),
                                hand_det(1, 2, (70, 70, 10, 10), 0.7)], 'bbox')
    worse = evaluate_images(gt, [hand_det(1, 1, (10, 10, 40, 40), 0.9),
                                 hand_det(2, 1, (20, 20, 40, 40), 0.8)],
                            'bbox')
    same = category_differences({'a': [good], 'b': [good]}, 'b', 200)
    assert (same['diff'] == 0).all() and (same.lo == 0).all() and \
        (same.hi == 0).all()
    diff = category_differences({'good': [good], 'worse': [worse]},
                                'worse', 200).set_index('cat_id')
    assert diff.loc[1, 'diff'] == 0
    assert diff.loc[2, 'diff'] == pytest.approx(1.0)
    # Category 2 is in one image of two: resamples without it have no AP
    # for it (NaN), the others all say +1.
    assert diff.loc[2, 'lo'] == pytest.approx(1.0)
