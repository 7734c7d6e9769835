"""RoI-to-level assignment of CenterMask (Eq. 2) or Mask R-CNN (Eq. 1)."""
import math
from typing import Optional, Sequence, Tuple

import torch
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from torch import Tensor

MAPPINGS = ('eq1', 'eq2')


@MODELS.register_module()
class AdaptiveRoIExtractor(SingleRoIExtractor):
    """RoIAlign over FPN levels chosen by CenterMask's or Mask R-CNN's rule.

    Levels are absolute FPN levels ``k = log2(stride)``: ``k_min`` and
    ``k_max`` follow ``featmap_strides`` (strides 8/16/32 -> P3-P5, so the
    k_max sweep of CenterMask's Table 2 is a change of strides).

    - ``'eq1'`` (FPN / Mask R-CNN): ``k = floor(k0 + log2(sqrt(w h) /
      224))`` with ``k0 = 4``, clamped to ``[k_min, k_max]`` -- what mmdet's
      ``SingleRoIExtractor`` computes over P2-P5 with ``finest_scale=56``.
    - ``'eq2'`` (CenterMask, adaptive; default as in the official code):
      ``k = ceil(k_max - log2(A_input / A_RoI))``, clamped, where
      ``A_input`` is the area of the RoI's image as resized but not padded
      (``img_shape``) and ``A_RoI = w h``. Large RoIs relative to the image
      go to coarse levels whatever the input resolution.

    The level index returned is ``k - k_min``.

    Args:
        mapping: ``'eq1'`` or ``'eq2'``.
        canonical_scale: Eq. 1's 224.
        canonical_level: Eq. 1's k0 = 4.
        **kwargs: As ``SingleRoIExtractor`` (``roi_layer``,
            ``out_channels``, ``featmap_strides``).
    """

    def __init__(self, mapping: str = 'eq2', canonical_scale: float = 224.,
                 canonical_level: int = 4, **kwargs) -> None:
        if mapping not in MAPPINGS:
            raise ValueError(f'mapping must be one of {MAPPINGS}, got '
                             f'{mapping!r}')
        super().__init__(**kwargs)
        levels = [math.log2(s) for s in self.featmap_strides]
        if any(abs(k - round(k)) > 1e-6 for k in levels) or any(
                b - a != 1 for a, b in zip(levels, levels[1:])):
            raise ValueError(f'featmap_strides must be consecutive powers of '
                             f'two, got {self.featmap_strides}')
        self.mapping = mapping
        self.k_min, self.k_max = int(round(levels[0])), int(round(levels[-1]))
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level

    def map_roi_levels(self, rois: Tensor, num_levels: int,
                       img_shapes: Optional[Sequence[Tuple[int, int]]] = None
                       ) -> Tensor:
        """Level index (0 = the finest level used) of each RoI.

        Args:
            rois: (n, 5) ``[batch index, x1, y1, x2, y2]``.
            num_levels: Number of feature levels given (must equal the
                number of strides).
            img_shapes: ``(h, w)`` of each image, resized and unpadded;
                required by ``'eq2'``.
        """
        if num_levels != len(self.featmap_strides):
            raise ValueError(f'{num_levels} feature levels for strides '
                             f'{self.featmap_strides}')
        image_area = None
        if self.mapping == 'eq2':
            if img_shapes is None:
                raise ValueError("mapping='eq2' needs img_shapes")
            areas = rois.new_tensor([float(s[0]) * float(s[1])
                                     for s in img_shapes])
            image_area = areas[rois[:, 0].long()]
        return self.map_roi_levels_by_area(rois, image_area)

    def map_roi_levels_by_area(self, rois: Tensor,
                               image_area: Optional[Tensor]) -> Tensor:
        """:meth:`map_roi_levels` with each RoI's image area as a tensor.

        Args:
            rois: (n, 5) ``[batch index, x1, y1, x2, y2]``.
            image_area: (n,) or scalar area of each RoI's resized, unpadded
                image (``'eq2'`` only; the ONNX export passes it as a graph
                input).
        """
        w = (rois[:, 3] - rois[:, 1]).clamp(min=0)
        h = (rois[:, 4] - rois[:, 2]).clamp(min=0)
        eps = 1e-6
        if self.mapping == 'eq1':
            k = torch.floor(self.canonical_level + torch.log2(
                torch.sqrt(w * h) / self.canonical_scale + eps))
        else:
            k = torch.ceil(self.k_max - torch.log2(image_area / (w * h) + eps))
        return (k.clamp(self.k_min, self.k_max) - self.k_min).long()

    def forward(self, feats: Tuple[Tensor], rois: Tensor,
                roi_scale_factor: Optional[float] = None,
                img_shapes: Optional[Sequence[Tuple[int, int]]] = None
                ) -> Tensor:
        """RoI features; as ``SingleRoIExtractor`` plus ``img_shapes``."""
        rois = rois.type_as(feats[0])
        roi_feats = feats[0].new_zeros(rois.size(0), self.out_channels,
                                       *self.roi_layers[0].output_size)
        target_lvls = self.map_roi_levels(rois, len(feats), img_shapes)
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        for i, feat in enumerate(feats):
            inds = (target_lvls == i).nonzero(as_tuple=False).squeeze(1)
            if inds.numel() > 0:
                roi_feats[inds] = self.roi_layers[i](feat, rois[inds])
            else:
                # Keeps every level in the graph (DDP needs all parameters
                # and inputs to receive gradients).
                roi_feats = roi_feats + feat.sum() * 0.
        return roi_feats
