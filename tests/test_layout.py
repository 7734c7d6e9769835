"""The layout rules, read from the source (issue 25).

- analysis/ imports nothing of ``experiments`` but ``experiments.store``; of
  experiments/, only ``experiments.plan`` (and the scripts) import analysis;
- uncertainty/ (the variance model the planner and the report share)
  imports neither analysis nor experiments;
- no module imports a private name (``_name``) of another;
- the project's modules form no import circle, counting imports inside
  functions too (they may not hide one);
- no file is over 400 lines, and no import waits for the matplotlib backend
  (it is chosen once, in ``analysis/__init__.py``);
- what the README's commands write (``exports/``, ``work_dirs/``, the
  built-in data) is ignored by git.
"""
import ast
import glob
import os.path as osp
import subprocess

import pytest

from experiments.store import PROJECT_ROOT

MAX_LINES = 400
FOLDERS = ('analysis', 'reports', 'experiments', 'mmdet_plugins', 'tools',
           'uncertainty')


def _modules():
    """Module name -> source, for every package and script folder."""
    out = {}
    for folder in FOLDERS:
        for path in glob.glob(osp.join(PROJECT_ROOT, folder, '**', '*.py'),
                              recursive=True):
            rel = osp.relpath(path, PROJECT_ROOT)[:-3].replace(osp.sep, '.')
            name = rel[:-len('.__init__')] if rel.endswith('__init__') \
                else rel
            with open(path) as f:
                out[name] = (path, f.read())
    return out


def _imports(tree: ast.AST, package: str):
    """(module, names) of every import anywhere in ``tree``; ``names`` is
    empty for ``import x``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ''
            if node.level:
                base = package.split('.')[:len(package.split('.'))
                                           - node.level + 1]
                module = '.'.join(base + ([module] if module else []))
            yield module, [a.name for a in node.names]


def _graph():
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, (_, source) in modules.items():
        for module, names in _imports(ast.parse(source), name):
            for target in [module] + [f'{module}.{n}' for n in names]:
                if target in modules and target != name:
                    graph[name].add(target)
    return modules, graph


def test_analysis_imports_only_the_store_of_experiments():
    bad = []
    for name, (path, source) in _modules().items():
        if not name.startswith('analysis'):
            continue
        for module, _ in _imports(ast.parse(source), name):
            if module.startswith('experiments') and not (
                    module == 'experiments.store'
                    or module.startswith('experiments.store.')):
                bad.append(f'{path}: {module}')
    assert not bad


def test_the_variance_model_sits_below_the_planner_and_the_report():
    bad = []
    for name, (path, source) in _modules().items():
        if name.split('.')[0] != 'uncertainty':
            continue
        bad += [f'{path}: {module}' for module, _ in
                _imports(ast.parse(source), name)
                if module.split('.')[0] in ('analysis', 'experiments')]
    assert not bad


def test_only_the_planner_of_experiments_imports_analysis():
    """analysis sits above the runner: the runner's packages never reach
    up (the grid planner, which weighs power against cost, and the two
    scripts do)."""
    bad = []
    allowed = ('experiments.plan', 'experiments.run_grid',
               'experiments.measure_cost')
    for name, (path, source) in _modules().items():
        if not name.startswith('experiments') or name.startswith(allowed):
            continue
        bad += [f'{path}: {module}' for module, _ in
                _imports(ast.parse(source), name)
                if module.split('.')[0] == 'analysis']
    assert not bad


def test_no_private_name_is_imported_across_modules():
    """Between the project's own modules (a library's private name, such
    as torch's ``_BatchNorm``, is that library's business)."""
    modules = _modules()
    bad = []
    for name, (path, source) in modules.items():
        for module, names in _imports(ast.parse(source), name):
            if module.split('.')[0] not in FOLDERS:
                continue
            bad += [f'{path}: {module}.{n}' for n in names
                    if n.startswith('_') and not n.startswith('__')]
    assert not bad


def test_no_import_circle():
    _, graph = _graph()
    done, cycles = set(), []

    def visit(node, stack):
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, stack + [node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    assert not cycles, ' -> '.join(cycles[0])


def test_files_are_short_and_the_backend_is_set_once():
    long, late, backend = [], [], []
    for name, (path, source) in _modules().items():
        if source.count('\n') > MAX_LINES:
            long.append(path)
        if 'noqa: E402' in source:
            late.append(path)
        if 'matplotlib.use(' in source:
            backend.append(name)
    assert not long and not late
    assert backend == ['analysis']


def test_what_the_commands_write_is_ignored_by_git():
    written = ['exports/centermask/model.onnx',
               'exports/centermask/onnx_inference.py',
               'work_dirs/smoke/results.csv', 'data/builtin/x.json']
    done = subprocess.run(['git', 'check-ignore', *written],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    if done.returncode == 128:
        pytest.skip(f'not a git checkout: {done.stderr.strip()}')
    assert done.stdout.split() == written
