"""Which per-image matching engine runs.

The compiled one (:mod:`analysis.coco_eval.fast_match`) when numba is
installed, else pycocotools' ``COCOeval.evaluate()``, the reference;
``COCO_ENGINE=pycocotools`` in the environment forces the reference, and
with it the numpy accumulate.
"""
import os

try:
    from analysis.coco_eval import fast_match
except ImportError:  # numba is not installed
    fast_match = None


def fast_engine_available() -> bool:
    return fast_match is not None


def precision_kernel():
    """The compiled accumulate, or None (numba missing, or turned off)."""
    if fast_match is None or os.environ.get('COCO_ENGINE') == 'pycocotools':
        return None
    return fast_match.precision_kernel
