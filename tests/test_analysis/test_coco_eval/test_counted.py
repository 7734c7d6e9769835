"""Which detections COCOeval counts per area range: both engines, and the
counted detections give COCOeval's AP per range."""
import contextlib
import copy
import io
import os.path as osp

import numpy as np
import pytest
from pycocotools.coco import COCO

from analysis.coco_eval.constants import COCO_AREAS
from analysis.coco_eval.counted import counted_detections
from analysis.coco_eval.image_eval import evaluate_images
from test_image_eval import _with_crowds, perturbed_predictions


@pytest.fixture
def crowded_coco128(coco128):
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(osp.join(coco128, 'annotations',
                             'instances_train2017.json'))
    return _with_crowds(coco, 7)


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_engines_count_the_same_detections(crowded_coco128, iou_type):
    """Crowd regions, tied scores, duplicates and a cap of 2 per image and
    category: the compiled matcher and pycocotools agree, detection by
    detection, at every range and at IoU 0.5 and 0.75."""
    coco = crowded_coco128
    dets = [dict(d) for d in perturbed_predictions(coco, seed=3) * 2]
    for d in dets:
        d['score'] = round(d['score'], 1)
    for iou, max_dets in ((0.5, 100), (0.75, 2)):
        fast = counted_detections(coco, copy.deepcopy(dets), iou_type,
                                  COCO_AREAS, iou, max_dets, engine='fast')
        ref = counted_detections(coco, copy.deepcopy(dets), iou_type,
                                 COCO_AREAS, iou, max_dets,
                                 engine='pycocotools')
        for area in COCO_AREAS:
            np.testing.assert_array_equal(fast[area], ref[area])
            assert 0 < fast[area].sum() < len(dets)


def test_counted_detections_alone_give_cocoeval_ap(crowded_coco128):
    """Per range, AP50 of the counted detections alone, every object in
    range (the 'all' range), equals AP50 of the range on all of them."""
    coco = crowded_coco128
    dets = perturbed_predictions(coco, seed=4)
    counted = counted_detections(coco, dets, 'bbox', COCO_AREAS)
    full = evaluate_images(coco, copy.deepcopy(dets), 'bbox')
    for area, (lo, hi) in COCO_AREAS.items():
        data = copy.deepcopy(coco.dataset)
        data['annotations'] = [a for a in data['annotations']
                               if lo <= a['area'] <= hi]
        only = COCO()
        only.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            only.createIndex()
        kept = [d for d, c in zip(dets, counted[area]) if c]
        alone = evaluate_images(only, copy.deepcopy(kept), 'bbox')
        assert alone.summary(area='all')['AP50'] == pytest.approx(
            full.summary(area=area)['AP50'], abs=1e-12), area


def test_no_detections_count_none(crowded_coco128):
    out = counted_detections(crowded_coco128, [], 'segm', COCO_AREAS)
    assert list(out) == list(COCO_AREAS)
    assert all(v.shape == (0, ) for v in out.values())
