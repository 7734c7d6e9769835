"""The per-run evaluation cache: hit, invalidation, concurrent builds."""
import contextlib
import io
import json
import multiprocessing
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from pycocotools.coco import COCO

from analysis.coco_eval import eval_cache
from analysis.coco_eval.constants import COCO_AREAS
from analysis.coco_eval.run_eval import image_eval_for_run
from test_image_eval import perturbed_predictions


@pytest.fixture
def run(tiny_builtin, tmp_path):
    """A run's detections dir and its ground truth, in a private folder."""
    ann = str(tmp_path / 'instances_val.json')
    shutil.copy(osp.join(tiny_builtin, 'annotations', 'instances_val.json'),
                ann)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(ann)
    det_dir = tmp_path / 'detections'
    det_dir.mkdir()
    dets = perturbed_predictions(coco, seed=0)
    for name in ('bbox', 'segm'):
        (det_dir / f'val.{name}.json').write_text(json.dumps(dets))
    eval_cache.forget_file_hashes()
    return str(det_dir), ann, dets


def _no_ground_truth():
    pytest.fail('the ground truth was loaded although the cache had the '
                'evaluation')


def _same(a, b):
    assert a.img_ids == b.img_ids and a.cat_ids == b.cat_ids
    assert a.areas == b.areas
    for area in a.areas:
        np.testing.assert_array_equal(a.precision(area=area),
                                      b.precision(area=area))


def test_second_evaluation_comes_from_the_cache(run):
    det_dir, ann, _ = run
    for iou_type in ('bbox', 'segm'):
        first = image_eval_for_run(det_dir, ann, iou_type)
        entries = os.listdir(osp.join(det_dir, 'eval-cache'))
        assert [n for n in entries if n.startswith(iou_type)]
        again = image_eval_for_run(det_dir, ann, iou_type,
                                   coco_gt=_no_ground_truth)
        _same(first, again)
        # The weights path (bootstrap) works on a cached evaluation too.
        w = np.arange(first.num_images, dtype=float) % 3
        assert again.ap(w) == first.ap(w)


def test_changed_detections_or_annotations_invalidate_the_entry(run):
    det_dir, ann, dets = run
    det_file = osp.join(det_dir, 'val.bbox.json')
    before = image_eval_for_run(det_dir, ann, 'bbox')
    # Fewer detections: a different AP, and the stale entry is replaced.
    with open(det_file, 'w') as f:
        json.dump(dets[::2], f)
    after = image_eval_for_run(det_dir, ann, 'bbox')
    assert after.ap() != before.ap()
    entries = [n for n in os.listdir(osp.join(det_dir, 'eval-cache'))
               if n.startswith('bbox-')]
    assert len(entries) == 1
    # An edited ground truth (one object dropped) is a new key as well.
    data = json.load(open(ann))
    data['annotations'] = data['annotations'][1:]
    with open(ann, 'w') as f:
        json.dump(data, f)
    edited = image_eval_for_run(det_dir, ann, 'bbox')
    assert edited.gt_count('all') == after.gt_count('all') - 1
    # Other area ranges are another evaluation.
    areas = dict(COCO_AREAS, tiny=(0.0, 16.0 ** 2))
    assert 'tiny' in image_eval_for_run(det_dir, ann, 'bbox', areas).areas


def test_unreadable_entry_is_evaluated_again(run, capsys):
    det_dir, ann, _ = run
    first = image_eval_for_run(det_dir, ann, 'bbox')
    (entry,) = [osp.join(det_dir, 'eval-cache', n) for n in
                os.listdir(osp.join(det_dir, 'eval-cache'))]
    with open(entry, 'wb') as f:
        f.write(b'PK\x03\x04 truncated')
    again = image_eval_for_run(det_dir, ann, 'bbox')
    assert 'unreadable evaluation cache' in capsys.readouterr().err
    _same(first, again)


def _build(args):
    det_dir, ann = args
    ev = image_eval_for_run(det_dir, ann, 'segm')
    return ev.ap()


def test_two_report_builds_at_once(run):
    det_dir, ann, _ = run
    with multiprocessing.get_context('spawn').Pool(2) as pool:
        aps = pool.map(_build, [(det_dir, ann)] * 6)
    assert len(set(aps)) == 1
    entries = os.listdir(osp.join(det_dir, 'eval-cache'))
    assert len([n for n in entries if n.startswith('segm-')]) == 1
    assert not [n for n in entries if n.startswith('.tmp-')]
    assert image_eval_for_run(det_dir, ann, 'segm',
                              coco_gt=_no_ground_truth).ap() == aps[0]


def test_read_only_detections_dir_still_evaluates(run, monkeypatch, capsys):
    det_dir, ann, _ = run

    def refuse(*args, **kwargs):
        raise PermissionError(13, 'Permission denied', det_dir)

    monkeypatch.setattr(eval_cache, 'atomic_write', refuse)
    ev = image_eval_for_run(det_dir, ann, 'bbox')
    assert 'cannot cache the evaluation' in capsys.readouterr().err
    assert not os.listdir(osp.join(det_dir, 'eval-cache'))
    _same(ev, image_eval_for_run(det_dir, ann, 'bbox', use_cache=False))
