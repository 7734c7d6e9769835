"""Import timm where torchvision cannot load (the CPU machines).

timm's VoVNet needs nothing from torchvision, but ``import timm`` imports
its data package, which imports torchvision's datasets and transforms. The
only torchvision builds on our package index are CUDA builds that fail to
load against the CPU torch ("operator torchvision::nms does not exist").
Where that happens, a stand-in ``torchvision`` whose names are unusable
placeholders lets timm import; any use of one raises. The stand-in is
gone again once timm is imported, so the tests that run after it in the same
process see no torchvision. Where torchvision works, it is used as it is.
"""
import importlib
import importlib.abc
import importlib.machinery
import sys
import types


class _PlaceholderType(type):
    def __getattr__(cls, name):
        if name.startswith('__'):
            raise AttributeError(name)
        # A distinct placeholder per name: timm builds dicts keyed by
        # torchvision enum members at import time.
        member = _PlaceholderType(name, (cls, ), {})
        setattr(cls, name, member)
        return member


class _Placeholder(metaclass=_PlaceholderType):
    def __init__(self, *args, **kwargs):
        raise RuntimeError('torchvision is a stand-in in this test')


class _StandInModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        member = _PlaceholderType(name, (_Placeholder, ), {})
        setattr(self, name, member)
        return member


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname == 'torchvision' or fullname.startswith('torchvision.'):
            return importlib.machinery.ModuleSpec(fullname, self,
                                                  is_package=True)
        return None

    def create_module(self, spec):
        module = _StandInModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def import_timm():
    """timm, importing it with a torchvision stand-in if need be."""
    try:
        return importlib.import_module('timm')
    except ModuleNotFoundError as e:
        if e.name != 'timm' and not (e.name or '').startswith('torchvision'):
            raise
        if e.name == 'timm':
            raise
    except RuntimeError:
        pass
    for name in [m for m in sys.modules
                 if m == 'timm' or m.startswith(('timm.', 'torchvision'))]:
        del sys.modules[name]
    finder = _StandInFinder()
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module('timm')
    finally:
        # timm keeps what it imported; the rest of the process must not see
        # a torchvision (mmengine's collect_env reads its __version__, torch's
        # ONNX exporter asks whether it is installed).
        sys.meta_path.remove(finder)
        for name in [m for m in sys.modules
                     if m == 'torchvision' or m.startswith('torchvision.')]:
            del sys.modules[name]
