import copy
import json
import os
import os.path as osp

import pytest

from experiments.data.coco_check import CocoFormatError, check_coco


@pytest.fixture
def valid(tiny_builtin):
    with open(osp.join(tiny_builtin, 'annotations',
                       'instances_val.json')) as f:
        return json.load(f)


def _write(tmp_path, coco):
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(coco))
    return str(path)


def test_valid_file_passes(tiny_builtin, valid):
    coco = check_coco(osp.join(tiny_builtin, 'annotations',
                               'instances_val.json'),
                      osp.join(tiny_builtin, 'val'))
    assert len(coco['images']) == 4


@pytest.mark.parametrize('edit, expected', [
    (lambda c: c.pop('annotations'), 'missing top-level field "annotations"'),
    (lambda c: c['images'][1].pop('file_name'),
     r'images\[1\] \(id=2\) is missing field "file_name"'),
    (lambda c: c['annotations'][0].pop('segmentation'),
     r'annotations\[0\] \(id=1\) is missing field "segmentation"'),
    (lambda c: c['annotations'][0].update(category_id=99),
     r'field "category_id" = 99 names no category'),
    (lambda c: c['annotations'][0].update(image_id=1234),
     r'field "image_id" = 1234 names no image'),
    (lambda c: c['annotations'][0].update(bbox=[1, 2, 3]),
     r'field "bbox" must have 4 numbers'),
    (lambda c: c['annotations'][0].update(segmentation=[[1, 2, 3, 4]]),
     r'list of polygons with >= 3'),
    (lambda c: c['images'][0].update(width='wide'),
     r'images\[0\] \(id=1\) field "width" has type str'),
    # A NaN polygon once grew a training child to 24 GB before the kernel
    # killed it; it must stop here, naming the record.
    (lambda c: c['annotations'][1]['segmentation'][0].__setitem__(
        3, float('nan')),
     r'annotations\[1\] \(id=2\) field "segmentation" polygon 0 has a '
     r'coordinate nan'),
    (lambda c: c['annotations'][0]['segmentation'][0].__setitem__(
        0, float('inf')), r'polygon 0 has a coordinate inf'),
    (lambda c: c['annotations'][0].update(bbox=[1, 2, float('nan'), 4]),
     r'annotations\[0\] \(id=1\) field "bbox" must be 4 finite numbers'),
    (lambda c: c['annotations'][0].update(bbox=[1, 2, -3, 4]),
     r'field "bbox" has a negative width or height'),
    (lambda c: c['annotations'][0].update(area=-1.0),
     r'field "area" must be a finite number >= 0, got -1.0'),
    (lambda c: c['annotations'][0].update(area=float('nan')),
     r'field "area" must be a finite number >= 0, got nan'),
    (lambda c: c['images'][0].update(height=0),
     r'images\[0\] \(id=1\) has size \d+x0'),
    (lambda c: c['images'][2].update(id=c['images'][1]['id']),
     r'images\[2\] has id 2, already used by images\[1\]'),
    (lambda c: c['annotations'][3].update(id=c['annotations'][0]['id']),
     r'annotations\[3\] has id 1, already used by annotations\[0\]'),
    # An RLE at another size than its image decodes to a mask that does not
    # lie on it; mmdet would fail in the training child, naming nothing.
    (lambda c: c['annotations'][0].update(segmentation={
        'size': [c['images'][0]['height'] + 1, c['images'][0]['width']],
        'counts': 'abc'}),
     r'annotations\[0\] \(id=1\) field "segmentation.size" = \[\d+, \d+\] '
     r'differs from its image 1\'s \[height, width\]'),
    (lambda c: c.update(annotations=[]),
     r'no annotations outside crowd regions \(0 in all\)'),
    (lambda c: [a.update(iscrowd=1) for a in c['annotations']],
     r'no annotations outside crowd regions'),
])
def test_malformed_files_name_file_record_and_field(tmp_path, tiny_builtin,
                                                    valid, edit, expected):
    coco = copy.deepcopy(valid)
    edit(coco)
    path = _write(tmp_path, coco)
    with pytest.raises(CocoFormatError, match=expected) as info:
        check_coco(path, osp.join(tiny_builtin, 'val'))
    assert path in str(info.value)


def test_zero_size_boxes_are_accepted_with_a_warning(tmp_path, tiny_builtin,
                                                     valid):
    # COCO train2017 has two boxes of height 0, which mmdet's loader skips:
    # refusing them would refuse COCO itself.
    coco = copy.deepcopy(valid)
    coco['annotations'][0]['bbox'][3] = 0
    coco['annotations'][2]['area'] = 0
    warnings = []
    check_coco(_write(tmp_path, coco), osp.join(tiny_builtin, 'val'),
               warnings=warnings)
    assert len(warnings) == 1
    assert '2 annotation(s) with a zero-size box or zero area (ids 1, 3)' \
        in warnings[0]


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"images": [')
    with pytest.raises(CocoFormatError, match='not valid JSON'):
        check_coco(str(bad), check_images=False)
    with pytest.raises(CocoFormatError, match='does not exist'):
        check_coco(str(tmp_path / 'nope.json'), check_images=False)


def test_missing_image_is_named(tmp_path, tiny_builtin, valid):
    img_dir = tmp_path / 'images'
    img_dir.mkdir()
    for img in valid['images'][1:]:
        os.symlink(osp.join(tiny_builtin, 'val', img['file_name']),
                   img_dir / img['file_name'])
    path = _write(tmp_path, valid)
    with pytest.raises(CocoFormatError, match='1 image\\(s\\) missing .*'
                       + valid['images'][0]['file_name']):
        check_coco(path, str(img_dir))


def test_coco128_passes(coco128):
    coco = check_coco(
        osp.join(coco128, 'annotations', 'instances_train2017.json'),
        osp.join(coco128, 'images', 'train2017'))
    assert len(coco['images']) == 128
