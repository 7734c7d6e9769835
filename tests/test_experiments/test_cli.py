"""What the scripts share (``experiments/cli.py``), seen from run_grid."""
from experiments import run_grid
from helpers import write_grid


def test_run_grid_prints_the_work_dir_normalised(tiny_builtin, tmp_path,
                                                 capsys):
    grid = write_grid(tmp_path / 'g.yaml', tmp_path / 'unused',
                      tiny_builtin, {'default': {}})
    given = str(tmp_path / 'main' / '..' / 'wd')
    assert run_grid.main([grid, '--dry-run', '--work-dir', given]) == 0
    out = capsys.readouterr().out
    assert f'work dir {tmp_path / "wd"}\n' in out, out
    assert '/../' not in out
