"""Seconds per ``Config.fromfile`` of the project's configs, with mmengine's
own ``mmdet::`` lookup and with the per-process one
(``experiments/config_cache.py``).

    python tools/benchmark_config_parse.py              # every configs/*/*.py
    python tools/benchmark_config_parse.py --repeat 3

One parse first imports what the configs' ``custom_imports`` name (mmdet and
the plugins), so neither timing pays for it; then every config is parsed
``--repeat`` times with mmengine's functions, and as often with the cache.
"""
import argparse
import glob
import os.path as osp
import time

from mmengine.config import Config

from experiments.config_cache import MMENGINE_OWN, install

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', default=None,
                        help='configs to parse (default: configs/*/*.py)')
    parser.add_argument('--repeat', type=int, default=1)
    return parser.parse_args(argv)


def seconds_per_parse(configs, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for path in configs:
            Config.fromfile(path)
    return (time.perf_counter() - start) / (repeat * len(configs))


def main(argv=None) -> None:
    args = parse_args(argv)
    configs = args.configs or sorted(
        glob.glob(osp.join(PROJECT, 'configs', '*', '*.py')))
    install()
    Config.fromfile(configs[0])
    cached = dict((key, getattr(*key)) for key in MMENGINE_OWN)
    for (module, name), own in MMENGINE_OWN.items():
        setattr(module, name, own)
    own_s = seconds_per_parse(configs, args.repeat)
    for (module, name), fn in cached.items():
        setattr(module, name, fn)
    cached_s = seconds_per_parse(configs, args.repeat)
    print(f'{len(configs)} configs x {args.repeat}: mmengine\'s own lookup '
          f'{own_s:.3f} s a parse, per-process lookup {cached_s:.3f} s '
          f'({own_s / cached_s:.1f}x)')


if __name__ == '__main__':
    main()
