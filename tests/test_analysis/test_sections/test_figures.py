"""The report's figures as a reader sees them (issue 39, item 7): the
published speed-vs-accuracy points, the training curves' axes and legend,
and the qualitative panels of a model whose scores stay low."""
import contextlib
import io
import json
import itertools

import cv2
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from analysis.coco_eval.image_eval import evaluate_images
from analysis.sections import cost, qualitative, training_curves


def _kept_figures(monkeypatch, module):
    """The figures ``module`` saves, kept for inspection after saving."""
    figures = []
    save = module.save_figure

    def keep(fig, path, **kwargs):
        figures.append(fig)
        return save(fig, path, **kwargs)

    monkeypatch.setattr(module, 'save_figure', keep)
    return figures


def _drawn(fig):
    """Draw a saved (closed) figure again; its renderer."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _overlap(a, b) -> bool:
    return (min(a.x1, b.x1) > max(a.x0, b.x0)
            and min(a.y1, b.y1) > max(a.y0, b.y0))


def test_published_points_box_and_mask_apart_labels_apart(tmp_path,
                                                         monkeypatch):
    figures = _kept_figures(monkeypatch, cost)
    cost.speed_accuracy_section([], str(tmp_path))
    [fig] = figures
    renderer = _drawn(fig)
    panels = [ax for ax in fig.axes if ax.lines]
    # One metric per axis: box AP and mask AP each get their own panel.
    metrics = [{m for m in ('box', 'mask') if m in ax.get_ylabel()}
               for ax in panels]
    assert sorted(map(sorted, metrics)) == [['box'], ['mask']]
    for ax in panels:
        boxes = [t.get_window_extent(renderer) for t in ax.texts
                 if t.get_text().strip().isdigit()]
        assert len(boxes) >= 12
        for a, b in itertools.combinations(boxes, 2):
            assert not _overlap(a, b), 'two point labels overlap'


def _scalars(run_dir, rng):
    vis = run_dir / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    with open(vis / 'scalars.json', 'w') as f:
        for step in range(10, 210, 10):
            loss = 3.5 * np.exp(-step / 120) + 0.8 + 0.05 * rng.random()
            f.write(json.dumps(dict(step=step, loss=loss, loss_cls=loss / 3,
                                    loss_bbox=loss / 4, loss_mask=loss / 2,
                                    lr=0.02)) + '\n')
            if step % 50 == 0:
                f.write(json.dumps({'step': step,
                                    'coco/bbox_mAP': step / 1000}) + '\n')


def _training_figure(tmp_path, monkeypatch):
    """The training-curves figure of three runs (two arms), drawn."""
    rng = np.random.default_rng(0)
    rows = []
    for n, (arm, seed) in enumerate([('a', 0), ('a', 1), ('b', 0)]):
        _scalars(tmp_path / f'run{n}', rng)
        rows.append(dict(model='m', arm=arm, seed=seed, status='finished',
                         work_dir=str(tmp_path / f'run{n}'), dataset='d',
                         val_images=4))
    figures = _kept_figures(monkeypatch, training_curves)
    training_curves.training_curves_section(pd.DataFrame(rows),
                                            str(tmp_path))
    [fig] = figures
    renderer = _drawn(fig)
    shown = [ax for ax in fig.axes if ax.axison]
    assert len(shown) == 6  # loss, 3 loss terms, lr, bbox mAP: no spare
    return fig, renderer, shown


def test_training_curves_log_ticks_are_plain_numbers(tmp_path, monkeypatch):
    _, _, shown = _training_figure(tmp_path, monkeypatch)
    logs = [ax for ax in shown if ax.get_yscale() == 'log']
    assert len(logs) == 4
    for ax in logs:
        labels = [t.get_text() for t in ax.yaxis.get_ticklabels(minor=True)
                  + ax.yaxis.get_ticklabels() if t.get_text()]
        assert labels, ax.get_title()
        for text in labels:
            float(text)  # "3", "0.9": not "$3\\times10^{0}$"


def test_training_curves_legend_covers_no_panel(tmp_path, monkeypatch):
    fig, renderer, shown = _training_figure(tmp_path, monkeypatch)
    [legend] = fig.legends
    box = legend.get_window_extent(renderer)
    for ax in shown:
        assert not _overlap(box, ax.get_tightbbox(renderer)), \
            f'the legend covers panel {ax.get_title()}'
    assert box.y1 <= fig.bbox.y1 + 1  # inside the figure


def _square(x, y, s):
    return [[x, y, x + s, y, x + s, y + s, x, y + s]]


def _qualitative_runs(tmp_path):
    """Two arms on two 160x120 images: ``good`` scores its masks 0.8-0.9,
    ``shy`` finds the same masks but scores every one under 0.3."""
    (tmp_path / 'img').mkdir()
    images, anns = [], []
    for i in (1, 2):
        cv2.imwrite(str(tmp_path / 'img' / f'{i}.png'),
                    np.full((120, 160, 3), 60 * i, np.uint8))
        images.append(dict(id=i, file_name=f'{i}.png', width=160,
                           height=120))
        for k, (x, y, s) in enumerate([(10, 10, 40), (70, 50, 30 + 5 * i)]):
            anns.append(dict(id=len(anns) + 1, image_id=i,
                             category_id=k + 1, bbox=[x, y, s, s],
                             area=float(s * s), iscrowd=0,
                             segmentation=_square(x, y, s)))
    gt = dict(images=images, annotations=anns,
              categories=[dict(id=1, name='cat'), dict(id=2, name='dog')])
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    coco = COCO()
    coco.dataset = json.loads(json.dumps(gt))
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    rows, evals = [], {}
    for arm, scores, shift in (('good', (0.9, 0.8), 0), ('shy', (0.2, 0.1),
                                                         6)):
        run = tmp_path / arm
        (run / 'det').mkdir(parents=True)
        dets = []
        for a in anns:
            x, y, s, _ = a['bbox']
            rle = mask_utils.merge(mask_utils.frPyObjects(
                _square(x + shift * (a['image_id'] - 1), y, s), 120, 160))
            rle['counts'] = rle['counts'].decode()
            dets.append(dict(image_id=a['image_id'],
                             category_id=a['category_id'], bbox=a['bbox'],
                             score=scores[a['category_id'] - 1],
                             segmentation=rle))
        (run / 'det' / 'val.segm.json').write_text(json.dumps(dets))
        (run / 'run.json').write_text(json.dumps(
            dict(val_ann=str(tmp_path / 'gt.json'))))
        (run / 'config.py').write_text(
            f"test_dataloader = dict(dataset=dict(data_root='{tmp_path}', "
            f"data_prefix=dict(img='img/')))\n")
        evals[arm] = evaluate_images(coco, dets, 'segm')
        rows.append(dict(model='m', arm=arm, seed=0, status='finished',
                         dataset='d', work_dir=str(run),
                         detections=str(run / 'det'), run_id=arm,
                         weights='from scratch'))
    return pd.DataFrame(rows), evals


class _Evals:
    def __init__(self, by_arm):
        self.by_arm = by_arm

    def get(self, run, iou_type):
        return self.by_arm[run.arm]


def test_qualitative_panel_draws_detections_under_the_threshold(
        tmp_path, monkeypatch):
    df, evals = _qualitative_runs(tmp_path)
    figures = _kept_figures(monkeypatch, qualitative)
    section = qualitative.qualitative_section(df, _Evals(evals),
                                              str(tmp_path))
    [fig] = figures
    renderer = _drawn(fig)
    shy = [ax for ax in fig.axes if ax.get_title().startswith('m/shy')]
    assert shy
    for ax in shy:
        labels = {t.get_text() for t in ax.texts}
        assert {'cat 0.20', 'dog 0.10'} <= labels, labels
        # Panels a reader can see: about 400 px wide, labels >= 9 pt.
        assert ax.get_window_extent(renderer).width >= 400
        assert min(t.get_fontsize() for t in ax.texts) >= 9
    text = ' '.join(section.text)
    assert 'whatever their score' in text and '0.3' in text
