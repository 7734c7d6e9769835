"""MMDetection imported without the seaborn import it never uses here.

Two mmdet modules import seaborn (and with it ``scipy.stats``) for tracking
only: ``mmdet.utils.mot_error_visualize`` (a MOT error plot) and
``mmdet.visualization.local_visualizer`` (``TrackLocalVisualizer``'s
colours). No detection model or ``DetLocalVisualizer`` uses it, yet it is
about 1 s of every process that imports mmdet: each training run, rank and
planner, on a cluster as much as in the test suite. mmdet already falls back
to ``sns = None`` where seaborn is not installed, so both modules are
imported here with seaborn hidden, and seaborn is importable again
afterwards for whoever uses it (tidecv's plots,
``analysis/sections/error_breakdown.py``). Only mmdet's tracking
visualisation loses its seaborn colours.
"""
import importlib
import sys

SEABORN_USERS = ('mmdet.utils', 'mmdet.visualization')


def import_mmdet_without_seaborn() -> None:
    """Import :data:`SEABORN_USERS` with seaborn hidden, unless seaborn or
    one of them is already imported (then nothing changes)."""
    if 'seaborn' in sys.modules or any(m in sys.modules
                                       for m in SEABORN_USERS):
        return
    sys.modules['seaborn'] = None  # mmdet's `import seaborn` -> ImportError
    try:
        for module in SEABORN_USERS:
            importlib.import_module(module)
    finally:
        if sys.modules.get('seaborn', 0) is None:
            del sys.modules['seaborn']


import_mmdet_without_seaborn()
