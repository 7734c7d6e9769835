"""``mmdet_plugins.mmdet_import``: mmdet without its unused seaborn
imports."""
import json
import subprocess
import sys

from experiments.store import PROJECT_ROOT

PROBE = """
import json, sys
import mmdet_plugins
loaded = [m for m in ('seaborn', 'scipy.stats') if m in sys.modules]
import mmdet.utils.mot_error_visualize as mot
import mmdet.visualization.local_visualizer as vis
import seaborn  # importable again: the real package
print(json.dumps(dict(loaded=loaded, mot_sns=mot.sns is not None,
                      vis_sns=vis.sns is not None,
                      seaborn=callable(seaborn.color_palette))))
"""


def test_importing_the_plugins_leaves_seaborn_out_and_importable():
    out = subprocess.run([sys.executable, '-c', PROBE], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.splitlines()[-1])
    # Neither seaborn nor scipy.stats (which only seaborn brought) loads
    # with the plugins; mmdet's tracking plots went without; seaborn still
    # works.
    assert seen == dict(loaded=[], mot_sns=False, vis_sns=False,
                        seaborn=True), seen
