"""mmengine's lookup of ``mmdet::`` base configs, done once per process.

Each ``_base_ = 'mmdet::...'`` costs mmengine 0.5-1 s of CPU, every time a
config is parsed:

- ``is_installed('mmdet')`` reloads ``pkg_resources``, which scans every
  installed distribution again;
- ``_get_cfg_metainfo`` parses mmdet's 918 ``metafile.yml`` files with the
  pure-Python YAML loader to find the name among its model configs. A base
  config is never among them: the lookup fails, and mmengine joins the path
  under ``mmdet/.mim/configs`` instead.

Our configs name up to six such bases, and the planner, the check and the
tests parse them hundreds of times: 0.62 s a parse of the project's 27
configs with mmengine's lookup, 0.06 s with this, on the idle 2-core
machine (``tools/benchmark_config_parse.py``). What those lookups return
depends only on what is installed, which does not change while a process
runs, so each is done once per process; the configs parse to the same
dicts (``tests/test_experiments/test_config_cache.py``).
"""
import copy
import functools
import os.path as osp
import warnings


@functools.lru_cache(maxsize=None)
def _model_configs(package_path: str) -> dict:
    """``{config name: its metafile entry}`` of an installed package, as
    ``mmengine.config.utils._get_cfg_metainfo`` builds it."""
    from mmengine.fileio import load
    found = {}
    index = load(osp.join(package_path, '.mim', 'model-index.yml'))
    for meta_path in index['Import']:
        meta = load(osp.join(package_path, '.mim', meta_path))
        for model_cfg in meta['Models']:
            if 'Config' not in model_cfg:
                warnings.warn(f'There is not `Config` define in {model_cfg}')
                continue
            # The first entry of a config with several weights, as mmengine.
            found.setdefault(model_cfg['Config'].partition('/')[-1],
                             model_cfg)
    return found


def _get_cfg_metainfo(package_path: str, cfg_path: str) -> dict:
    """mmengine's ``_get_cfg_metainfo`` on the package's index read once."""
    found = _model_configs(package_path)
    if cfg_path not in found:
        raise ValueError(f'Expected configs: {found.keys()}, but got '
                         f'{cfg_path}')
    return copy.deepcopy(found[cfg_path])


# (module, name) -> mmengine's own function, once replaced.
MMENGINE_OWN: dict = {}


def install() -> None:
    """Replace mmengine's per-parse lookups with the per-process ones
    (idempotent)."""
    import mmengine.config.config as config
    import mmengine.config.utils as utils
    if MMENGINE_OWN:
        return
    for module, name, cached in (
            (config, 'is_installed', None),
            (config, 'get_installed_path', None),
            (utils, '_get_cfg_metainfo', _get_cfg_metainfo)):
        own = getattr(module, name)
        MMENGINE_OWN[module, name] = own
        setattr(module, name, cached or functools.lru_cache(None)(own))
