"""FCOS head as CenterMask's official code scores and decodes its boxes."""
from typing import List, Optional

import torch
from mmdet.models.dense_heads import FCOSHead
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

SCORE_MODES = ('sqrt', 'product')


@MODELS.register_module()
class CenterMaskFCOSHead(FCOSHead):
    """mmdet's ``FCOSHead`` with a selectable detection score.

    - ``'sqrt'`` (default; the official centermask2 code):
      ``score = sqrt(cls x centerness)``.
    - ``'product'`` (mmdet's FCOS and the FCOS paper):
      ``score = cls x centerness``.

    The square root does not change the ranking within an image, only the
    scale of the scores against thresholds and across images, so COCO AP
    can differ slightly.

    Decoding in training mode: with ``norm_on_bbox`` mmdet's
    ``FCOSHead.forward_single`` returns the regression in stride units
    while training and multiplies it by the stride only in eval mode, but
    ``predict_by_feat`` always decodes as pixels. CenterMask decodes the
    current batch's detections during training to feed its mask branch
    (centermask2 rescales by the stride first, ``fcos_outputs.py``), so
    ``predict_by_feat`` here rescales training-mode outputs: the loss path
    and eval decoding give the same boxes for the same weights and input.

    Everything else is ``FCOSHead``; CenterMask's
    settings (GN towers, centerness on the regression branch, GIoU, center
    sampling radius 1.5, normalised regression) are set in the config.

    Args:
        score_mode: ``'sqrt'`` or ``'product'``.
        **kwargs: As ``FCOSHead``.
    """

    def __init__(self, *args, score_mode: str = 'sqrt', **kwargs) -> None:
        if score_mode not in SCORE_MODES:
            raise ValueError(f'score_mode must be one of {SCORE_MODES}, got '
                             f'{score_mode!r}')
        super().__init__(*args, **kwargs)
        self.score_mode = score_mode

    def predict_by_feat(self, cls_scores: List[Tensor],
                        bbox_preds: List[Tensor], *args,
                        **kwargs) -> List[InstanceData]:
        if self.training and self.norm_on_bbox:
            bbox_preds = [pred * stride for pred, stride in
                          zip(bbox_preds, self.strides)]
        return super().predict_by_feat(cls_scores, bbox_preds, *args,
                                       **kwargs)

    def _bbox_post_process(self,
                           results: InstanceData,
                           cfg: ConfigDict,
                           rescale: bool = False,
                           with_nms: bool = True,
                           img_meta: Optional[dict] = None) -> InstanceData:
        if self.score_mode == 'sqrt' and hasattr(results, 'score_factors'):
            factors = results.pop('score_factors')
            results.scores = torch.sqrt(results.scores * factors)
        return super()._bbox_post_process(results, cfg, rescale, with_nms,
                                          img_meta)
