"""Every value an official config sets, side by side with our merged config.

One YAML file per COCO config under ``configs/official/`` (files starting
with ``_`` are shared blocks) transcribes, with file:line, every value the
official config sets (solver, input, model, loss, assigner, test) and names
the key of our *merged* config that carries it. A row is

- ``held``: our value equals the official one (``expect`` gives it in our
  units where they differ, e.g. box-coder weights 10 / 5 as stds 0.1 / 0.2);
- ``deliberate``: our value (``expect``) differs, for the reason given;
- ``unofficial``: no official config sets it (an mmdet / mmengine-only key,
  a value of our pipeline): ``expect`` pins our value, the reason says why.

Every row pins our value, so a config edit fails one of them
(``tests/test_experiments/test_grid/test_official_values.py``); the
mutation sweep (``tools/mutation_sweep.py``) shows that every numeric leaf
is held by a row. ``tools/official_values.py`` prints the tables.
"""
import math
import os.path as osp
import re
from typing import Any, Dict, Iterator, List, Optional, Tuple

import yaml

from experiments.store import PROJECT_ROOT

OFFICIAL_DIR = osp.join(PROJECT_ROOT, 'configs', 'official')
# Sections of the merged config whose values train and test the model.
SECTIONS = ('model', 'train_cfg', 'test_cfg', 'optim_wrapper',
            'param_scheduler', 'train_dataloader', 'test_dataloader',
            'paper_recipe')
_TOKEN = re.compile(r"\[([^\]]+)\]|([^.\[\]]+)")
REL_TOL = 1e-6
# The fields of a row; any other is a YAML slip (an unquoted comma in a
# flow mapping starts a new key).
ROW_FIELDS = {'id', 'ours', 'key', 'value', 'src', 'expect', 'as',
              'deliberate', 'unofficial', 'drop'}


def table_path(config: str) -> str:
    """The official-values YAML of a config (``configs/x/name.py``)."""
    stem = osp.splitext(osp.basename(config))[0]
    return osp.join(OFFICIAL_DIR, stem + '.yaml')


def _read(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f) or {}


def load_rows(path: str) -> List[dict]:
    """The rows of a table, its ``inherit`` files' first (in order); a later
    row with the same ``id`` (default: its ``ours`` key) replaces an earlier
    one in place; a row whose ``drop`` is true removes it."""
    data = _read(path)
    rows: Dict[str, dict] = {}
    for parent in data.get('inherit', []):
        for row in load_rows(osp.join(OFFICIAL_DIR, parent)):
            rows[row.get('id', row['ours'])] = row
    for row in data.get('rows', []):
        if set(row) - ROW_FIELDS:
            raise ValueError(f'{path}: row {row.get("ours")} has unknown '
                             f'fields {sorted(set(row) - ROW_FIELDS)}')
        rows[row.get('id', row['ours'])] = dict(row, table=osp.basename(path))
    return [row for row in rows.values() if not row.get('drop')]


def _tokens(key: str) -> Iterator[Tuple[str, Any]]:
    """``a.b[0][type=Resize]['.gn.bias'].2`` -> (kind, token) pairs."""
    for bracket, plain in _TOKEN.findall(key):
        token = bracket or plain
        if bracket and token[0] in '\'"':
            yield 'key', token[1:-1]
        elif bracket and '=' in token:
            yield 'select', tuple(token.split('=', 1))
        elif token.lstrip('-').isdigit():
            yield 'index', int(token)
        else:
            yield 'key', token


def as_dict(cfg: Any) -> dict:
    """A plain dict of an mmengine ``Config`` (other values unchanged)."""
    return cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg


def resolve(cfg: Any, key: str) -> Tuple[Any, Tuple]:
    """The value at ``key`` in ``cfg`` and its concrete path.

    Raises:
        KeyError: the key is absent, or a selector matches no or several
            list items.
    """
    node, path = as_dict(cfg), ()
    for kind, token in _tokens(key):
        if kind == 'select':
            field, want = token
            hits = [i for i, item in enumerate(node)
                    if isinstance(item, dict) and str(item.get(field)) == want]
            if len(hits) != 1:
                raise KeyError(f'{key}: {len(hits)} items with {field}={want}')
            token = hits[0]
        elif kind == 'index':
            if not isinstance(node, (list, tuple)) or token >= len(node):
                raise KeyError(f'{key}: no item {token}')
        elif not isinstance(node, dict) or token not in node:
            raise KeyError(f'{key}: no key {token!r}')
        node, path = node[token], path + (token, )
    return node, path


def plain(value: Any) -> Any:
    """Tuples as lists and mmengine ConfigDicts as dicts, recursively;
    without mmengine's ``_scope_`` bookkeeping key."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def same(got: Any, want: Any) -> bool:
    """Equal, floats within ``REL_TOL``; an int never equals a float of a
    different value, a bool only a bool."""
    got, want = plain(got), plain(want)
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(got, want, rel_tol=REL_TOL, abs_tol=1e-12)
    if isinstance(want, dict) and isinstance(got, dict):
        return set(got) == set(want) and all(
            same(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(map(same, got, want))
    return got == want


def status(row: dict) -> Tuple[str, str]:
    """(``held`` / ``deliberate`` / ``unofficial``, reason)."""
    for name in ('deliberate', 'unofficial'):
        if name in row:
            return name, row[name]
    return 'held', row.get('as', '')


def expected(row: dict) -> Any:
    """What our config must hold: ``expect`` if given, else the official
    value (a ``held`` row in the official units)."""
    return row['expect'] if 'expect' in row else row.get('value')


def load_config(config: str):
    """The merged config as mmengine loads it (mmdet scope, plugins)."""
    from mmengine.config import Config
    path = config if osp.isabs(config) else osp.join(PROJECT_ROOT, config)
    return Config.fromfile(path)


def compare(cfg: Any, rows: List[dict]) -> List[dict]:
    """One record per row: official and our key / value, the value our
    config must hold (``expected``), status and reason, ``ok``."""
    out, cfg = [], as_dict(cfg)
    for row in rows:
        kind, reason = status(row)
        try:
            got, _ = resolve(cfg, row['ours'])
            ok = same(got, expected(row))
        except KeyError as err:
            # An absent key is None to mmengine (``cfg.get``): clip_grad.
            got = None if expected(row) is None else f'<missing: {err}>'
            ok = expected(row) is None
        out.append(dict(
            official_key=row.get('key', ''), official_value=row.get('value'),
            source=row.get('src', ''), our_key=row['ours'], our_value=plain(
                got), expected=plain(expected(row)), status=kind,
            reason=reason, ok=ok))
    return out


def official_table(config: str, cfg: Optional[Any] = None):
    """The side-by-side table of ``config`` as a pandas DataFrame."""
    import pandas as pd
    cfg = load_config(config) if cfg is None else cfg
    return pd.DataFrame(compare(cfg, load_rows(table_path(config))))


def numeric_leaves(cfg: Any) -> Iterator[Tuple[Tuple, Any]]:
    """(path, value) of every int / float leaf in ``SECTIONS``."""
    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, path + (k, ))
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                yield from walk(v, path + (i, ))
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            yield path, node
    cfg = as_dict(cfg)
    for section in SECTIONS:
        if section in cfg:
            yield from walk(cfg[section], (section, ))


def unpinned_leaves(cfg: Any, rows: List[dict]) -> List[Tuple]:
    """Numeric leaves under no row's key (rows may pin whole sub-trees)."""
    pinned, cfg = [], as_dict(cfg)
    for row in rows:
        try:
            pinned.append(resolve(cfg, row['ours'])[1])
        except KeyError:
            continue
    return [path for path, _ in numeric_leaves(cfg)
            if not any(path[:len(p)] == p for p in pinned)]
