"""TIDE's error breakdown on a hand-built case, its cache, and its size
ranges against pycocotools."""
import contextlib
import copy
import io
import json
import os
import os.path as osp

import matplotlib
import numpy as np
import pandas as pd
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from analysis.coco_eval.constants import COCO_AREAS
from analysis.sections.error_breakdown import (error_breakdown_section,
                                               run_breakdown,
                                               tide_breakdowns)
from experiments.store import DETECTIONS, TASKS
from test_per_category import hand_coco, hand_det, hand_gt


def test_tide_leaves_the_figure_style_alone():
    """TIDE's constructor calls seaborn.set(): without a guard, a report
    whose TIDE cache was missing draws every later figure in seaborn's
    style, and one built from the cache does not."""
    before = dict(matplotlib.rcParams)
    tide_breakdowns(hand_gt(), [hand_det(1, 1, (10, 10, 40, 40), 0.9)],
                    'bbox')
    changed = {k for k, v in matplotlib.rcParams.items()
               if repr(before[k]) != repr(v)}
    assert not changed


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_tide_breakdown_names_the_error(iou_type):
    gt = hand_gt()
    exact = [hand_det(1, 1, (10, 10, 40, 40), 0.9),
             hand_det(2, 1, (20, 20, 40, 40), 0.8),
             hand_det(1, 2, (70, 70, 10, 10), 0.7)]
    perfect = tide_breakdowns(gt, exact, iou_type)['all']
    assert perfect['AP50'] == pytest.approx(100.0)
    assert all(perfect[e] == 0 for e in ('Cls', 'Loc', 'Dupe', 'Bkg',
                                         'Miss'))
    # The small square missed: a Miss error, and only in the small range.
    missed = exact[:2]
    by_size = tide_breakdowns(gt, missed, iou_type)
    b = by_size['all']
    assert b['Miss'] > 0 and b['Loc'] == 0 and b['Cls'] == 0
    small = by_size['small']
    assert small['AP50'] == 0 and small['Miss'] != small['Miss']  # NaN
    medium = by_size['medium']
    assert medium['AP50'] == pytest.approx(100.0) and medium['Miss'] == 0
    # A box shifted to IoU ~0.3: a localisation error.
    shifted = [hand_det(1, 1, (25, 25, 40, 40), 0.9)] + exact[1:]
    assert tide_breakdowns(gt, shifted, iou_type)['all']['Loc'] > 0
    # The right box with the wrong class: a classification error.
    relabelled = [hand_det(1, 2, (10, 10, 40, 40), 0.95)] + exact
    assert tide_breakdowns(gt, relabelled, iou_type)['all']['Cls'] > 0


def test_breakdown_is_cached_through_the_eval_cache(tmp_path, monkeypatch,
                                                    capsys):
    from analysis.coco_eval import eval_cache
    from analysis.sections import error_breakdown
    ann = tmp_path / 'instances_val.json'
    ann.write_text(json.dumps(hand_gt()))
    det_dir = tmp_path / 'detections'
    det_dir.mkdir()
    dets = [hand_det(1, 1, (10, 10, 40, 40), 0.9)]
    (det_dir / 'val.bbox.json').write_text(json.dumps(dets))
    first = error_breakdown.run_breakdown(str(det_dir), str(ann))
    [entry] = os.listdir(det_dir / eval_cache.CACHE_DIR)
    assert entry.startswith('tide-bbox-') and entry.endswith(
        f'-v{error_breakdown.VERSION}.json')
    assert entry == osp.basename(eval_cache.rows_path(
        str(det_dir / 'val.bbox.json'), str(ann), 'tide-bbox',
        error_breakdown.VERSION))

    def no_tide(*args, **kwargs):
        pytest.fail('TIDE ran although its rows were cached')

    monkeypatch.setattr(error_breakdown, 'tide_breakdowns', no_tide)
    assert error_breakdown.run_breakdown(str(det_dir), str(ann)).equals(
        first)
    # A damaged entry is named, computed again and replaced.
    monkeypatch.undo()
    cache = det_dir / eval_cache.CACHE_DIR / entry
    cache.write_text('{"rows": [tru')
    again = error_breakdown.run_breakdown(str(det_dir), str(ann))
    assert f'{cache}: damaged TIDE cache' in capsys.readouterr().err
    assert again.equals(first)
    assert json.loads(cache.read_text())['rows']


# --- Size ranges follow COCOeval's rule: AP50 per range is COCOeval's ----

SIDE = 240  # image height and width of the boundary case


def _rect(x, y, w, h) -> dict:
    m = np.zeros((SIDE, SIDE), np.uint8)
    m[y:y + h, x:x + w] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    rle['counts'] = rle['counts'].decode()
    return rle


def _case(objects, found):
    """(ground truth, detections) of category ``c`` per ``(image, c, box)``
    object and ``(image, c, box, score)`` detection, on SIDE x SIDE
    images."""
    images = [dict(id=i, file_name=f'{i}.png', width=SIDE, height=SIDE)
              for i in sorted({o[0] for o in objects})]
    anns = [dict(id=n + 1, image_id=i, category_id=c, bbox=list(box),
                 area=float(box[2] * box[3]), iscrowd=0,
                 segmentation=_rect(*box))
            for n, (i, c, box) in enumerate(objects)]
    dets = [dict(image_id=i, category_id=c, bbox=list(box), score=score,
                 segmentation=_rect(*box)) for i, c, box, score in found]
    return dict(images=images, annotations=anns,
                categories=[dict(id=1, name='a'), dict(id=2, name='b')]), dets


def boundary_case():
    """(ground truth, detections) around the 96² boundary (9216 px²).

    Image 1: a large object (100x100, 10000 px²) found by a 96x95
    detection (9120 px², medium by its own area; IoU 0.91). Image 2, the
    mirror: a medium object (94x94, 8836 px²) found by a 97x97 detection
    (9409 px², large; IoU 0.94). Each image also has an object of the same
    range found exactly (110x110 and 60x60). Box and mask areas are equal.
    """
    return _case([(1, 1, (20, 20, 100, 100)), (1, 1, (125, 125, 110, 110)),
                  (2, 1, (20, 20, 94, 94)), (2, 1, (150, 150, 60, 60))],
                 [(1, 1, (22, 22, 96, 95), 0.9), (2, 1, (19, 19, 97, 97), 0.8),
                  (1, 1, (125, 125, 110, 110), 0.7),
                  (2, 1, (150, 150, 60, 60), 0.6)])


def cocoeval_ap50(gt: dict, dets: list, iou_type: str) -> dict:
    """pycocotools' AP50 (x100) per COCO area range, run as mmdet's
    CocoMetric runs it (segm results without bbox); NaN without GT."""
    coco = hand_coco(gt)
    dets = copy.deepcopy(dets)
    if iou_type == 'segm':
        for d in dets:
            d.pop('bbox', None)
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco, coco.loadRes(dets), iou_type)
        ev.evaluate()
        ev.accumulate()
    assert ev.params.areaRngLbl == list(COCO_AREAS)
    assert ev.params.iouThrs[0] == 0.5
    out = {}
    for n, size in enumerate(COCO_AREAS):
        p = ev.eval['precision'][0, :, :, n, -1]
        out[size] = 100 * p[p > -1].mean() if (p > -1).any() else np.nan
    return out


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_size_ranges_are_cocoeval_at_the_96px_boundary(iou_type):
    """A correct detection a little under 96² on a large object is a hit of
    the large range (COCOeval sizes an unmatched detection by its own area,
    a matched one by its object's), and the mirror case of the medium
    range."""
    gt, dets = boundary_case()
    tide = tide_breakdowns(gt, dets, iou_type)
    want = cocoeval_ap50(gt, dets, iou_type)
    for size in COCO_AREAS:
        print(f'{iou_type} {size}: TIDE AP50 {tide[size]["AP50"]:.1f} '
              f'(Miss {tide[size]["Miss"]:.1f}), pycocotools AP50 '
              f'{want[size]:.1f}')
    for size in COCO_AREAS:
        assert tide[size]['AP50'] == pytest.approx(
            want[size], abs=1e-9, nan_ok=True), size
    # The case does what it is for: both objects are found.
    assert want['medium'] == want['large'] == 100
    assert tide['medium']['Miss'] == tide['large']['Miss'] == 0


def test_every_per_size_ap50_the_section_prints_is_cocoeval(
        coco128, tmp_path, result_row):
    """A run on coco128-seg (its 128 images as the validation set, the
    predictions its ground truth perturbed, relabelled, duplicated and
    dropped, with crowd regions and tied scores): every AP50 of the
    section's table, and of the rows behind it, against pycocotools."""
    from test_coco_eval.test_image_eval import (_with_crowds,
                                                perturbed_predictions)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = _with_crowds(COCO(osp.join(
            coco128, 'annotations', 'instances_train2017.json')), 7)
    ann = tmp_path / 'instances_val.json'
    ann.write_text(json.dumps(coco.dataset))
    dets = perturbed_predictions(coco, seed=2)
    for d in dets:
        d['score'] = round(d['score'], 2)
    run = tmp_path / 'run'
    (run / DETECTIONS).mkdir(parents=True)
    (run / 'run.json').write_text(json.dumps(dict(val_ann=str(ann))))
    for iou_type, _ in TASKS:
        (run / DETECTIONS / f'val.{iou_type}.json').write_text(
            json.dumps(dets))
    row = result_row('retinamask', 'tiny', 0, 0.3, 0.3)
    row['work_dir'] = str(run)
    df = pd.DataFrame([row])
    rows = run_breakdown(str(run / DETECTIONS), str(ann)).set_index(
        ['task', 'size'])
    table = error_breakdown_section(df, str(tmp_path)).tables[0].set_index(
        ['task', 'size'])
    wrong, checked = [], 0
    for iou_type, task in TASKS:
        want = cocoeval_ap50(coco.dataset, dets, iou_type)
        for size in COCO_AREAS:
            got = rows.loc[(task, size), 'AP50']
            printed = float(table.loc[(task, size), 'AP50'])
            print(f'{task} {size}: TIDE AP50 {got:.4f} (printed '
                  f'{printed}), pycocotools AP50 {want[size]:.4f}')
            if got != pytest.approx(want[size], abs=1e-9) or \
                    printed != pytest.approx(want[size], abs=0.05 + 1e-9):
                wrong.append((task, size, printed, round(want[size], 2)))
            checked += 1
    assert not wrong
    assert checked == 8


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_equally_good_ground_truths_are_taken_as_cocoeval_takes_them(
        iou_type):
    """A detection with IoU 0.6 to two objects takes the later one in
    COCOeval (TIDE, left alone, the first); a second detection that fits
    only the later one (IoU 0.9; 0.29 to the first) is then a false
    positive."""
    gt, dets = _case([(1, 1, (0, 0, 40, 40)), (1, 1, (20, 0, 40, 40))],
                     [(1, 1, (10, 0, 40, 40), 0.9),
                      (1, 1, (22, 0, 40, 40), 0.8)])
    tide = tide_breakdowns(gt, dets, iou_type)
    want = cocoeval_ap50(gt, dets, iou_type)
    assert want['medium'] < 60
    for size in COCO_AREAS:
        assert tide[size]['AP50'] == pytest.approx(
            want[size], abs=1e-9, nan_ok=True), size


def test_the_detection_cap_is_cocoevals():
    """COCOeval keeps 100 detections per image and category, TIDE (left
    alone) 100 per image: 60 + 60 detections in one image, each category's
    one hit scored lowest."""
    objects = [(1, 1, (0, 0, 20, 20)), (1, 2, (30, 0, 20, 20))]
    found = [(1, 1, (0, 0, 20, 20), 0.01), (1, 2, (30, 0, 20, 20), 0.02)]
    for n in range(59):
        box = (60 + 3 * (n % 50), 100 + 3 * (n // 50), 2, 2)
        found += [(1, 1, box, 0.5 + n / 200), (1, 2, box, 0.4 + n / 200)]
    gt, dets = _case(objects, found)
    tide = tide_breakdowns(gt, dets, 'bbox')
    want = cocoeval_ap50(gt, dets, 'bbox')
    assert want['all'] > 0
    for size in COCO_AREAS:
        assert tide[size]['AP50'] == pytest.approx(
            want[size], abs=1e-9, nan_ok=True), size
