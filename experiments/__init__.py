"""The experiment harness: grids of runs, the built-in dataset, results."""
import warnings

# mmengine imports pkg_resources (needed for `mmdet::` config lookup, see
# ../shared/reference/stack.md); setuptools warns about it on every import,
# which buries the harness's own messages.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                        category=UserWarning)
