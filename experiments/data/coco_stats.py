"""Statistics of a COCO instance-segmentation annotation dict."""
from collections import Counter
from typing import Dict, Tuple

import numpy as np

from experiments.store import COCO_AREAS

# COCO's area bins (pycocotools COCOeval.Params.areaRng), in pixels of the
# annotated image.
AREA_BINS: Dict[str, Tuple[float, float]] = {
    name: COCO_AREAS[name] for name in ('small', 'medium', 'large')}


def area_bin(area: float) -> str:
    """The COCO area bin of an annotation area (lower bound inclusive; one
    bin per area, the last open-ended)."""
    if area < 0:
        raise ValueError(f'area {area} is negative')
    for name, (low, high) in AREA_BINS.items():
        if low <= area < high:
            return name
    return 'large'


def statistics(coco: dict) -> dict:
    """Counts per category and area bin, objects per image, occlusion.

    Args:
        coco: A loaded COCO annotation dict (``images``, ``annotations``,
            ``categories``). Crowd annotations are counted separately.

    Returns:
        A JSON-serialisable dict.
    """
    anns = [a for a in coco['annotations'] if not a.get('iscrowd', 0)]
    names = {c['id']: c['name'] for c in coco['categories']}
    per_image = Counter(a['image_id'] for a in anns)
    bins = Counter(area_bin(a['area']) for a in anns)
    occlusion = [a['occluded_fraction'] for a in anns
                 if 'occluded_fraction' in a]
    n = max(len(anns), 1)
    counts = [per_image.get(img['id'], 0) for img in coco['images']]
    return dict(
        images=len(coco['images']),
        instances=len(anns),
        crowd=len(coco['annotations']) - len(anns),
        categories={names[k]: v for k, v in sorted(
            Counter(a['category_id'] for a in anns).items())},
        area_bins={b: bins.get(b, 0) for b in AREA_BINS},
        area_bin_shares={b: bins.get(b, 0) / n for b in AREA_BINS},
        instances_per_image=dict(
            mean=float(np.mean(counts)) if counts else 0.0,
            min=int(min(counts, default=0)), max=int(max(counts, default=0))),
        occluded=dict(
            share_with_occlusion=float(np.mean(np.array(occlusion) > 0))
            if occlusion else None,
            mean_occluded_fraction=float(np.mean(occlusion))
            if occlusion else None),
    )


def format_statistics(stats: dict) -> str:
    """Human-readable lines for :func:`statistics`."""
    bins = ', '.join(f'{b} {stats["area_bins"][b]} '
                     f'({100 * stats["area_bin_shares"][b]:.1f}%)'
                     for b in AREA_BINS)
    cats = ', '.join(f'{k} {v}' for k, v in stats['categories'].items())
    ipi = stats['instances_per_image']
    lines = [
        f'  images {stats["images"]}, instances {stats["instances"]}'
        f' (+{stats["crowd"]} crowd), per image {ipi["mean"]:.2f}'
        f' [{ipi["min"]}, {ipi["max"]}]',
        f'  area bins: {bins}',
        f'  categories: {cats}',
    ]
    occ = stats['occluded']
    if occ['share_with_occlusion'] is not None:
        lines.append(
            f'  occlusion: {100 * occ["share_with_occlusion"]:.1f}% of '
            f'instances partly hidden, mean hidden fraction '
            f'{occ["mean_occluded_fraction"]:.3f}')
    return '\n'.join(lines)
