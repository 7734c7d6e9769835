"""Validate a COCO instance-segmentation dataset before any run uses it.

mmdet's ``CocoDataset`` fails deep inside ``parse_data_info`` (a ``KeyError``
without the file name) or, for a missing image, only when a worker first
loads it. The harness checks every dataset of a grid up front and reports the
file, the record and the field.
"""
import json
import math
import os.path as osp
from typing import Dict, List, Optional

from experiments.store import finite_numbers, is_number

_IMAGE_FIELDS = {'id': int, 'file_name': str, 'width': int, 'height': int}
_ANN_FIELDS = {'id': int, 'image_id': int, 'category_id': int,
               'bbox': list, 'area': (int, float), 'iscrowd': int,
               'segmentation': (list, dict)}
_CATEGORY_FIELDS = {'id': int, 'name': str}


class CocoFormatError(ValueError):
    """A COCO file (or its images) does not satisfy what training needs."""


def _load_json(ann_file: str):
    """Load ``ann_file``; also say whether it spells NaN or Infinity.

    JSON has no NaN; Python's reader accepts the literals ``NaN`` and
    ``Infinity`` that ``json.dumps`` writes for them. Noting them while
    parsing keeps the per-coordinate scan off the path of a clean COCO file
    (860k polygons in train2017).
    """
    seen = []

    def constant(name):
        seen.append(name)
        return float(name.replace('Infinity', 'inf'))

    with open(ann_file) as f:
        coco = json.load(f, parse_constant=constant)
    return coco, bool(seen)


def _check_unique(ann_file: str, records: list, section: str) -> None:
    seen = {}
    for i, rec in enumerate(records):
        if rec['id'] in seen:
            raise CocoFormatError(
                f'{ann_file}: {section}[{i}] has id {rec["id"]}, already used '
                f'by {section}[{seen[rec["id"]]}]: ids must be unique')
        seen[rec['id']] = i


def _check_geometry(where: str, ann: dict, non_finite: bool) -> bool:
    """Refuse negative or non-finite geometry; return whether the box is
    empty (zero width, height or area)."""
    x, y, w, h = ann['bbox']
    if not finite_numbers(ann['bbox']):
        raise CocoFormatError(f'{where} field "bbox" must be 4 finite '
                              f'numbers, got {ann["bbox"]}')
    if w < 0 or h < 0:
        raise CocoFormatError(f'{where} field "bbox" has a negative width or '
                              f'height: {ann["bbox"]} is [x, y, w, h]')
    area = ann['area']
    if not math.isfinite(area) or area < 0:
        raise CocoFormatError(f'{where} field "area" must be a finite '
                              f'number >= 0, got {area}')
    seg = ann['segmentation']
    if non_finite and isinstance(seg, list):
        for k, polygon in enumerate(seg):
            if not finite_numbers(polygon):
                bad = next(v for v in polygon if not (
                    is_number(v) and math.isfinite(v)))
                raise CocoFormatError(
                    f'{where} field "segmentation" polygon {k} has a '
                    f'coordinate {bad!r}: every coordinate must be a finite '
                    f'number')
    return w == 0 or h == 0 or area == 0


def _check_records(ann_file: str, records, section: str,
                   fields: Dict[str, type]) -> None:
    if not isinstance(records, list):
        raise CocoFormatError(f'{ann_file}: "{section}" must be a list, got '
                              f'{type(records).__name__}')
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise CocoFormatError(f'{ann_file}: {section}[{i}] is not an '
                                  f'object')
        for field, kind in fields.items():
            if field not in rec:
                raise CocoFormatError(
                    f'{ann_file}: {section}[{i}] (id={rec.get("id")}) is '
                    f'missing field "{field}"')
            if not isinstance(rec[field], kind) or isinstance(
                    rec[field], bool):
                raise CocoFormatError(
                    f'{ann_file}: {section}[{i}] (id={rec.get("id")}) field '
                    f'"{field}" has type {type(rec[field]).__name__}')


def check_coco(ann_file: str, img_dir: Optional[str] = None,
               check_images: bool = True,
               warnings: Optional[List[str]] = None) -> dict:
    """Check a COCO instance-segmentation annotation file.

    Refused: missing or mistyped fields, ids used twice, references to
    unknown images or categories, non-finite numbers anywhere in a box,
    area or polygon, negative box sizes or areas, polygons of fewer than
    three points, images of non-positive size, and a file with no
    annotation outside crowd regions (nothing to train on or evaluate).

    Accepted with a warning: boxes of zero width, height or area. mmdet's
    ``CocoDataset`` skips them in training and COCO train2017 has two, so
    refusing them would refuse COCO itself.

    Args:
        ann_file: Path of the instances JSON.
        img_dir: Directory that ``file_name`` is relative to. Needed when
            ``check_images``.
        check_images: Whether every image file must exist.
        warnings: Where to append warnings (one line each), if given.

    Returns:
        The loaded COCO dict.

    Raises:
        CocoFormatError: Naming the file, the record and the field.
    """
    if not osp.isfile(ann_file):
        raise CocoFormatError(f'{ann_file}: annotation file does not exist')
    try:
        coco, non_finite = _load_json(ann_file)
    except json.JSONDecodeError as e:
        raise CocoFormatError(f'{ann_file}: not valid JSON ({e})') from None
    if not isinstance(coco, dict):
        raise CocoFormatError(f'{ann_file}: top level must be an object')
    for section in ('images', 'annotations', 'categories'):
        if section not in coco:
            raise CocoFormatError(f'{ann_file}: missing top-level field '
                                  f'"{section}"')
    _check_records(ann_file, coco['images'], 'images', _IMAGE_FIELDS)
    _check_records(ann_file, coco['categories'], 'categories',
                   _CATEGORY_FIELDS)
    _check_records(ann_file, coco['annotations'], 'annotations', _ANN_FIELDS)
    if not coco['categories']:
        raise CocoFormatError(f'{ann_file}: "categories" is empty')
    for section in ('images', 'categories', 'annotations'):
        _check_unique(ann_file, coco[section], section)
    for i, img in enumerate(coco['images']):
        if img['width'] <= 0 or img['height'] <= 0:
            raise CocoFormatError(
                f'{ann_file}: images[{i}] (id={img["id"]}) has size '
                f'{img["width"]}x{img["height"]}: width and height must be '
                f'positive')

    image_ids = {img['id'] for img in coco['images']}
    image_sizes = {img['id']: [img['height'], img['width']]
                   for img in coco['images']}
    category_ids = {c['id'] for c in coco['categories']}
    empty_boxes = []
    for i, ann in enumerate(coco['annotations']):
        where = f'{ann_file}: annotations[{i}] (id={ann["id"]})'
        if ann['image_id'] not in image_ids:
            raise CocoFormatError(f'{where} field "image_id" = '
                                  f'{ann["image_id"]} names no image')
        if ann['category_id'] not in category_ids:
            raise CocoFormatError(f'{where} field "category_id" = '
                                  f'{ann["category_id"]} names no category')
        if len(ann['bbox']) != 4:
            raise CocoFormatError(f'{where} field "bbox" must have 4 '
                                  f'numbers, got {ann["bbox"]}')
        seg = ann['segmentation']
        if isinstance(seg, dict) and not {'size', 'counts'} <= set(seg):
            raise CocoFormatError(f'{where} field "segmentation" is an RLE '
                                  f'without "size"/"counts"')
        if isinstance(seg, dict) and \
                list(seg['size']) != image_sizes[ann['image_id']]:
            # pycocotools decodes the RLE at its own size: the mask would not
            # lie on its image, and mmdet fails deep in the loader.
            height, width = image_sizes[ann['image_id']]
            raise CocoFormatError(
                f'{where} field "segmentation.size" = {list(seg["size"])} '
                f'differs from its image {ann["image_id"]}\'s [height, '
                f'width] = [{height}, {width}]')
        if isinstance(seg, list) and any(
                not isinstance(p, list) or len(p) < 6 or len(p) % 2
                for p in seg):
            raise CocoFormatError(f'{where} field "segmentation" must be a '
                                  f'list of polygons with >= 3 (x, y) points')
        if _check_geometry(where, ann, non_finite):
            empty_boxes.append(ann['id'])
    if not any(ann['iscrowd'] == 0 for ann in coco['annotations']):
        raise CocoFormatError(
            f'{ann_file}: no annotations outside crowd regions '
            f'({len(coco["annotations"])} in all): nothing to train on or '
            f'evaluate')
    if empty_boxes and warnings is not None:
        warnings.append(
            f'{ann_file}: {len(empty_boxes)} annotation(s) with a zero-size '
            f'box or zero area (ids {", ".join(map(str, empty_boxes[:3]))}'
            f'{" ..." if len(empty_boxes) > 3 else ""}); mmdet\'s loader '
            f'skips them in training, COCO evaluation counts them as ground '
            f'truth')

    if check_images:
        if img_dir is None:
            raise ValueError('img_dir is required with check_images=True')
        if not osp.isdir(img_dir):
            raise CocoFormatError(f'{ann_file}: image directory {img_dir} '
                                  f'does not exist')
        missing: List[str] = [img['file_name'] for img in coco['images']
                              if not osp.isfile(osp.join(img_dir,
                                                         img['file_name']))]
        if missing:
            more = f' and {len(missing) - 3} more' if len(missing) > 3 else ''
            raise CocoFormatError(
                f'{ann_file}: {len(missing)} image(s) missing in {img_dir}: '
                f'{", ".join(missing[:3])}{more}')
    return coco
