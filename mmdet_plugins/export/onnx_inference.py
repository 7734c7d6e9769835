"""Run an exported CenterMask / RetinaMask / Mask R-CNN with onnxruntime.

This file needs numpy, OpenCV and onnxruntime only: ``tools/export_onnx.py``
copies it beside every export, so the exported model runs without this
project or MMDetection::

    python onnx_inference.py model.onnx image.jpg --score-thr 0.3

or from Python::

    from onnx_inference import OnnxDetector
    detector = OnnxDetector('model.onnx')       # reads model.json beside it
    result = detector(cv2.imread('image.jpg'))  # BGR, as cv2 reads it
    result['boxes'], result['scores'], result['labels'], result['masks'],
    result['mask_scores']

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
import argparse
import json
import os.path as osp
from typing import Dict, Tuple

import numpy as np

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
                ori_shape: Tuple[int, int], mask_thr_binary: float = 0.5
                ) -> Dict[str, np.ndarray]:
    """Detections in original-image pixels with full-size binary masks.

    Args:
        outputs: The graph's outputs by name (:data:`OUTPUTS`).
        scale_factor: ``(w_scale, h_scale)`` from :func:`resize`.
        ori_shape: ``(h, w)`` of the original image.
        mask_thr_binary: Mask probability threshold (``>=``).
    """
    h, w = ori_shape
    boxes = outputs['boxes'] / np.tile(scale_factor.astype(np.float32), 2)
    masks = np.zeros((len(boxes), h, w), dtype=bool)
    for i, (prob, box) in enumerate(zip(outputs['mask_probs'], boxes)):
        pasted, region = paste_mask(prob, box, h, w)
        masks[(i, ) + region] = pasted >= mask_thr_binary
    return dict(boxes=boxes, scores=outputs['scores'],
                labels=outputs['labels'], masks=masks,
                mask_scores=outputs['mask_scores'])


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
                     ori_shape: Tuple[int, int]) -> Dict[str, np.ndarray]:
        """Detections of an image already resized by the test pipeline."""
        image, img_shape = normalize_and_pad(resized, self.meta)
        return postprocess(self.run_network(image, img_shape), scale_factor,
                           ori_shape, self.meta['mask_thr_binary'])

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        """Detections of a BGR image (as ``cv2.imread`` reads it)."""
        resized, scale_factor = resize(image, self.meta)
        return self.from_resized(resized, scale_factor, image.shape[:2])


def main() -> None:
    import cv2
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('model', help='the exported .onnx')
    parser.add_argument('image')
    parser.add_argument('--score-thr', type=float, default=0.3)
    args = parser.parse_args()
    image = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f'{args.image}: not an image OpenCV can read')
    detector = OnnxDetector(args.model)
    result = detector(image)
    classes = detector.meta['classes']
    for i in np.flatnonzero(result['scores'] >= args.score_thr):
        x0, y0, x1, y1 = result['boxes'][i]
        print(f'{classes[result["labels"][i]]:>16s} '
              f'score {result["scores"][i]:.3f} '
              f'mask score {result["mask_scores"][i]:.3f} '
              f'box {x0:.1f} {y0:.1f} {x1:.1f} {y1:.1f} '
              f'mask {int(result["masks"][i].sum())} px')


if __name__ == '__main__':
    main()
