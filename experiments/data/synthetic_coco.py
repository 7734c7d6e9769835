"""Deterministic generator of a small COCO-format instance-segmentation set.

The built-in dataset of the project: coloured shapes on textured backgrounds,
one shape family per class, with a requested mix of COCO's small / medium /
large area bins and bounded occlusion. The mix is exact: every object is
assigned its bin up front and is re-drawn until its final annotated area
(the area pycocotools computes from the stored mask) lies in that bin.

Command line::

    python -m experiments.data.synthetic_coco --out data/builtin/shapes128 \
        --num-train 64 --num-val 16 --image-size 128 --num-classes 3 \
        --small 0.4 --medium 0.4 --large 0.2

Layout written (``--out``)::

    annotations/instances_train.json, annotations/instances_val.json
    train/000001.png ...,  val/000001.png ...
    generator.json        the spec that produced it (idempotency check)
"""
import argparse
import dataclasses
import json
import math
import os
import os.path as osp
import shutil
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from experiments.data.coco_stats import (
    AREA_BINS,
    area_bin,
    format_statistics,
    statistics,
)
from experiments.data.shapes import (
    class_colour,
    draw_object,
    encode_mask,
    has_hole,
    texture,
)
from experiments.store import atomic_write, atomic_write_json

SHAPES = ('ellipse', 'rectangle', 'triangle', 'hexagon', 'star', 'cross')
GENERATOR_VERSION = 1
# Smallest object drawn: below ~6x6 px a shape is a blob of a few pixels.
MIN_OBJECT_AREA = 36
# Objects are sampled inside their bin with a margin, so that occlusion by
# later objects and polygon rasterisation rarely push them out of it.
_BIN_SAMPLING = {'small': (MIN_OBJECT_AREA, 0.9 * 32**2),
                 'medium': (1.1 * 32**2, 0.9 * 96**2),
                 'large': (1.1 * 96**2, None)}
_MAX_LAYOUT_TRIES = 50
_OBJECT_TRIES = 50


@dataclasses.dataclass
class SyntheticCocoSpec:
    """What to generate.

    Args:
        num_train: Training images.
        num_val: Validation images.
        image_size: Square image side in pixels.
        num_classes: Categories; class ``k`` is shape ``SHAPES[k % 6]`` with
            its own hue.
        objects_per_image: Inclusive range of objects per image.
        size_mix: Share of objects per COCO area bin (small < 32², medium
            < 96², large); normalised to sum 1.
        max_occlusion: Largest fraction of an object that objects drawn
            on top of it may hide.
        mask_format: ``'polygon'`` (COCO's usual) or ``'rle'`` (compressed).
        seed: Seed of everything random.
    """

    num_train: int = 64
    num_val: int = 16
    image_size: int = 128
    num_classes: int = 3
    objects_per_image: Tuple[int, int] = (2, 6)
    size_mix: Dict[str, float] = dataclasses.field(
        default_factory=lambda: {'small': 0.4, 'medium': 0.4, 'large': 0.2})
    max_occlusion: float = 0.3
    mask_format: str = 'polygon'
    seed: int = 0

    def __post_init__(self) -> None:
        self.objects_per_image = tuple(self.objects_per_image)
        unknown = set(self.size_mix) - set(AREA_BINS)
        if unknown:
            raise ValueError(f'size_mix: unknown bins {sorted(unknown)}; '
                             f'use {list(AREA_BINS)}')
        total = sum(self.size_mix.values())
        if total <= 0 or any(v < 0 for v in self.size_mix.values()):
            raise ValueError(f'size_mix must be non-negative with a positive '
                             f'sum, got {self.size_mix}')
        self.size_mix = {b: self.size_mix.get(b, 0.0) / total
                         for b in AREA_BINS}
        lo, hi = self.objects_per_image
        if not 1 <= lo <= hi:
            raise ValueError(f'objects_per_image must be 1 <= lo <= hi, '
                             f'got {self.objects_per_image}')
        if self.mask_format not in ('polygon', 'rle'):
            raise ValueError(f"mask_format must be 'polygon' or 'rle', got "
                             f'{self.mask_format!r}')
        if not 0 <= self.max_occlusion < 1:
            raise ValueError('max_occlusion must be in [0, 1)')
        if self.num_classes < 1:
            raise ValueError('num_classes must be >= 1')
        image_area = self.image_size**2
        for bin_name, share in self.size_mix.items():
            low = _BIN_SAMPLING[bin_name][0]
            if share > 0 and low > 0.8 * image_area:
                raise ValueError(
                    f'size_mix[{bin_name!r}] = {share:.2f} but a '
                    f'{self.image_size}px image cannot hold a {bin_name} '
                    f'object (area > {AREA_BINS[bin_name][0]:.0f} px); use a '
                    f'larger image_size or a zero share')

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d['objects_per_image'] = list(self.objects_per_image)
        d['generator_version'] = GENERATOR_VERSION
        return d

    @classmethod
    def from_dict(cls, d: dict) -> 'SyntheticCocoSpec':
        d = {k: v for k, v in d.items() if k != 'generator_version'}
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f'unknown synthetic dataset keys '
                             f'{sorted(unknown)}; allowed: {sorted(fields)}')
        return cls(**d)


def category_names(num_classes: int) -> List[str]:
    """Category names: the shape, suffixed when shapes repeat."""
    return [SHAPES[k % len(SHAPES)] + (f'_{k // len(SHAPES)}'
                                       if k >= len(SHAPES) else '')
            for k in range(num_classes)]



def _bin_plan(spec: SyntheticCocoSpec, counts: Sequence[int],
              rng: np.random.Generator) -> List[List[str]]:
    """Assign every object of the split a bin, matching the mix exactly.

    Per-bin totals are the largest-remainder rounding of ``share * total``.
    Objects are dealt largest bin first, each to the image with the most
    unclaimed area among those with a free slot (ties broken at random), so
    that large objects do not pile up in images that cannot hold them.
    """
    total = int(sum(counts))
    quotas = {b: spec.size_mix[b] * total for b in AREA_BINS}
    n = {b: int(math.floor(q)) for b, q in quotas.items()}
    by_remainder = sorted(AREA_BINS, key=lambda b: quotas[b] - n[b],
                          reverse=True)
    for b in by_remainder[:total - sum(n.values())]:
        n[b] += 1
    free_area = np.full(len(counts), float(spec.image_size**2))
    free_slots = np.array(counts, dtype=int)
    plan: List[List[str]] = [[] for _ in counts]
    for b in sorted(AREA_BINS, key=lambda b: -AREA_BINS[b][0]):
        for _ in range(n[b]):
            score = np.where(free_slots > 0,
                             free_area + rng.uniform(0, 1, len(counts)),
                             -np.inf)
            i = int(np.argmax(score))
            plan[i].append(b)
            free_slots[i] -= 1
            free_area[i] -= _BIN_SAMPLING[b][0]
    return plan


def _sample_area(bin_name: str, size: int, rng: np.random.Generator,
                 shrink: float = 1.0) -> float:
    """Log-uniform area inside the bin; ``shrink`` < 1 favours small ones."""
    low, high = _BIN_SAMPLING[bin_name]
    high = 0.75 * size * size if high is None else min(high, 0.75 * size**2)
    high = max(low * 1.01, low + (high - low) * shrink)
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _layout(spec: SyntheticCocoSpec, bins: List[str],
            rng: np.random.Generator):
    """One image's objects, drawn back (large) to front (small).

    Each object gets up to ``_OBJECT_TRIES`` draws of size and position; a
    draw is kept when every object below it stays at least
    ``1 - max_occlusion`` visible and inside its bin. Returns a list of
    [category index, bin, full mask, visible mask], or None when an object
    found no place (the caller re-draws the image).
    """
    order = sorted(bins, key=lambda b: -AREA_BINS[b][0])
    objects = []
    for bin_name in order:
        cat = int(rng.integers(spec.num_classes))
        for attempt in range(_OBJECT_TRIES):
            # Crowded images need smaller objects: later attempts draw from
            # the lower part of the bin.
            area = _sample_area(bin_name, spec.image_size, rng,
                                shrink=0.9**attempt)
            full = draw_object(SHAPES[cat % len(SHAPES)], area,
                                spec.image_size, rng)
            if area_bin(float(full.sum())) != bin_name:
                continue
            hidden = [obj[3] & (1 - full) for obj in objects]
            # COCO polygons cannot express holes (an object seen all around
            # one drawn on top of it), so polygon layouts avoid them.
            if all(h.sum() >= (1 - spec.max_occlusion) * obj[2].sum()
                   and area_bin(float(h.sum())) == obj[1]
                   and not (spec.mask_format == 'polygon' and has_hole(h))
                   for h, obj in zip(hidden, objects)):
                break
        else:
            return None
        for obj, h in zip(objects, hidden):
            obj[3] = h
        objects.append([cat, str(bin_name), full, full.copy()])
    return objects


def _render_image(spec: SyntheticCocoSpec, objects,
                  rng: np.random.Generator) -> np.ndarray:
    size = spec.image_size
    background = rng.uniform(70, 150, 3) * np.array([1.0, 0.95, 0.9])
    img = texture(size, rng, background, 18.0)
    for cat, _, _, visible in objects:
        colour = class_colour(cat, spec.num_classes)
        fill = texture(size, rng, colour, 12.0)
        # Each object is painted where it is visible, i.e. the front-most
        # object owns overlapping pixels.
        img[visible.astype(bool)] = fill[visible.astype(bool)]
    return np.clip(img, 0, 255).astype(np.uint8)


def generate_split(spec: SyntheticCocoSpec, out_dir: str, split: str,
                   num_images: int) -> dict:
    """Write one split's images and return its COCO dict."""
    split_index = {'train': 0, 'val': 1}.get(split, 2)
    plan_rng = np.random.default_rng([spec.seed, split_index, 0])
    lo, hi = spec.objects_per_image
    counts = plan_rng.integers(lo, hi + 1, size=num_images)
    plan = _bin_plan(spec, counts, plan_rng)
    img_dir = osp.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)

    images, annotations = [], []
    for i, bins in enumerate(plan):
        # Per-image stream: image i does not depend on how many draws the
        # images before it needed.
        rng = np.random.default_rng([spec.seed, split_index, 1, i])
        for _ in range(_MAX_LAYOUT_TRIES):
            objects = _layout(spec, bins, rng)
            if objects is None:
                continue
            anns = []
            for cat, bin_name, full, visible in objects:
                seg, rle = encode_mask(visible, spec.mask_format)
                if seg is None:
                    break
                area = float(mask_utils.area(rle))
                # COCOeval's area ranges are closed on both ends: an area of
                # exactly 32² or 96² would count in two bins.
                if area_bin(area) != bin_name or area in (32**2, 96**2):
                    break
                x, y, w, h = mask_utils.toBbox(rle).tolist()
                anns.append(dict(
                    category_id=cat + 1, segmentation=seg, area=area,
                    bbox=[x, y, w, h], iscrowd=0,
                    occluded_fraction=round(
                        1 - float(visible.sum()) / float(full.sum()), 4)))
            else:
                break
        else:
            raise RuntimeError(
                f'{split} image {i}: no layout satisfied bins {bins} in '
                f'{_MAX_LAYOUT_TRIES} tries; lower objects_per_image or the '
                f'share of large objects for image_size={spec.image_size}')
        image_id = i + 1
        file_name = f'{image_id:06d}.png'
        cv2.imwrite(osp.join(img_dir, file_name),
                    _render_image(spec, objects, rng))
        images.append(dict(id=image_id, file_name=file_name,
                           width=spec.image_size, height=spec.image_size))
        for ann in anns:
            ann.update(id=len(annotations) + 1, image_id=image_id)
            annotations.append(ann)

    categories = [dict(id=k + 1, name=name, supercategory='shape')
                  for k, name in enumerate(category_names(spec.num_classes))]
    return dict(
        info=dict(description='mmdet_plugins built-in synthetic shapes',
                  generator=spec.to_dict(), split=split),
        licenses=[], images=images, annotations=annotations,
        categories=categories)


def generate(spec: SyntheticCocoSpec, out_dir: str,
             verbose: bool = True) -> Dict[str, str]:
    """Generate (or reuse) the dataset in ``out_dir``.

    Idempotent: when ``out_dir/generator.json`` records the same spec, nothing
    is rewritten. A different spec regenerates the directory.

    Returns:
        Paths of the annotation files by split.
    """
    manifest = osp.join(out_dir, 'generator.json')
    ann_files = {s: osp.join(out_dir, 'annotations', f'instances_{s}.json')
                 for s in ('train', 'val')}
    if osp.isfile(manifest) and all(map(osp.isfile, ann_files.values())):
        with open(manifest) as f:
            if json.load(f) == spec.to_dict():
                if verbose:
                    print(f'built-in dataset {out_dir} is up to date')
                return ann_files
    if osp.isdir(out_dir):
        for name in ('train', 'val', 'annotations', 'generator.json'):
            path = osp.join(out_dir, name)
            if osp.isdir(path):
                shutil.rmtree(path)
            elif osp.isfile(path):
                os.remove(path)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    for split, n in (('train', spec.num_train), ('val', spec.num_val)):
        coco = generate_split(spec, out_dir, split, n)
        atomic_write(ann_files[split],
                     lambda f, coco=coco: json.dump(coco, f))
        if verbose:
            print(f'[{split}] {ann_files[split]}')
            print(format_statistics(statistics(coco)))
    # Written last: its presence means the whole dataset is complete.
    atomic_write_json(manifest, spec.to_dict())
    return ann_files


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=16)
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument('--num-classes', type=int, default=3)
    parser.add_argument('--min-objects', type=int, default=2)
    parser.add_argument('--max-objects', type=int, default=6)
    parser.add_argument('--small', type=float, default=0.4,
                        help='share of small objects (area < 32^2)')
    parser.add_argument('--medium', type=float, default=0.4,
                        help='share of medium objects (32^2 <= area < 96^2)')
    parser.add_argument('--large', type=float, default=0.2,
                        help='share of large objects (area >= 96^2)')
    parser.add_argument('--max-occlusion', type=float, default=0.3)
    parser.add_argument('--mask-format', choices=('polygon', 'rle'),
                        default='polygon')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    spec = SyntheticCocoSpec(
        num_train=args.num_train, num_val=args.num_val,
        image_size=args.image_size, num_classes=args.num_classes,
        objects_per_image=(args.min_objects, args.max_objects),
        size_mix=dict(small=args.small, medium=args.medium,
                      large=args.large),
        max_occlusion=args.max_occlusion, mask_format=args.mask_format,
        seed=args.seed)
    generate(spec, args.out)


if __name__ == '__main__':
    main()
