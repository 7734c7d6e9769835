"""A run's Runner never yapf-formats its config (``unformatted``).

mmengine's Runner asks for ``cfg.pretty_text`` when it starts and at every
checkpoint; formatted by yapf that is 0.5-1 s a call, more than a tiny
run's training. The run dir's ``config.py`` (written by the grid runner) is
still formatted for its reader.
"""
import mmengine.config.config as mmengine_config
import pytest
import torch
from helpers import checkpoint_path, tiny_config
from mmengine.config import Config

from experiments.grid.run_config import unformatted
from experiments.runner.train_run import build_runner


@pytest.fixture
def yapf_calls(monkeypatch):
    """Every call of mmengine's yapf ``FormatCode``, recorded (the text is
    returned unchanged)."""
    calls = []

    def format_code(text, style_config=None, **kwargs):
        calls.append(len(text))
        return text, False
    monkeypatch.setattr(mmengine_config, 'FormatCode', format_code)
    return calls


def test_a_run_checkpoints_without_formatting_its_config(
        tiny_builtin, tmp_path, yapf_calls):
    cfg = tiny_config(tiny_builtin, str(tmp_path / 'work'), max_iters=2)
    cfg.default_hooks.checkpoint.interval = 1
    # As a run's child gets it: a config read from a file, formatting on.
    object.__setattr__(cfg, '_format_python_code', True)
    build_runner(cfg).train()
    assert yapf_calls == []
    saved = torch.load(checkpoint_path(str(tmp_path / 'work'), 2),
                       map_location='cpu', weights_only=False)
    # The checkpoint's config is still the whole config, as Python.
    again = Config.fromstring(saved['meta']['cfg'], '.py')
    assert again.train_cfg.max_iters == 2
    assert again.model.type == cfg.model.type


def test_the_unformatted_text_is_the_same_config(tiny_builtin, tmp_path):
    cfg = tiny_config(tiny_builtin, str(tmp_path), max_iters=2)
    object.__setattr__(cfg, '_format_python_code', True)
    formatted = Config.fromstring(cfg.pretty_text, '.py').to_dict()
    plain = Config.fromstring(unformatted(cfg).pretty_text, '.py').to_dict()
    assert plain == formatted


def test_the_control_reaches_yapf(tiny_builtin, tmp_path, yapf_calls):
    """Without ``unformatted`` the same config reaches the recorded yapf
    (what the first test counts is real)."""
    cfg = tiny_config(tiny_builtin, str(tmp_path), max_iters=2)
    object.__setattr__(cfg, '_format_python_code', True)
    cfg.pretty_text
    assert len(yapf_calls) == 1
