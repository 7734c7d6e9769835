"""Run an exported CenterMask / RetinaMask / Mask R-CNN with onnxruntime.

This file needs three packages, numpy, OpenCV and onnxruntime (``pip install
numpy opencv-python-headless onnxruntime``), and nothing else:
``tools/export_onnx.py`` copies it beside every export, so the exported
model runs without this project or MMDetection::

    python onnx_inference.py model.onnx image.jpg --out drawn.jpg
    python onnx_inference.py model.onnx images/ --out drawn/ --score-thr 0.5

prints each detection (class, score, mask score, box, mask pixels) and,
with ``--out``, draws them like MMDetection's ``demo/image_demo.py``: each
mask filled and outlined, each box, its class name and score. The input is
one image or a folder of images; ``--out`` is then a file (an image name)
or a folder, where each drawn image keeps its input's name. Without one of
the three packages it says so in one line and exits 1.

or from Python::

    from onnx_inference import OnnxDetector, draw_detections
    detector = OnnxDetector('model.onnx')       # reads model.json beside it
    image = cv2.imread('image.jpg')             # BGR, as cv2 reads it
    result = detector(image)
    result['boxes'], result['scores'], result['labels'], result['masks'],
    result['mask_scores']
    cv2.imwrite('drawn.jpg', draw_detections(image, result,
                                             detector.meta['classes']))

The graph (``model.onnx``) takes the normalised, padded image and the
resized image's ``[h, w]``, and returns the model's final detections with
their class's 28 x 28 mask probabilities (decoding, NMS, RoIAlign, the mask
head and mask scoring are inside it). What runs outside, here, is what
MMDetection's test pipeline and mask head do outside the network:

- :func:`resize`: the test ``Resize`` (``mmcv.imrescale`` with
  ``keep_ratio``, else ``mmcv.imresize``; bilinear);
- :func:`normalize_and_pad`: ``DetDataPreprocessor`` (BGR -> RGB if the
  model wants it, ``(x - mean) / std``, zero padding to the size divisor);
- :func:`postprocess`: boxes divided by the scale factor and masks pasted
  into the original image like mmdet's ``_do_paste_mask`` on the CPU
  (bilinear ``grid_sample``, align_corners=False, zero outside the mask,
  evaluated on the box's pixels plus one pixel around it), then binarised
  at ``mask_thr_binary``.
"""
from __future__ import annotations

import argparse
import colorsys
import importlib
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

try:
    import numpy as np
except ImportError:  # main() names the three packages in one line
    np = None

# (module, what to install) of everything this file imports outside the
# standard library.
REQUIREMENTS = (('numpy', 'numpy'), ('cv2', 'opencv-python-headless'),
                ('onnxruntime', 'onnxruntime'))
NEEDS = ('onnx_inference.py needs numpy, OpenCV and onnxruntime (pip '
         'install ' + ' '.join(p for _, p in REQUIREMENTS) + ')')
IMAGE_EXTENSIONS = ('.bmp', '.jpeg', '.jpg', '.png', '.tif', '.tiff',
                    '.webp')

OUTPUTS = ('boxes', 'scores', 'labels', 'mask_probs', 'mask_scores')


def load_meta(onnx_path: str) -> dict:
    """The preprocessing and class names written beside the export."""
    path = osp.splitext(onnx_path)[0] + '.json'
    with open(path) as f:
        return json.load(f)


def resize(image: np.ndarray, meta: dict) -> Tuple[np.ndarray, np.ndarray]:
    """The test pipeline's resize; returns the image and ``(w_scale,
    h_scale)``."""
    import cv2
    h, w = image.shape[:2]
    scale = meta['resize']['scale']  # (w, h) as mmdet writes it
    if meta['resize']['keep_ratio']:
        factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
        size = (int(w * float(factor) + 0.5), int(h * float(factor) + 0.5))
    else:
        size = (int(scale[0]), int(scale[1]))
    out = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return out, np.array([size[0] / w, size[1] / h], dtype=np.float32)


def normalize_and_pad(resized: np.ndarray, meta: dict
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """(1, 3, H, W) float32 network input and the (2,) int64 ``[h, w]``.

    Args:
        resized: (h, w, 3) BGR image after :func:`resize`.
    """
    pre = meta['preprocess']
    x = resized.astype(np.float32)
    if pre['bgr_to_rgb']:
        x = x[..., ::-1]
    x = (x - np.float32(pre['mean'])) / np.float32(pre['std'])
    h, w = x.shape[:2]
    div = int(pre['pad_size_divisor'])
    ph, pw = -(-h // div) * div, -(-w // div) * div
    out = np.full((1, 3, ph, pw), pre['pad_value'], dtype=np.float32)
    out[0, :, :h, :w] = x.transpose(2, 0, 1)
    return out, np.array([h, w], dtype=np.int64)


def _interp_weights(coords: np.ndarray, size: int) -> np.ndarray:
    """(len(coords), size) bilinear weights of ``grid_sample``
    (align_corners=False, zero padding) at normalised ``coords``."""
    pos = ((coords + np.float32(1)) * np.float32(size) - np.float32(1)) \
        / np.float32(2)
    lo = np.floor(pos)
    frac = pos - lo
    weights = np.zeros((len(coords), size), dtype=np.float32)
    rows = np.arange(len(coords))
    for corner, wgt in ((lo, np.float32(1) - frac), (lo + 1, frac)):
        inside = (corner >= 0) & (corner <= size - 1)
        weights[rows[inside], corner[inside].astype(np.int64)] += \
            wgt[inside]
    return weights


def paste_mask(prob: np.ndarray, box: np.ndarray, img_h: int, img_w: int
               ) -> Tuple[np.ndarray, Tuple[slice, slice]]:
    """One box's mask probabilities on the image pixels around the box.

    Returns:
        The (h, w) float32 probabilities and the ``(rows, cols)`` slices of
        the image they cover.
    """
    x0, y0, x1, y1 = (np.float32(v) for v in box)
    c0 = max(int(np.floor(x0)) - 1, 0)
    r0 = max(int(np.floor(y0)) - 1, 0)
    c1 = min(int(np.ceil(x1)) + 1, img_w)
    r1 = min(int(np.ceil(y1)) + 1, img_h)
    with np.errstate(divide='ignore', invalid='ignore'):
        gx = (np.arange(c0, c1, dtype=np.float32) + np.float32(0.5) - x0) \
            / (x1 - x0) * np.float32(2) - np.float32(1)
        gy = (np.arange(r0, r1, dtype=np.float32) + np.float32(0.5) - y0) \
            / (y1 - y0) * np.float32(2) - np.float32(1)
    gx[np.isinf(gx)] = 0
    gy[np.isinf(gy)] = 0
    wy = _interp_weights(gy, prob.shape[0])
    wx = _interp_weights(gx, prob.shape[1])
    return wy @ prob.astype(np.float32) @ wx.T, (slice(r0, r1),
                                                  slice(c0, c1))


def postprocess(outputs: Dict[str, np.ndarray], scale_factor: np.ndarray,
                ori_shape: Tuple[int, int], mask_thr_binary: float = 0.5,
                return_probs: bool = False) -> Dict[str, np.ndarray]:
    """Detections in original-image pixels with full-size binary masks.

    Args:
        outputs: The graph's outputs by name (:data:`OUTPUTS`).
        scale_factor: ``(w_scale, h_scale)`` from :func:`resize`.
        ori_shape: ``(h, w)`` of the original image.
        mask_thr_binary: Mask probability threshold (``>=``).
        return_probs: Also return ``mask_probs``, ``mask_thr_binary`` and
            ``pasted_probs`` (:func:`paste_mask`'s, per detection).
    """
    h, w = ori_shape
    boxes = outputs['boxes'] / np.tile(scale_factor.astype(np.float32), 2)
    masks = np.zeros((len(boxes), h, w), dtype=bool)
    pasted_probs = [paste_mask(p, b, h, w)
                    for p, b in zip(outputs['mask_probs'], boxes)]
    for i, (pasted, region) in enumerate(pasted_probs):
        masks[(i, ) + region] = pasted >= mask_thr_binary
    out = dict(boxes=boxes, scores=outputs['scores'], masks=masks,
               labels=outputs['labels'], mask_scores=outputs['mask_scores'])
    return dict(out, mask_probs=outputs['mask_probs'],
                pasted_probs=pasted_probs,
                mask_thr_binary=mask_thr_binary) if return_probs else out


class OnnxDetector:
    """An exported model in an onnxruntime session, image in, masks out."""

    def __init__(self, onnx_path: str, providers=None,
                 threads: int = 0) -> None:
        import onnxruntime as ort
        self.meta = load_meta(onnx_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default
        self.session = ort.InferenceSession(
            onnx_path, options,
            providers=providers or ['CPUExecutionProvider'])

    def run_network(self, image: np.ndarray, img_shape: np.ndarray
                    ) -> Dict[str, np.ndarray]:
        """The graph on a network input (:func:`normalize_and_pad`)."""
        values = self.session.run(list(OUTPUTS),
                                  {'image': image, 'img_shape': img_shape})
        return dict(zip(OUTPUTS, values))

    def from_resized(self, resized: np.ndarray, scale_factor: np.ndarray,
                     ori_shape: Tuple[int, int], return_probs: bool = False
                     ) -> Dict[str, np.ndarray]:
        """Detections of an image resized by the test pipeline."""
        image, img_shape = normalize_and_pad(resized, self.meta)
        return postprocess(self.run_network(image, img_shape), scale_factor,
                           ori_shape, self.meta['mask_thr_binary'],
                           return_probs=return_probs)

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        """Detections of a BGR image (as ``cv2.imread`` reads it)."""
        resized, scale_factor = resize(image, self.meta)
        return self.from_resized(resized, scale_factor, image.shape[:2])


def missing_packages() -> List[str]:
    """``module (error)`` of each of :data:`REQUIREMENTS` that does not
    import here."""
    missing = []
    for module, _ in REQUIREMENTS:
        try:
            importlib.import_module(module)
        except ImportError as e:
            missing.append(f'{module} ({" ".join(str(e).split())})')
            if module == 'numpy':
                # OpenCV and onnxruntime import it (onnxruntime printing a
                # traceback when it fails): no use trying them.
                break
    return missing


def class_color(label: int) -> Tuple[int, int, int]:
    """A BGR colour per class, far from its neighbours' (golden-ratio hues).
    """
    hue = (int(label) * 0.618033988749895 + 0.1) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def class_name(classes: Optional[List[str]], label: int) -> str:
    """The label's class name, or its number when the export has none."""
    label = int(label)
    return classes[label] if classes and label < len(classes) \
        else str(label)


def draw_detections(image: np.ndarray, result: Dict[str, np.ndarray],
                    classes: Optional[List[str]], score_thr: float = 0.3,
                    alpha: float = 0.5) -> np.ndarray:
    """``image`` with the detections at ``score >= score_thr`` drawn.

    Like MMDetection's ``DetLocalVisualizer``: each mask blended in its
    class's colour and outlined, then each box with ``class score`` above
    it (inside the box when there is no room above), highest score on top.

    Args:
        image: The (h, w, 3) uint8 BGR image the detections are of.
        result: What :class:`OnnxDetector` returns for it.
        classes: The class names (``meta['classes']``), or None.
        score_thr: Detections below it are not drawn.
        alpha: The masks' opacity.

    Returns:
        A new (h, w, 3) uint8 BGR image; ``image`` is left as it was.
    """
    import cv2
    out = image.copy()
    keep = np.flatnonzero(result['scores'] >= score_thr)
    order = keep[np.argsort(result['scores'][keep], kind='stable')]
    h, w = image.shape[:2]
    thickness = max(1, round(min(h, w) / 300))
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, min(h, w) / 900)
    for i in order:
        color = class_color(result['labels'][i])
        mask = result['masks'][i]
        out[mask] = (out[mask] * (1 - alpha) + np.array(color) * alpha
                     ).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8),
                                       cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, color, thickness)
    for i in order:
        color = class_color(result['labels'][i])
        x0, y0, x1, y1 = (int(round(float(v))) for v in result['boxes'][i])
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thickness)
        text = (f'{class_name(classes, result["labels"][i])} '
                f'{float(result["scores"][i]):.2f}')
        (tw, th), base = cv2.getTextSize(text, font, font_scale, 1)
        top = y0 - th - base - 2 if y0 - th - base - 2 >= 0 else max(y0, 0)
        x0 = min(max(x0, 0), max(w - tw - 2, 0))
        cv2.rectangle(out, (x0, top), (x0 + tw + 2, top + th + base + 2),
                      color, -1)
        b, g, r = color
        ink = (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 \
            else (255, 255, 255)
        cv2.putText(out, text, (x0 + 1, top + th + 1), font, font_scale,
                    ink, 1, cv2.LINE_AA)
    return out


def image_paths(source: str) -> List[str]:
    """``source`` itself, or the images of folder ``source`` by name."""
    if not osp.isdir(source):
        return [source]
    return [osp.join(source, name) for name in sorted(os.listdir(source))
            if name.lower().endswith(IMAGE_EXTENSIONS)
            and osp.isfile(osp.join(source, name))]


def out_path(source: str, image: str, out: Optional[str]) -> Optional[str]:
    """Where the drawn ``image`` goes: ``out`` itself when it names an image
    file (one input image), else ``out/<image's name>``."""
    if out is None:
        return None
    if not osp.isdir(source) and out.lower().endswith(IMAGE_EXTENSIONS):
        return out
    return osp.join(out, osp.basename(image))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line (see the module's docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0] + ' Needs three packages: '
        'numpy, OpenCV (opencv-python-headless) and onnxruntime.')
    parser.add_argument('model', help='the exported .onnx (model.json '
                        'beside it)')
    parser.add_argument('source', help='an image, or a folder of images '
                        f'({", ".join(IMAGE_EXTENSIONS)})')
    parser.add_argument('--out', help='draw the detections: an image file '
                        '(one input image) or a folder (drawn images keep '
                        'their names); default: print only')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detections below it are neither printed nor '
                        'drawn (default 0.3)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Print, and with ``--out`` draw, the detections of each image.

    Returns:
        0, or 1 when no input image could be read; bad input (a missing
        package, model or image) ends with one ``error:`` line, status 1.
    """
    args = parse_args(argv)
    missing = missing_packages()
    if missing:
        raise SystemExit(f'error: {NEEDS}; cannot import '
                         f'{", ".join(missing)}')
    import cv2
    for path, what in ((args.model, 'model'), (args.source, 'image')):
        if not osp.exists(path):
            raise SystemExit(f'error: {path}: no such {what}')
    if not osp.isfile(osp.splitext(args.model)[0] + '.json'):
        raise SystemExit(f'error: {osp.splitext(args.model)[0]}.json: no '
                         f'such file (the export writes it beside the .onnx)')
    paths = image_paths(args.source)
    if not paths:
        raise SystemExit(f'error: {args.source}: no image in the folder '
                         f'({", ".join(IMAGE_EXTENSIONS)})')
    detector = OnnxDetector(args.model)
    classes = detector.meta.get('classes')
    unread = 0
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            print(f'{path}: not an image OpenCV can read; skipped',
                  file=sys.stderr)
            unread += 1
            continue
        result = detector(image)
        shown = np.flatnonzero(result['scores'] >= args.score_thr)
        print(f'{path}: {len(shown)} detection(s) with score >= '
              f'{args.score_thr:g}')
        for i in shown:
            x0, y0, x1, y1 = result['boxes'][i]
            print(f'{class_name(classes, result["labels"][i]):>16s} '
                  f'score {result["scores"][i]:.3f} '
                  f'mask score {result["mask_scores"][i]:.3f} '
                  f'box {x0:.1f} {y0:.1f} {x1:.1f} {y1:.1f} '
                  f'mask {int(result["masks"][i].sum())} px')
        target = out_path(args.source, path, args.out)
        if target is None:
            continue
        if osp.exists(target) and osp.samefile(target, path):
            raise SystemExit(f'error: {target}: --out would overwrite the '
                             f'input image')
        os.makedirs(osp.dirname(target) or '.', exist_ok=True)
        if not cv2.imwrite(target, draw_detections(
                image, result, classes, args.score_thr)):
            raise SystemExit(f'error: {target}: OpenCV cannot write it')
        print(f'  drawn: {target}')
    return 1 if unread == len(paths) else 0


if __name__ == '__main__':
    sys.exit(main())
