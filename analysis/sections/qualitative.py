"""Qualitative pairs: the images where two arms differ most, side by side.

Per-image mask AP comes from the cached per-image matching
(:mod:`analysis.coco_eval.image_eval`, one image's weight 1, the rest 0).
For each arm compared with the dataset's first arm (seed 0 of each, or their
lowest seed), the images with the largest AP differences either way are
drawn: ground truth, then each arm's masks with their scores. An arm's
panel shows its image's best-scoring detections whatever their score (at
least :data:`MIN_DRAWN`; more when more score :data:`SCORE_MIN` or higher),
so a model whose scores stay low is not drawn as an empty image.
"""
import os.path as osp
from typing import Dict, List, Tuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pycocotools import mask as mask_utils

from analysis.coco_eval import resampled
from analysis.coco_eval.detections import load_detections
from analysis.coco_eval.image_eval import ImageEval
from analysis.report import Section, save_figure
from analysis.sections.provenance import gt_json
from experiments.store import (RUN_CONFIG, detections_file,
                               evaluation_gt_file, project_path)

PAIRS_PER_COMPARISON = 4
MAX_IMAGES = 2000  # per-image AP on at most this many images
# Per image: every detection scoring SCORE_MIN or more, and never fewer than
# the MIN_DRAWN best whatever their score; at most MAX_DRAWN.
SCORE_MIN = 0.3
MIN_DRAWN = 5
MAX_DRAWN = 15
PANEL_INCHES = 4.6  # each image's panel, at 100 dpi: about 460 px wide
LABEL_SIZE = 9  # points: about 12 px at 100 dpi


def per_image_ap(ev: ImageEval, img_ids: List[int]) -> np.ndarray:
    """AP of each image alone (NaN for an image without ground truth)."""
    return resampled.per_image_ap(ev, img_ids)


def _image_dir(run_dir: str) -> str:
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(run_dir, RUN_CONFIG),
                          import_custom_modules=False)
    ds = cfg.test_dataloader.dataset
    prefix = ds.get('data_prefix', {}).get('img', '')
    return project_path(osp.join(ds.get('data_root', ''), prefix))


def _label_corners(corners: List[Tuple[float, float]], texts: List[str],
                   image_width: int) -> List[Tuple[float, float]]:
    """Top-left corners of the labels (image pixels), each moved down past
    the labels placed before it that it would cover; their sizes are
    estimated from the panel's scale."""
    per_px = image_width / (PANEL_INCHES * 100 * 0.95)
    line = LABEL_SIZE * 100 / 72 * 1.6 * per_px  # a label's height
    placed: List[Tuple[float, float, float]] = []  # x0, x1, y0
    out = []
    for (x, y), text in zip(corners, texts):
        width = (len(text) * 0.6 + 0.6) * LABEL_SIZE * 100 / 72 * per_px
        while any(x < x1 and x0 < x + width and abs(y - y0) < line
                  for x0, x1, y0 in placed):
            y += line
        placed.append((x, x + width, y))
        out.append((x, y))
    return out


def _draw(ax, image: np.ndarray, instances: List[Tuple[dict, str]],
          title: str) -> None:
    ax.imshow(image)
    overlay = np.zeros((*image.shape[:2], 4))
    corners, texts, colours = [], [], []
    for n, (seg, text) in enumerate(instances):
        m = mask_utils.decode(seg).astype(bool)
        colour = plt.cm.tab10(n % 10)
        overlay[m] = (*colour[:3], 0.45)
        ys, xs = np.nonzero(m)
        if text and xs.size:
            corners.append((xs.min(), ys.min()))
            texts.append(text)
            colours.append(colour)
    for (x, y), text, colour in zip(
            _label_corners(corners, texts, image.shape[1]), texts, colours):
        ax.text(x, y, text, fontsize=LABEL_SIZE, color='white', va='top',
                clip_on=True, bbox=dict(facecolor=colour, alpha=0.75,
                                        pad=1.0, linewidth=0))
    ax.imshow(overlay)
    ax.set_title(title, fontsize=10)
    ax.axis('off')


def _gt_instances(gt: dict, img: dict, names: dict) -> List[Tuple[dict, str]]:
    out = []
    for ann in gt['anns'].get(img['id'], []):
        seg = ann['segmentation']
        if isinstance(seg, list):
            rles = mask_utils.frPyObjects(seg, img['height'], img['width'])
            seg = mask_utils.merge(rles)
        elif isinstance(seg.get('counts'), list):
            seg = mask_utils.frPyObjects(seg, img['height'], img['width'])
        out.append((seg, names.get(ann['category_id'], '')))
    return out


def detections_to_draw(dets: List[dict]) -> List[dict]:
    """An image's detections to draw.

    Args:
        dets: One image's detections (COCO results, with ``score``).

    Returns:
        Best first: every one scoring :data:`SCORE_MIN` or more, at least
        the :data:`MIN_DRAWN` best whatever their score, at most
        :data:`MAX_DRAWN`.
    """
    ranked = sorted(dets, key=lambda d: -d['score'])
    above = sum(d['score'] >= SCORE_MIN for d in ranked)
    return ranked[:min(max(above, MIN_DRAWN), MAX_DRAWN)]


def _det_instances(dets: List[dict], names: dict) -> List[Tuple[dict, str]]:
    return [(d['segmentation'], f'{names.get(d["category_id"], "")} '
             f'{d["score"]:.2f}') for d in detections_to_draw(dets)]


def _det_title(run, ap: float, dets: List[dict]) -> str:
    top = max((d['score'] for d in dets), default=None)
    return (f'{run.model}/{run.arm} seed {int(run.seed)}: mask AP '
            f'{100 * ap:.1f}\n' + ('no detection' if top is None else
                                   f'{len(detections_to_draw(dets))} of '
                                   f'{len(dets)} detections drawn, top '
                                   f'score {top:.2f}'))


def _by_image(path: str) -> Dict[int, List[dict]]:
    by_image: Dict[int, List[dict]] = {}
    for d in load_detections(path):
        by_image.setdefault(d['image_id'], []).append(d)
    return by_image


def qualitative_section(df: pd.DataFrame, evals, out_dir: str) -> Section:
    """Figures of the images where each arm differs most from the first.

    Args:
        df: This grid's results.
        evals: The report's :class:`~analysis.coco_eval.run_eval.RunEvals`.
        out_dir: Where the figures go.
    """
    import cv2
    section = Section('Qualitative pairs: where two arms differ most', [])
    done = df[df.status == 'finished'].sort_values('seed')
    for dataset, runs in done.groupby('dataset', sort=False):
        firsts = [g.iloc[0] for _, g in runs.groupby(['model', 'arm'],
                                                     sort=False)]
        firsts = [r for r in firsts if evals.get(r, 'segm') is not None]
        if len(firsts) < 2:
            continue
        ref = firsts[0]
        ann = evaluation_gt_file(ref.work_dir)
        raw = gt_json(ann)
        names = {c['id']: c['name'] for c in raw['categories']}
        gt = dict(anns={})
        for a in raw['annotations']:
            gt['anns'].setdefault(a['image_id'], []).append(a)
        images = {im['id']: im for im in raw['images']}
        img_dir = _image_dir(ref.work_dir)
        ref_ev = evals.get(ref, 'segm')
        img_ids = ref_ev.img_ids[:MAX_IMAGES]
        ref_ap = per_image_ap(ref_ev, img_ids)
        ref_dets = _by_image(detections_file(ref.detections, 'segm'))
        for other in firsts[1:]:
            ap = per_image_ap(evals.get(other, 'segm'), img_ids)
            diff = ap - ref_ap
            order = [i for i in np.argsort(-np.abs(np.nan_to_num(diff)))
                     if diff[i] == diff[i]][:PAIRS_PER_COMPARISON]
            if not order:
                continue
            other_dets = _by_image(detections_file(other.detections,
                                                   'segm'))
            fig, axes = plt.subplots(
                len(order), 3, squeeze=False,
                figsize=(3 * PANEL_INCHES, 0.85 * PANEL_INCHES * len(order)))
            for row, i in zip(axes, order):
                img = images[img_ids[i]]
                path = osp.join(img_dir, img['file_name'])
                image = cv2.imread(path)
                if image is None:
                    raise FileNotFoundError(f'{path}: validation image '
                                            f'missing (named in {ann})')
                image = image[:, :, ::-1]
                _draw(row[0], image, _gt_instances(gt, img, names),
                      f'ground truth: {img["file_name"]}')
                for ax, run, dets, value in (
                        (row[1], ref, ref_dets, ref_ap[i]),
                        (row[2], other, other_dets, ap[i])):
                    dets = dets.get(img['id'], [])
                    _draw(ax, image, _det_instances(dets, names),
                          _det_title(run, value, dets))
            name = (f'pairs_{ref.model}_{ref.arm}_vs_{other.model}_'
                    f'{other.arm}_{dataset}.png').replace('/', '-')
            section.figures.append(save_figure(fig, osp.join(out_dir, name)))
            section.text.append(
                f'{other.model}/{other.arm} vs {ref.model}/{ref.arm} on '
                f'{dataset}: the {len(order)} of {len(img_ids)} validation '
                f'images with the largest per-image mask AP difference '
                f'(runs {ref.run_id} and {other.run_id}, weights '
                f'{ref.weights} / {other.weights}). Each arm\'s panel draws '
                f'its best-scoring masks whatever their score: every one '
                f'scoring {SCORE_MIN} or more and never fewer than the '
                f'{MIN_DRAWN} best (so a model whose scores stay low still '
                f'shows what it found), at most {MAX_DRAWN} per image; each '
                f'label gives the category and the score.')
    if not section.figures:
        section.text.append('Needs two finished arms with saved mask '
                            'detections on one dataset.')
    return section
