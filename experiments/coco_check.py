"""Validate a COCO instance-segmentation dataset before any run uses it.

mmdet's ``CocoDataset`` fails deep inside ``parse_data_info`` (a ``KeyError``
without the file name) or, for a missing image, only when a worker first
loads it. The harness checks every dataset of a grid up front and reports the
file, the record and the field.
"""
import json
import os.path as osp
from typing import Dict, List, Optional

_IMAGE_FIELDS = {'id': int, 'file_name': str, 'width': int, 'height': int}
_ANN_FIELDS = {'id': int, 'image_id': int, 'category_id': int,
               'bbox': list, 'area': (int, float), 'iscrowd': int,
               'segmentation': (list, dict)}
_CATEGORY_FIELDS = {'id': int, 'name': str}


class CocoFormatError(ValueError):
    """A COCO file (or its images) does not satisfy what training needs."""


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
               check_images: bool = True) -> dict:
    """Check a COCO instance-segmentation annotation file.

    Args:
        ann_file: Path of the instances JSON.
        img_dir: Directory that ``file_name`` is relative to. Needed when
            ``check_images``.
        check_images: Whether every image file must exist.

    Returns:
        The loaded COCO dict.

    Raises:
        CocoFormatError: Naming the file, the record and the field.
    """
    if not osp.isfile(ann_file):
        raise CocoFormatError(f'{ann_file}: annotation file does not exist')
    try:
        with open(ann_file) as f:
            coco = json.load(f)
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

    image_ids = {img['id'] for img in coco['images']}
    category_ids = {c['id'] for c in coco['categories']}
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
        if isinstance(seg, list) and any(
                not isinstance(p, list) or len(p) < 6 or len(p) % 2
                for p in seg):
            raise CocoFormatError(f'{where} field "segmentation" must be a '
                                  f'list of polygons with >= 3 (x, y) points')

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
