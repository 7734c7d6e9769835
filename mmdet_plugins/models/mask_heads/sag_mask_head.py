"""SAG-Mask: Mask R-CNN's mask head with spatial attention (CenterMask)."""
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import MODELS
from torch import Tensor

from ..layers import SpatialAttention


@MODELS.register_module()
class SAGMaskHead(FCNMaskHead):
    """Spatial attention-guided mask head.

    RoI features (14x14) -> ``num_convs`` x (3x3 conv, ReLU) -> SAM (when
    ``use_sam``) -> 2x2 stride-2 deconv + ReLU (28x28) -> 1x1 conv to
    class-specific mask logits. Loss: Mask R-CNN's per-pixel BCE on the GT
    class. ``num_convs=4, conv_out_channels=256`` is CenterMask;
    ``num_convs=2, conv_out_channels=128`` is CenterMask-Lite.
    ``use_sam=False`` is mmdet's ``FCNMaskHead`` (Table 1's "+ mask head").

    Args:
        use_sam: Apply the spatial attention module after the convs.
        **kwargs: As ``FCNMaskHead``.
    """

    def __init__(self, use_sam: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.use_sam = use_sam
        self.sam = SpatialAttention() if use_sam else None

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = conv(x)
        if self.sam is not None:
            x = self.sam(x)
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_method == 'deconv':
                x = self.relu(x)
        return self.conv_logits(x)
