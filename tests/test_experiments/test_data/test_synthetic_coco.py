import json
import os.path as osp

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from experiments.data.coco_check import check_coco
from experiments.data.coco_stats import area_bin, statistics
from experiments.data.synthetic_coco import SyntheticCocoSpec, generate


def _bins(coco):
    return [area_bin(a['area']) for a in coco.dataset['annotations']]


@pytest.mark.parametrize('mask_format', ['polygon', 'rle'])
def test_generated_set_loads_in_pycocotools_with_requested_mix(
        tmp_path, mask_format):
    spec = SyntheticCocoSpec(num_train=12, num_val=6, image_size=128,
                             num_classes=4, objects_per_image=(2, 5),
                             size_mix=dict(small=0.5, medium=0.3, large=0.2),
                             mask_format=mask_format, seed=1)
    files = generate(spec, str(tmp_path), verbose=False)
    for split, n_images in (('train', 12), ('val', 6)):
        coco = COCO(files[split])
        assert len(coco.getImgIds()) == n_images
        bins = _bins(coco)
        total = len(bins)
        # Largest-remainder rounding: each bin within one object of its share.
        for name, share in spec.size_mix.items():
            assert abs(bins.count(name) - share * total) < 1
        for ann in coco.dataset['annotations']:
            img = coco.imgs[ann['image_id']]
            m = coco.annToMask(ann)
            assert m.shape == (img['height'], img['width'])
            # The stored area is the area of the stored mask.
            assert m.sum() == pytest.approx(ann['area'], abs=0.5)
            x, y, w, h = ann['bbox']
            ys, xs = np.nonzero(m)
            assert (xs.min(), ys.min()) == (x, y)
            assert (xs.max() + 1, ys.max() + 1) == (x + w, y + h)
            assert isinstance(ann['segmentation'],
                              list if mask_format == 'polygon' else dict)
        image = cv2.imread(osp.join(str(tmp_path), split,
                                    coco.imgs[1]['file_name']))
        assert image.shape == (128, 128, 3)
        check_coco(files[split], osp.join(str(tmp_path), split))


def test_occlusion_is_present_and_bounded(tmp_path):
    spec = SyntheticCocoSpec(num_train=24, num_val=2, max_occlusion=0.3,
                             seed=5)
    files = generate(spec, str(tmp_path), verbose=False)
    with open(files['train']) as f:
        coco = json.load(f)
    hidden = np.array([a['occluded_fraction'] for a in coco['annotations']])
    assert (hidden > 0).mean() > 0.1
    assert hidden.max() <= 0.3 + 1e-6
    stats = statistics(coco)
    assert stats['occluded']['share_with_occlusion'] == pytest.approx(
        (hidden > 0).mean())


def test_generation_is_deterministic_and_idempotent(tmp_path):
    spec = SyntheticCocoSpec(num_train=5, num_val=2, seed=7)
    a = generate(spec, str(tmp_path / 'a'), verbose=False)
    b = generate(spec, str(tmp_path / 'b'), verbose=False)
    for split in ('train', 'val'):
        assert open(a[split]).read() == open(b[split]).read()
        for i in (1, 2):
            pa = tmp_path / 'a' / split / f'{i:06d}.png'
            pb = tmp_path / 'b' / split / f'{i:06d}.png'
            assert np.array_equal(cv2.imread(str(pa)), cv2.imread(str(pb)))
    mtime = osp.getmtime(a['train'])
    generate(spec, str(tmp_path / 'a'), verbose=False)
    assert osp.getmtime(a['train']) == mtime
    # A different spec regenerates in place.
    generate(SyntheticCocoSpec(num_train=3, num_val=2, seed=7),
             str(tmp_path / 'a'), verbose=False)
    assert len(COCO(a['train']).getImgIds()) == 3


def test_small_share_is_a_knob(tmp_path):
    shares = []
    for small in (0.2, 0.8):
        spec = SyntheticCocoSpec(num_train=20, num_val=2, image_size=96,
                                 size_mix=dict(small=small,
                                               medium=1 - small, large=0),
                                 seed=2)
        files = generate(spec, str(tmp_path / str(small)), verbose=False)
        with open(files['train']) as f:
            shares.append(statistics(json.load(f))['area_bin_shares']['small'])
    assert shares[0] == pytest.approx(0.2, abs=0.02)
    assert shares[1] == pytest.approx(0.8, abs=0.02)


def test_impossible_requests_are_refused():
    with pytest.raises(ValueError, match='large'):
        SyntheticCocoSpec(image_size=64,
                          size_mix=dict(small=0.5, medium=0.3, large=0.2))
    with pytest.raises(ValueError, match='unknown bins'):
        SyntheticCocoSpec(size_mix=dict(tiny=1.0))
    with pytest.raises(ValueError, match='unknown synthetic dataset keys'):
        SyntheticCocoSpec.from_dict(dict(num_images=3))


def test_statistics_of_real_coco(coco128):
    with open(osp.join(coco128, 'annotations',
                       'instances_train2017.json')) as f:
        stats = statistics(json.load(f))
    assert stats['images'] == 128
    assert sum(stats['area_bins'].values()) == stats['instances']
    assert stats['occluded']['share_with_occlusion'] is None
