"""The experiment harness: grids of runs, the built-in dataset, results."""
import warnings

from experiments.config_cache import install as _install_config_cache

# mmengine imports pkg_resources (needed for `mmdet::` config lookup, see
# ../shared/reference/stack.md); setuptools warns about it on every import,
# which buries the harness's own messages.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                        category=UserWarning)
# Every config of the project names mmdet:: base configs, whose lookup
# costs mmengine about a second per parse (experiments/config_cache.py).
_install_config_cache()
