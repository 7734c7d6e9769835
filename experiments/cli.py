"""What the command-line scripts share: the grid arguments, how a grid and
its work dir are found, and how a script ends on bad input (one line on
stderr naming the file or flag, exit status 2, nothing computed lost)."""
import argparse
import os.path as osp
import sys
from typing import Optional

from experiments.store import project_path

# Exit status for input the script refuses (a bad grid, flag or file).
EXIT_BAD_INPUT = 2


def add_grid_arguments(parser: argparse.ArgumentParser,
                       work_dir_help: str = 'override the grid\'s work_dir'
                       ) -> None:
    """``grid`` (a YAML grid file) and ``--work-dir``."""
    parser.add_argument('grid', help='grid specification (YAML)')
    parser.add_argument('--work-dir', default=None, help=work_dir_help)


def grid_work_dir(args: argparse.Namespace, grid_work_dir: str) -> str:
    """The work dir the command line names, else the grid's, absolute and
    normalised (``/work/main/../wd`` is ``/work/wd``): every path printed
    under it reads plainly."""
    return osp.normpath(project_path(args.work_dir or grid_work_dir))


def fail(message: str, details: Optional[list] = None) -> int:
    """Print ``error: message`` (and one ``  - detail`` line each) on
    stderr; return :data:`EXIT_BAD_INPUT` for ``main`` to return."""
    print(f'error: {message}', file=sys.stderr)
    for detail in details or []:
        print(f'  - {detail}', file=sys.stderr)
    return EXIT_BAD_INPUT
