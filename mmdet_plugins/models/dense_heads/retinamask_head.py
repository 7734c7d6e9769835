"""RetinaNet head with RetinaMask's loss over all levels at once."""
from typing import List

import torch
from mmdet.models.dense_heads import RetinaHead
from mmdet.models.utils import images_to_levels
from mmdet.registry import MODELS
from mmdet.structures.bbox import cat_boxes, get_box_tensor
from mmdet.utils import InstanceList, OptInstanceList
from torch import Tensor

NORMALIZERS = ('retinamask', 'mmdet')


@MODELS.register_module()
class RetinaMaskHead(RetinaHead):
    """MMDetection's ``RetinaHead`` with RetinaMask's loss computation.

    mmdet's ``AnchorHead`` calls the box loss once per FPN level. RetinaMask
    (and maskrcnn-benchmark's RetinaNet) concatenates the levels and calls it
    once per batch. For a fixed loss the sum is the same, but the
    self-adjusting smooth L1 updates its statistics per call, so the batch
    it sees must be all positives of the iteration. This head therefore
    computes both losses on the concatenated levels.

    Loss normalisation (``loss_normalizer``):

    - ``'retinamask'`` (the official code, default): focal loss divided by
      ``num_pos + num_images``, box loss by ``4 * num_pos`` (a mean over
      the positives' coordinates).
    - ``'mmdet'``: both divided by mmdet's ``avg_factor`` (positives, at
      least one per image), as ``RetinaHead`` does.

    Args:
        loss_normalizer: ``'retinamask'`` or ``'mmdet'``.
        *args, **kwargs: As ``RetinaHead``.
    """

    def __init__(self, *args, loss_normalizer: str = 'retinamask',
                 **kwargs) -> None:
        if loss_normalizer not in NORMALIZERS:
            raise ValueError(f'loss_normalizer must be one of {NORMALIZERS},'
                             f' got {loss_normalizer!r}')
        super().__init__(*args, **kwargs)
        self.loss_normalizer = loss_normalizer

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None
                     ) -> dict:
        """Focal and box losses over all levels and images at once."""
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        anchor_list, valid_flag_list = self.get_anchors(
            featmap_sizes, batch_img_metas, device=cls_scores[0].device)
        (labels_list, label_weights_list, bbox_targets_list,
         bbox_weights_list, avg_factor) = self.get_targets(
             anchor_list, valid_flag_list, batch_gt_instances,
             batch_img_metas,
             batch_gt_instances_ignore=batch_gt_instances_ignore)

        # Per level, predictions flatten as (image, y, x, anchor), the same
        # order as the per-level targets from get_targets.
        cls_score = torch.cat([
            s.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels)
            for s in cls_scores])
        bbox_pred = torch.cat([
            b.permute(0, 2, 3, 1).reshape(-1, self.bbox_coder.encode_size)
            for b in bbox_preds])
        labels = torch.cat([x.reshape(-1) for x in labels_list])
        label_weights = torch.cat([x.reshape(-1) for x in label_weights_list])
        target_dim = bbox_targets_list[0].size(-1)
        bbox_targets = torch.cat(
            [x.reshape(-1, target_dim) for x in bbox_targets_list])
        bbox_weights = torch.cat(
            [x.reshape(-1, target_dim) for x in bbox_weights_list])
        if self.reg_decoded_bbox:
            num_level_anchors = [a.size(0) for a in anchor_list[0]]
            anchors = images_to_levels(
                [cat_boxes(a) for a in anchor_list], num_level_anchors)
            anchors = torch.cat([a.reshape(-1, a.size(-1)) for a in anchors])
            bbox_pred = get_box_tensor(self.bbox_coder.decode(anchors,
                                                              bbox_pred))

        if self.loss_normalizer == 'retinamask':
            num_pos = float((bbox_weights > 0).any(dim=1).sum())
            cls_norm = num_pos + len(batch_img_metas)
            box_norm = target_dim * max(num_pos, 1.0)
        else:
            cls_norm = box_norm = avg_factor
        loss_cls = self.loss_cls(cls_score, labels, label_weights,
                                 avg_factor=cls_norm)
        loss_bbox = self.loss_bbox(bbox_pred, bbox_targets, bbox_weights,
                                   avg_factor=box_norm)
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox)
