"""TIDE's error breakdown on a hand-built case, and its cache."""
import json
import os
import os.path as osp

import matplotlib
import pytest

from analysis.sections.error_breakdown import tide_breakdowns
from test_per_category import hand_det, hand_gt


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
