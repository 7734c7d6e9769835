"""FCOS head as CenterMask's official code scores its boxes."""
from typing import Optional

import torch
from mmdet.models.dense_heads import FCOSHead
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

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
    can differ slightly. Everything else is ``FCOSHead``; CenterMask's
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
