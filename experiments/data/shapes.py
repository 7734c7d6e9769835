"""Drawing one synthetic object: its outline, its mask in COCO form, and
the textures and colours of the built-in dataset's images."""
import math

import cv2
import numpy as np
from pycocotools import mask as mask_utils


def unit_polygon(shape: str, rng: np.random.Generator) -> np.ndarray:
    """Vertices (N, 2) of a shape centred at 0 with roughly unit extent."""
    if shape == 'ellipse':
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif shape == 'rectangle':
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    elif shape == 'triangle':
        t = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif shape == 'hexagon':
        t = np.arange(6) * 2 * np.pi / 6
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif shape == 'star':
        t = np.arange(10) * 2 * np.pi / 10
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    elif shape == 'cross':
        a = 0.35
        pts = np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a],
                        [a, 1], [-a, 1], [-a, a], [-1, a], [-1, -a],
                        [-a, -a]], float)
    else:
        raise KeyError(shape)
    aspect = math.exp(rng.uniform(math.log(0.6), math.log(1.6)))
    pts = pts * np.array([aspect**0.5, aspect**-0.5])
    theta = rng.uniform(0, 2 * np.pi)
    rot = np.array([[math.cos(theta), -math.sin(theta)],
                    [math.sin(theta), math.cos(theta)]])
    return pts @ rot.T


def polygon_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def draw_object(shape: str, area: float, size: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Binary mask of one shape of about ``area`` px, possibly truncated.

    The centre is uniform over the image shrunk by a quarter of the shape's
    extent, so shapes may be cut by the border (as COCO objects often are)
    but most of each shape stays inside.
    """
    pts = unit_polygon(shape, rng)
    pts = pts * math.sqrt(area / polygon_area(pts))
    half = (pts.max(0) - pts.min(0)) / 2
    margin = np.minimum(half / 2, size / 2 - 1)
    pts = pts - (pts.max(0) + pts.min(0)) / 2 + rng.uniform(margin,
                                                            size - margin)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1,
                 lineType=cv2.LINE_8, shift=4)
    return mask


def has_hole(mask: np.ndarray) -> bool:
    """Whether a binary mask encloses background (a hole)."""
    _, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP,
                                    cv2.CHAIN_APPROX_SIMPLE)
    return hierarchy is not None and bool(np.any(hierarchy[0, :, 3] >= 0))


def encode_mask(mask: np.ndarray, mask_format: str):
    """COCO segmentation of a binary mask and the mask pycocotools decodes."""
    h, w = mask.shape
    if mask_format == 'rle':
        rle = mask_utils.encode(np.asfortranarray(mask))
        return ({'size': rle['size'], 'counts': rle['counts'].decode()},
                rle)
    if has_hole(mask):
        return None, None
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polygons = [c.reshape(-1).astype(float).tolist() for c in contours
                if len(c) >= 3]
    if not polygons:
        return None, None
    rle = mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))
    return polygons, rle


def texture(size: int, rng: np.random.Generator, base: np.ndarray,
             amplitude: float) -> np.ndarray:
    """A smooth random field around ``base`` colour, (size, size, 3) float."""
    coarse = rng.normal(0, 1, (max(2, size // 16), max(2, size // 16), 3))
    smooth = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0, 0.35, (size, size, 3))
    return base[None, None] + amplitude * (smooth + fine)


def class_colour(k: int, num_classes: int) -> np.ndarray:
    hsv = np.uint8([[[int(180 * k / max(num_classes, 1)) % 180, 200, 220]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(float)
