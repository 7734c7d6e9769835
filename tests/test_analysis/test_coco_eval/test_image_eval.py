"""Per-image cached COCO evaluation against pycocotools' COCOeval."""
import contextlib
import copy
import io
import json
import os.path as osp

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from analysis.coco_eval.constants import (COCO_AREAS, IOU_THRESHOLDS,
                                          log_area_bins)
from analysis.coco_eval.detections import load_detections
from analysis.coco_eval.image_eval import evaluate_images, weights_for


def _quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def perturbed_predictions(coco: COCO, seed: int = 0) -> list:
    """GT boxes and masks, shifted and rescaled, with random scores; some
    GT dropped, some duplicated, some relabelled (false positives)."""
    rng = np.random.default_rng(seed)
    cats = coco.getCatIds()
    dets = []
    for ann in coco.dataset['annotations']:
        if rng.random() < 0.15:
            continue
        for _ in range(1 + (rng.random() < 0.2)):
            x, y, w, h = ann['bbox']
            dx, dy = rng.normal(0, 0.1, 2) * [w, h]
            s = np.exp(rng.normal(0, 0.1))
            box = [x + dx, y + dy, w * s, h * s]
            a = copy.deepcopy(ann)
            if isinstance(a['segmentation'], list):
                a['segmentation'] = [
                    list(np.asarray(p) + np.tile([dx, dy], len(p) // 2))
                    for p in a['segmentation']]
            rle = coco.annToRLE(a)
            rle['counts'] = rle['counts'].decode() \
                if isinstance(rle['counts'], bytes) else rle['counts']
            cat = ann['category_id'] if rng.random() > 0.1 else \
                int(rng.choice(cats))
            dets.append(dict(image_id=ann['image_id'], category_id=cat,
                             bbox=[float(v) for v in box],
                             segmentation=rle, score=float(rng.random())))
    return dets


def _cocoeval(coco, dets, iou_type, img_ids=None):
    """pycocotools as mmdet's CocoMetric runs it: segm results without
    ``bbox``, so mask detections are sized by their masks."""
    dets = copy.deepcopy(dets)
    if iou_type == 'segm':
        for d in dets:
            d.pop('bbox')
    dt = _quiet(coco.loadRes, dets)
    ev = COCOeval(coco, dt, iou_type)
    if img_ids is not None:
        ev.params.imgIds = sorted(img_ids)
    _quiet(ev.evaluate)
    _quiet(ev.accumulate)
    _quiet(ev.summarize)
    return ev


def _check_parity(coco, dets, engine):
    for iou_type in ('bbox', 'segm'):
        ref = _cocoeval(coco, dets, iou_type)
        ours = evaluate_images(coco, copy.deepcopy(dets), iou_type,
                               engine=engine)
        # stats: AP, AP50, AP75, APs, APm, APl
        got = [ours.ap(), ours.summary()['AP50'], ours.summary()['AP75'],
               ours.ap(area='small'), ours.ap(area='medium'),
               ours.ap(area='large')]
        want = [v if v > -1 else float('nan') for v in ref.stats[:6]]
        np.testing.assert_allclose(got, want, atol=1e-4, equal_nan=True)
        # Every IoU threshold, every category, every recall point.
        np.testing.assert_allclose(ours.precision(),
                                   ref.eval['precision'][:, :, :, 0, -1],
                                   atol=1e-9)


ENGINES = ['fast', 'pycocotools']


@pytest.mark.parametrize('engine', ENGINES)
def test_parity_with_pycocotools_on_coco128(coco128, engine):
    coco = _quiet(COCO, osp.join(coco128, 'annotations',
                                 'instances_train2017.json'))
    _check_parity(coco, perturbed_predictions(coco), engine)


@pytest.mark.parametrize('engine', ENGINES)
def test_parity_with_pycocotools_on_builtin(tiny_builtin, engine):
    coco = _quiet(COCO, osp.join(tiny_builtin, 'annotations',
                                 'instances_val.json'))
    _check_parity(coco, perturbed_predictions(coco, seed=1), engine)


def _with_crowds(coco: COCO, every: int) -> COCO:
    data = copy.deepcopy(coco.dataset)
    for ann in data['annotations'][::every]:
        ann['iscrowd'] = 1
    out = COCO()
    out.dataset = data
    _quiet(out.createIndex)
    return out


@pytest.mark.parametrize('engine', ENGINES)
def test_parity_with_crowd_regions(tiny_builtin, coco128, engine):
    """A crowd region matches any number of detections and loses to any
    other ground truth; its matches are ignored."""
    builtin = _quiet(COCO, osp.join(tiny_builtin, 'annotations',
                                    'instances_train.json'))
    coco = _with_crowds(builtin, 3)
    _check_parity(coco, perturbed_predictions(coco, seed=5), engine)
    real = _quiet(COCO, osp.join(coco128, 'annotations',
                                 'instances_train2017.json'))
    coco = _with_crowds(real, 7)
    _check_parity(coco, perturbed_predictions(coco, seed=6), engine)


def test_engines_agree_with_score_ties_and_the_detection_cap(tiny_builtin):
    """Ties keep file order and the cap cuts per image and category, as
    COCOeval's mergesort does."""
    coco = _builtin_coco(tiny_builtin)
    dets = perturbed_predictions(coco, seed=7) * 3
    for i, d in enumerate(dets):
        d['score'] = round(d['score'], 1)
    for max_dets in (100, 2):
        fast = evaluate_images(coco, copy.deepcopy(dets), 'bbox',
                               max_dets=max_dets, engine='fast')
        ref = evaluate_images(coco, copy.deepcopy(dets), 'bbox',
                              max_dets=max_dets, engine='pycocotools')
        for area in COCO_AREAS:
            np.testing.assert_array_equal(fast.precision(area=area),
                                          ref.precision(area=area))


def test_compiled_and_numpy_accumulate_agree_on_resamples(tiny_builtin):
    coco = _builtin_coco(tiny_builtin)
    ev = evaluate_images(coco, perturbed_predictions(coco, seed=8), 'bbox')
    table = ev.tables[0]
    rng = np.random.default_rng(1)
    for counts in rng.multinomial(ev.num_images, np.ones(ev.num_images) /
                                  ev.num_images, size=5).astype(float):
        compiled = table.precision(counts)
        numpy_path = table._precision_numpy(counts, table.npig @ counts)
        np.testing.assert_allclose(compiled, numpy_path, atol=1e-12)


def _builtin_coco(tiny_builtin):
    return _quiet(COCO, osp.join(tiny_builtin, 'annotations',
                                 'instances_train.json'))


def test_subset_weights_equal_cocoeval_on_the_subset(tiny_builtin):
    coco = _builtin_coco(tiny_builtin)
    dets = perturbed_predictions(coco, seed=2)
    ev = evaluate_images(coco, copy.deepcopy(dets), 'bbox')
    subset = ev.img_ids[::2]
    ref = _cocoeval(coco, dets, 'bbox', subset)
    assert ev.ap(weights_for(ev, subset)) == pytest.approx(ref.stats[0],
                                                            abs=1e-9)


def test_resample_weights_equal_cocoeval_on_duplicated_images(tiny_builtin):
    """An image drawn k times counts as k distinct images."""
    coco = _builtin_coco(tiny_builtin)
    dets = perturbed_predictions(coco, seed=3)
    ev = evaluate_images(coco, copy.deepcopy(dets), 'bbox')
    rng = np.random.default_rng(0)
    counts = rng.multinomial(ev.num_images, np.ones(ev.num_images) /
                             ev.num_images)
    # Materialise the resample as a dataset with renamed copies.
    data = dict(categories=coco.dataset['categories'], images=[],
                annotations=[])
    resampled_dets, next_id = [], 1
    for img_id, n in zip(ev.img_ids, counts):
        for c in range(n):
            new = img_id * 100 + c
            data['images'].append(dict(coco.imgs[img_id], id=new))
            for ann in coco.imgToAnns[img_id]:
                data['annotations'].append(dict(ann, image_id=new,
                                                id=next_id))
                next_id += 1
            resampled_dets += [dict(d, image_id=new) for d in dets
                               if d['image_id'] == img_id]
    dup = COCO()
    dup.dataset = data
    _quiet(dup.createIndex)
    ref = _cocoeval(dup, resampled_dets, 'bbox')
    np.testing.assert_allclose(ev.precision(counts),
                               ref.eval['precision'][:, :, :, 0, -1],
                               atol=1e-9)


def test_log_area_bins_partition_the_areas():
    bins = log_area_bins(8)
    edges = list(bins.values())
    assert len(edges) == 8 and edges[0][0] == 0 and edges[-1][1] == 1e10
    assert all(a[1] == b[0] for a, b in zip(edges, edges[1:]))
    assert list(bins)[0].startswith('0-') and list(bins)[-1].endswith('px+')


def test_fine_bins_count_every_ground_truth_once(tiny_builtin):
    coco = _builtin_coco(tiny_builtin)
    dets = perturbed_predictions(coco, seed=4)
    areas = dict(COCO_AREAS, **log_area_bins(8))
    ev = evaluate_images(coco, dets, 'bbox', areas)
    fine = sum(ev.gt_count(name) for name in log_area_bins(8))
    assert fine == ev.gt_count('all') == sum(
        not a['iscrowd'] for a in coco.dataset['annotations'])
    assert len(IOU_THRESHOLDS) == 10
    assert json.dumps(ev.summary())  # plain floats


def test_without_numba_the_reference_engine_is_used_with_a_warning(
        tiny_builtin, monkeypatch, capsys):
    from analysis.coco_eval import image_eval
    coco = _builtin_coco(tiny_builtin)
    dets = perturbed_predictions(coco, seed=9)
    monkeypatch.setattr(image_eval, 'fast_engine_available', lambda: False)
    monkeypatch.setattr(image_eval, 'WARNED', set())
    called = []
    real = COCOeval.evaluate
    monkeypatch.setattr(COCOeval, 'evaluate',
                        lambda self: called.append(1) or real(self))
    ev = evaluate_images(coco, copy.deepcopy(dets), 'bbox')
    assert called, 'pycocotools was not used'
    assert 'numba is not installed' in capsys.readouterr().err
    fast = evaluate_images(coco, copy.deepcopy(dets), 'bbox', engine='fast')
    assert ev.ap() == fast.ap()


GOOD_DETECTION = {'image_id': 1, 'category_id': 1, 'score': 0.9,
                  'bbox': [1.0, 2.0, 3.0, 4.0]}


@pytest.mark.parametrize('edit, expected', [
    ({'score': float('nan')}, 'field "score" = nan is not a finite number'),
    ({'score': '0.9'}, 'field "score" = \'0.9\' is not a finite number'),
    ({'bbox': [1.0, 2.0, -3.0, 4.0]},
     'field "bbox" = [1.0, 2.0, -3.0, 4.0] has a negative width or height'),
    ({'bbox': [1.0, 2.0, 3.0]}, 'field "bbox" = [1.0, 2.0, 3.0] is not 4 '
                                'finite numbers'),
    ({'bbox': None}, 'field "bbox" = None is not 4 finite numbers'),
    ({'image_id': '1'}, 'field "image_id" = \'1\' is not an integer id'),
])
def test_bad_detections_are_named_by_file_index_and_field(tmp_path, edit,
                                                          expected):
    path = tmp_path / 'val.bbox.json'
    path.write_text(json.dumps([GOOD_DETECTION,
                                {**GOOD_DETECTION, **edit}]))
    with pytest.raises(ValueError) as err:
        load_detections(str(path))
    assert str(err.value) == f'{path}: detection [1] {expected}'


def test_a_box_file_without_boxes_is_named(tmp_path):
    path = tmp_path / 'val.bbox.json'
    det = {k: v for k, v in GOOD_DETECTION.items() if k != 'bbox'}
    path.write_text(json.dumps([det]))
    with pytest.raises(ValueError, match=r'detection \[0\] has no field '
                                         r'"bbox"'):
        load_detections(str(path))
    # The same detection with an RLE is a valid mask result.
    path = tmp_path / 'val.segm.json'
    path.write_text(json.dumps([{**det, 'segmentation': {
        'size': [4, 4], 'counts': '04'}}]))
    assert len(load_detections(str(path))) == 1
