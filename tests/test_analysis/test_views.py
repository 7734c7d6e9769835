"""The report's views: TIDE breakdown, per-category AP, training curves,
live tracking -- on hand-built cases and one real tiny run."""
import contextlib
import glob
import io
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from analysis.image_eval import evaluate_images
from analysis.views.error_breakdown import tide_breakdowns
from analysis.views.per_category import (category_differences,
                                         per_category_ap)
from analysis.views.training_curves import read_scalars
from experiments.runner.train_run import add_tracker
from helpers import TINY_OVERRIDES, run_grid_cli, write_grid


def _square(x, y, s):
    return [[x, y, x + s, y, x + s, y + s, x, y + s]]


def _gt() -> dict:
    """Two 100x100 images: a 40 px square of category 1 in each, a 10 px
    square of category 2 in the first."""
    images = [dict(id=i, file_name=f'{i}.png', width=100, height=100)
              for i in (1, 2)]
    anns = [dict(id=1, image_id=1, category_id=1, bbox=[10, 10, 40, 40],
                 area=1600.0, iscrowd=0, segmentation=_square(10, 10, 40)),
            dict(id=2, image_id=2, category_id=1, bbox=[20, 20, 40, 40],
                 area=1600.0, iscrowd=0, segmentation=_square(20, 20, 40)),
            dict(id=3, image_id=1, category_id=2, bbox=[70, 70, 10, 10],
                 area=100.0, iscrowd=0, segmentation=_square(70, 70, 10))]
    return dict(images=images, annotations=anns,
                categories=[dict(id=1, name='big'), dict(id=2, name='tiny')])


def _det(image_id, cat, box, score):
    x, y, w, h = box
    rle = mask_utils.merge(mask_utils.frPyObjects(
        [[x, y, x + w, y, x + w, y + h, x, y + h]], 100, 100))
    rle['counts'] = rle['counts'].decode()
    return dict(image_id=image_id, category_id=cat, bbox=list(box),
                score=score, segmentation=rle)


def _coco(gt: dict) -> COCO:
    coco = COCO()
    coco.dataset = json.loads(json.dumps(gt))
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def test_per_category_ap_by_hand():
    # Category 1 found exactly in both images; category 2 never detected.
    dets = [_det(1, 1, (10, 10, 40, 40), 0.9),
            _det(2, 1, (20, 20, 40, 40), 0.8)]
    ev = evaluate_images(_coco(_gt()), dets, 'bbox')
    ap = per_category_ap(ev)
    assert ev.cat_ids == [1, 2]
    np.testing.assert_allclose(ap, [1.0, 0.0])
    assert ev.ap() == pytest.approx(ap.mean())
    # On image 2 alone category 2 has no ground truth: NaN, not 0.
    w = np.array([0.0, 1.0])
    np.testing.assert_allclose(per_category_ap(ev, w), [1.0, np.nan])


def test_per_category_difference_is_paired():
    gt = _coco(_gt())
    good = evaluate_images(gt, [_det(1, 1, (10, 10, 40, 40), 0.9),
                                _det(2, 1, (20, 20, 40, 40), 0.8),
                                _det(1, 2, (70, 70, 10, 10), 0.7)], 'bbox')
    worse = evaluate_images(gt, [_det(1, 1, (10, 10, 40, 40), 0.9),
                                 _det(2, 1, (20, 20, 40, 40), 0.8)], 'bbox')
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


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_tide_breakdown_names_the_error(iou_type):
    gt = _gt()
    exact = [_det(1, 1, (10, 10, 40, 40), 0.9),
             _det(2, 1, (20, 20, 40, 40), 0.8),
             _det(1, 2, (70, 70, 10, 10), 0.7)]
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
    shifted = [_det(1, 1, (25, 25, 40, 40), 0.9)] + exact[1:]
    assert tide_breakdowns(gt, shifted, iou_type)['all']['Loc'] > 0
    # The right box with the wrong class: a classification error.
    relabelled = [_det(1, 2, (10, 10, 40, 40), 0.95)] + exact
    assert tide_breakdowns(gt, relabelled, iou_type)['all']['Cls'] > 0


def test_scalars_of_a_resumed_run_are_joined_by_step(tmp_path):
    for stamp, records in (
            ('20260101_000000', [dict(step=10, loss=2.0, lr=0.01),
                                 dict(step=20, loss=1.5, lr=0.01)]),
            ('20260101_010000', [dict(step=20, loss=1.4, lr=0.01),
                                 dict(step=30, loss=1.0, lr=0.001,
                                      sasl1_beta_dx=0.1, sasl1_beta_dy=0.1,
                                      sasl1_beta_dw=0.05,
                                      sasl1_beta_dh=0.05),
                                 {'coco/bbox_mAP': 0.25, 'step': 30}])):
        vis = tmp_path / stamp / 'vis_data'
        vis.mkdir(parents=True)
        (vis / 'scalars.json').write_text(
            '\n'.join(json.dumps(r) for r in records) + '\n{"cut')
    df = read_scalars(str(tmp_path))
    assert df.step.tolist() == [10, 20, 30]
    assert df.loss.tolist() == [2.0, 1.4, 1.0]  # the later attempt wins
    assert df['coco/bbox_mAP'].iloc[-1] == 0.25
    assert df['sasl1_beta (mean)'].iloc[-1] == pytest.approx(0.075)


def test_tracker_is_added_at_training_time_only():
    cfg = Config(dict(visualizer=dict(
        type='DetLocalVisualizer',
        vis_backends=[dict(type='LocalVisBackend')])))
    add_tracker(cfg, dict(tracker='none'))
    assert [b['type'] for b in cfg.visualizer.vis_backends] == [
        'LocalVisBackend']
    add_tracker(cfg, dict(tracker='mlflow', grid='g', model='m', arm='a',
                          dataset='d', seed=0))
    assert cfg.visualizer.vis_backends[-1] == dict(
        type='MLflowVisBackend', exp_name='g', run_name='m/a/d/seed0')


@pytest.mark.slow
def test_tensorboard_tracker_logs_a_real_run(tiny_builtin, tmp_path):
    work_dir = tmp_path / 'work'
    grid = write_grid(tmp_path / 'g.yaml', work_dir, tiny_builtin,
                      {'a': {}}, overrides=dict(
                          TINY_OVERRIDES,
                          **{'default_hooks.logger.interval': 1}))
    done = run_grid_cli(grid, '--tracker', 'tensorboard')
    assert done.returncode == 0, done.stdout + done.stderr
    [events] = glob.glob(str(work_dir / '*' / '*' / 'vis_data' /
                             'events.out.tfevents.*'))
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    acc = EventAccumulator(events)
    acc.Reload()
    assert 'loss' in acc.Tags()['scalars']
    # The same run as without a tracker: the run id does not change.
    again = run_grid_cli(grid)
    assert 'finished earlier, skipped' in again.stdout
    run_dir = osp.dirname(osp.dirname(osp.dirname(events)))
    assert json.load(open(osp.join(run_dir, 'run.json')))['tracker'] == \
        'tensorboard'
