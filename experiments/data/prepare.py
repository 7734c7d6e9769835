"""Turn a grid's dataset entries into checked COCO paths.

Built-in datasets are generated (idempotently) under ``data/builtin``; COCO
datasets are validated with :func:`experiments.data.coco_check.check_coco`.
"""
import dataclasses
import hashlib
import json
import os.path as osp
from typing import Optional, Tuple

from experiments.data.coco_check import CocoFormatError, check_coco
from experiments.data.coco_stats import statistics
from experiments.data.synthetic_coco import SyntheticCocoSpec, generate
from experiments.grid.spec import DatasetSpec
from experiments.store import PROJECT_ROOT, project_path, warn

BUILTIN_DIR = 'data/builtin'


@dataclasses.dataclass(frozen=True)
class PreparedDataset:
    """Checked paths of one dataset.

    ``data_root`` is relative to the project root when it lies inside it,
    so that run ids (a hash of the resolved config) do not depend on where
    the checkout lives. The other paths are as the grid gives them: each is
    found with :meth:`path` (``os.path.join`` semantics: an absolute path
    stays as given), as mmengine's datasets join ``data_root`` with their
    ``ann_file`` and ``data_prefix``; the planning check and the evaluator
    use the same method.
    """

    name: str
    data_root: str
    train_ann: str
    train_img: str
    val_ann: str
    val_img: str
    classes: Tuple[str, ...]
    val_images: int
    val_instances: int
    train_images: int = 0

    def path(self, field: str) -> str:
        """The file or folder the grid's ``field`` (``train_ann``,
        ``val_img``, ...) names: ``os.path.join(data_root, value)``, so an
        absolute value stays absolute; relative to the project root
        otherwise."""
        return osp.join(self.data_root, getattr(self, field))

    def abs(self, path: str) -> str:
        """``path`` (relative to ``data_root`` or absolute) as an absolute
        path."""
        return project_path(osp.join(self.data_root, path))


def _portable(path: str) -> str:
    path = osp.abspath(project_path(path))
    rel = osp.relpath(path, PROJECT_ROOT)
    return path if rel.startswith('..') else rel


def builtin_dir(spec: SyntheticCocoSpec, name: str) -> str:
    digest = hashlib.sha1(json.dumps(spec.to_dict(), sort_keys=True)
                          .encode()).hexdigest()[:8]
    return osp.join(BUILTIN_DIR, f'{name}-{digest}')


def prepare_dataset(spec: DatasetSpec, grid_path: str = '<grid>',
                    verbose: bool = True) -> PreparedDataset:
    """Generate or check one dataset.

    Raises:
        CocoFormatError: The dataset's files are missing or malformed; the
            message names the grid entry and the file.
        ValueError: A built-in dataset's parameters are invalid.
    """
    if spec.synthetic is not None:
        try:
            synth = SyntheticCocoSpec.from_dict(dict(spec.synthetic))
        except (TypeError, ValueError) as e:
            raise ValueError(f'{grid_path}: datasets.{spec.name}.synthetic: '
                             f'{e}') from None
        root = builtin_dir(synth, spec.name)
        generate(synth, project_path(root), verbose=verbose)
        spec = dataclasses.replace(
            spec, synthetic=None, data_root=root,
            train_ann='annotations/instances_train.json', train_img='train/',
            val_ann='annotations/instances_val.json', val_img='val/')

    root = _portable(spec.data_root or '.')
    if not osp.isdir(project_path(root)):
        raise CocoFormatError(f'{grid_path}: datasets.{spec.name}.data_root '
                              f'{project_path(root)} does not exist')
    paths = PreparedDataset(
        name=spec.name, data_root=root, train_ann=spec.train_ann,
        train_img=spec.train_img, val_ann=spec.val_ann, val_img=spec.val_img,
        classes=(), val_images=0, val_instances=0)
    val, train_images = None, 0
    warnings: list = []
    for split in ('train', 'val'):
        for field in (f'{split}_ann', f'{split}_img'):
            found = project_path(paths.path(field))
            if not (osp.isfile if field.endswith('_ann') else osp.isdir)(
                    found):
                raise CocoFormatError(
                    f'{grid_path}: datasets.{spec.name}.{field} {found} '
                    f'does not exist')
        try:
            coco = check_coco(project_path(paths.path(f'{split}_ann')),
                              project_path(paths.path(f'{split}_img')),
                              warnings=warnings)
        except CocoFormatError as e:
            raise CocoFormatError(f'{grid_path}: datasets.{spec.name} '
                                  f'({split}): {e}') from None
        if split == 'val':
            val = coco
        else:
            train_images = len(coco['images'])
    if verbose:
        for warning in warnings:
            warn(f'{grid_path}: datasets.{spec.name}: {warning}')
    classes: Optional[tuple] = spec.classes or tuple(
        c['name'] for c in sorted(val['categories'], key=lambda c: c['id']))
    stats = statistics(val)
    return dataclasses.replace(
        paths, classes=tuple(classes), val_images=stats['images'],
        val_instances=stats['instances'], train_images=train_images)
