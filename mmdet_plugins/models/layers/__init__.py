from .attention import (ESE, SE, SpatialAttention,
                        build_channel_attention)

__all__ = ['ESE', 'SE', 'SpatialAttention', 'build_channel_attention']
