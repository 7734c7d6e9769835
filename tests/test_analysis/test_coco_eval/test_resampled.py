"""The block accumulate and the remembered resamples give the numbers of one
accumulate per resample -- the path the image-eval tests hold to
``COCOeval`` -- bit for bit, and the intervals and verdict evidence built on
them are unchanged."""
import copy

import numpy as np
import pytest

from analysis.coco_eval import resampled
from analysis.coco_eval.bootstrap import (_ap, bootstrap_ap,
                                          bootstrap_category_ap,
                                          bootstrap_stat, resample_counts,
                                          seed_mean)
from analysis.coco_eval.constants import COCO_AREAS
from analysis.coco_eval.image_eval import evaluate_images
from analysis.evidence import ap_value, paired_evidence
from analysis.sections.per_category import per_category_ap
from uncertainty.noise import prior

from test_image_eval import (_builtin_coco, _cocoeval, _with_crowds,
                              perturbed_predictions)


@pytest.fixture(scope='module')
def runs(tiny_builtin):
    """Three box runs and one mask run of the built-in set with crowd
    regions, on the same images."""
    coco = _with_crowds(_builtin_coco(tiny_builtin), 4)
    box = [evaluate_images(coco, perturbed_predictions(coco, seed=s),
                           'bbox') for s in (11, 12, 13)]
    mask = evaluate_images(coco, perturbed_predictions(coco, seed=14),
                           'segm')
    return coco, box, mask


def test_block_equals_one_accumulate_per_resample(runs):
    _, box, mask = runs
    for ev in (*box, mask):
        for area in COCO_AREAS:
            table = ev.tables[ev.area_names.index(area)]
            counts = next(resample_counts(ev.num_images, 30, seed=4))
            block = resampled.precision_block(table, counts)
            for flat, w in zip(block, counts):
                np.testing.assert_array_equal(
                    resampled.as_tkr(flat, table.npig.shape[0]),
                    ev.precision(w, area))


def test_block_of_ones_equals_cocoeval(runs):
    coco, box, _ = runs
    dets = perturbed_predictions(coco, seed=11)
    ref = _cocoeval(coco, copy.deepcopy(dets), 'bbox')
    table = box[0].tables[0]
    block = resampled.precision_block(table, np.ones((2, box[0].num_images)))
    np.testing.assert_allclose(resampled.as_tkr(block[1], table.npig.shape[0]),
                               ref.eval['precision'][:, :, :, 0, -1],
                               atol=1e-12)


@pytest.mark.parametrize('area', ['all', 'small', 'large'])
def test_bootstrap_ap_is_unchanged(runs, area):
    _, box, mask = runs
    arms = {'a': box[:2], 'b': box[2:], 'm': [mask]}
    resampled.forget()
    fast = bootstrap_ap(arms, n_resamples=250, seed=3, area=area)
    old = bootstrap_stat(arms, lambda ev, w: _ap(ev, w, area, None), 250, 3)
    for name in arms:
        np.testing.assert_array_equal(fast[name], old[name])


def test_category_ap_is_unchanged(runs):
    _, box, _ = runs
    arms = {'a': box[:2], 'b': box[2:]}
    fast = bootstrap_category_ap(arms, n_resamples=120, seed=1)
    old = bootstrap_stat(arms, per_category_ap, 120, 1)
    for name in arms:
        np.testing.assert_array_equal(fast[name], old[name])
        assert fast[name].shape == (120, len(box[0].cat_ids))


def test_verdict_evidence_is_unchanged(runs):
    _, box, _ = runs
    value = ap_value('all')

    def old(ev, counts):  # the same value without its resampled form
        return value(ev, counts)

    n = box[0].num_images
    fast = paired_evidence(box[:2], box[2:], n, value, 200, prior('box_AP',
                                                                   n))
    slow = paired_evidence(box[:2], box[2:], n, old, 200, prior('box_AP', n))
    assert fast == slow


def test_per_image_ap_equals_one_hot_weights(runs):
    _, box, mask = runs
    for ev in (box[0], mask):
        img_ids = ev.img_ids[::-1]
        expected = []
        for img in img_ids:
            w = np.zeros(ev.num_images)
            w[ev.img_ids.index(img)] = 1.0
            expected.append(ev.ap(w))
        np.testing.assert_array_equal(
            resampled.per_image_ap(ev, img_ids, chunk=3), expected)


def test_resamples_are_remembered_per_run(runs):
    _, box, _ = runs
    resampled.forget()
    first = resampled.resampled_stats(box[0], 'all', 50)
    assert resampled.resampled_stats(box[0], 'all', 50) is first
    assert resampled.resampled_stats(box[1], 'all', 50) is not first
    np.testing.assert_array_equal(
        first['ap'], [seed_mean([_ap(box[0], w, 'all', None)])
                      for c in resample_counts(box[0].num_images, 50)
                      for w in c])


def test_without_the_compiled_engine_the_block_loops(runs, monkeypatch):
    _, box, _ = runs
    table = box[0].tables[0]
    counts = next(resample_counts(box[0].num_images, 5, seed=2))
    monkeypatch.setenv('COCO_ENGINE', 'pycocotools')
    block = resampled.precision_block(table, counts)
    for flat, w in zip(block, counts):
        np.testing.assert_array_equal(
            resampled.as_tkr(flat, table.npig.shape[0]),
            table._precision_numpy(w, table.npig @ w))


def test_resamples_are_kept_next_to_the_eval_cache(runs, tmp_path,
                                                   monkeypatch):
    _, box, _ = runs
    ev = copy.copy(box[0])
    ev.cache_path = str(tmp_path / 'bbox-aaaa.npz')
    resampled.forget()
    first = resampled.resampled_stats(ev, 'all', 40, seed=2)
    small = resampled.resampled_stats(ev, 'small', 40, seed=2)
    kept = sorted(p.name for p in tmp_path.glob('resampled-*'))
    assert len(kept) == 2 and all(k.startswith('resampled-bbox-aaaa-')
                                  for k in kept)

    def no_compute(*args, **kwargs):
        raise AssertionError('computed again')

    resampled.forget()
    monkeypatch.setattr(resampled, 'precision_block', no_compute)
    again = resampled.resampled_stats(ev, 'all', 40, seed=2)
    for k in ('ap', 'per_category'):
        np.testing.assert_array_equal(again[k], first[k])
    np.testing.assert_array_equal(
        resampled.resampled_stats(ev, 'small', 40, seed=2)['ap'],
        small['ap'])
    monkeypatch.undo()
    # Another evaluation of the task replaces the run's entries.
    ev.cache_path = str(tmp_path / 'bbox-bbbb.npz')
    resampled.forget()
    resampled.resampled_stats(ev, 'all', 40, seed=2)
    assert [p.name.startswith('resampled-bbox-bbbb-')
            for p in tmp_path.glob('resampled-*')] == [True]
    resampled.forget()


def test_per_image_ap_is_kept_next_to_the_eval_cache(runs, tmp_path,
                                                     monkeypatch):
    _, _, mask = runs
    ev = copy.copy(mask)
    ev.cache_path = str(tmp_path / 'segm-cccc.npz')
    img_ids = ev.img_ids[::-1]
    first = resampled.per_image_ap(ev, img_ids)
    np.testing.assert_array_equal(first, resampled.per_image_ap(mask,
                                                                img_ids))
    monkeypatch.setattr(resampled, 'precision_block', None)  # not called
    np.testing.assert_array_equal(resampled.per_image_ap(ev, img_ids), first)
    with pytest.raises(TypeError):  # other images: computed
        resampled.per_image_ap(ev, img_ids[:3])
