from .adaptive_roi_extractor import AdaptiveRoIExtractor

__all__ = ['AdaptiveRoIExtractor']
