"""How VoVNet's OSA blocks are wired, checked by running them.

The expected structure is written out from the official spec dicts in
centermask2 @6adabd6 ``centermask/modeling/backbone/vovnet.py``
(``VoVNet19_slim_dw_eSE`` .. ``VoVNet99_eSE``, lines 30-97) and its
``_OSA_module.forward`` (lines 310-332: ``output = [x]`` before the
depthwise reduction, each layer's output appended, ``torch.cat``, concat
1x1, eSE, then ``+ identity_feat`` if ``identity``) and ``_OSA_stage``
(lines 335-376: ``identity=True`` only for blocks 2..n; eSE built in every
block, its ``SE`` flag unused).
"""
from unittest import mock

import pytest
import torch

from mmdet_plugins.models.backbones import VoVNet
from mmdet_plugins.models.backbones.vovnet import OSABlock

# Official spec dicts: stem out, stage_conv_ch, stage_out_ch,
# layer_per_block, block_per_stage.
OFFICIAL = {
    'V-19-slim-dw': (64, (64, 80, 96, 112), (112, 256, 384, 512), 3,
                     (1, 1, 1, 1)),
    'V-19-slim': (128, (64, 80, 96, 112), (112, 256, 384, 512), 3,
                  (1, 1, 1, 1)),
    'V-19': (128, (128, 160, 192, 224), (256, 512, 768, 1024), 3,
             (1, 1, 1, 1)),
    'V-39': (128, (128, 160, 192, 224), (256, 512, 768, 1024), 5,
             (1, 1, 2, 2)),
    'V-57': (128, (128, 160, 192, 224), (256, 512, 768, 1024), 5,
             (1, 1, 4, 3)),
    'V-99': (128, (128, 160, 192, 224), (256, 512, 768, 1024), 5,
             (1, 3, 9, 3)),
}


def _expected_blocks(arch):
    """(concat pieces' channels, has identity, stage, block) per block."""
    stem, conv, out, layers, blocks = OFFICIAL[arch]
    expected, in_ch = [], stem
    for stage in range(4):
        for b in range(blocks[stage]):
            pieces = [in_ch if b == 0 else out[stage]] + [conv[stage]] * layers
            expected.append((pieces, b > 0, stage, b))
        in_ch = out[stage]
    return expected


@pytest.mark.parametrize('arch, attention_blocks',
                         [(a, 'all') for a in OFFICIAL] + [('V-39', 'last')])
def test_concat_inputs_residual_and_ese_per_block(arch, attention_blocks):
    """Every block concatenates its (unreduced) input and then each layer's
    output; the residual is added after eSE, in blocks 2..n only; eSE runs
    in every block ('all', official) or the last of each stage ('last')."""
    torch.manual_seed(0)
    model = VoVNet(arch, attention_blocks=attention_blocks).eval()
    blocks = [m for m in model.modules() if isinstance(m, OSABlock)]
    expected = _expected_blocks(arch)
    assert len(blocks) == len(expected)
    record = []
    real_cat = torch.cat

    def cat(tensors, dim=0):
        record[-1]['pieces'] = [t.shape[1] for t in tensors]
        return real_cat(tensors, dim=dim)

    def block_pre(module, args):
        record.append(dict(input=args[0], gated=None))

    def gated_hook(module, args, output):
        record[-1]['gated'] = output

    def block_post(module, args, output):
        record[-1]['output'] = output

    for block in blocks:
        block.register_forward_pre_hook(block_pre)
        block.register_forward_hook(block_post)
        last = block.attention if block.attention is not None \
            else block.aggregation
        last.register_forward_hook(gated_hook)
    with mock.patch.object(torch, 'cat', cat), torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    assert len(record) == len(expected)
    for rec, block, (pieces, identity, stage, b) in zip(record, blocks,
                                                        expected):
        where = f'{arch} stage {stage + 2} block {b + 1}'
        assert rec['pieces'] == pieces, where
        last_in_stage = b == OFFICIAL[arch][4][stage] - 1
        assert (block.attention is not None) == (
            attention_blocks == 'all' or last_in_stage), where
        branch = rec['gated']
        want = branch + rec['input'] if identity else branch
        torch.testing.assert_close(rec['output'], want, msg=where)


def _hand_block(identity, attention='none'):
    """1 input channel, 2 layers of 1 channel, no norm (conv bias on)."""
    block = OSABlock(1, 1, 1, 2, attention, identity=identity,
                     depthwise=False, norm_cfg=None)
    with torch.no_grad():
        first, second = (c[0].conv for c in block.convs)
        first.weight.fill_(1.)          # 3x3 of ones
        first.bias.zero_()
        second.weight.zero_()
        second.weight[0, 0, 1, 1] = 1.  # centre tap only
        second.bias.fill_(-4.)
        agg = block.aggregation.conv
        agg.weight.copy_(torch.tensor([1., 10., 100.]).view(1, 3, 1, 1))
        agg.bias.zero_()
    return block.eval()


X = torch.tensor([[[[1., 2.], [3., 4.]]]])


def test_osa_block_by_hand():
    """x = [[1, 2], [3, 4]]. Layer 1 (3x3 ones, padding 1): on a 2x2 map
    every window covers all four pixels, 1+2+3+4 = 10 everywhere. Layer 2
    (centre tap 1, bias -4): relu(10 - 4) = 6. Concat [x, 10, 6], 1x1
    weights [1, 10, 100]: x + 100 + 600 = x + 700 -> [[701, 702],
    [703, 704]]; with the identity, + x -> [[702, 704], [706, 708]].
    Concatenated in another order ([10, 6, x]) it would be 10 + 60 + 100x."""
    with torch.no_grad():
        plain = _hand_block(identity=False)(X)
        residual = _hand_block(identity=True)(X)
    torch.testing.assert_close(
        plain, torch.tensor([[[[701., 702.], [703., 704.]]]]))
    torch.testing.assert_close(
        residual, torch.tensor([[[[702., 704.], [706., 708.]]]]))


def test_ese_gates_the_aggregate_before_the_residual_add():
    """eSE fc weight 0: gate = relu6(bias + 3) / 6. Bias -3: gate 0, so the
    block returns the identity alone, [[1, 2], [3, 4]] (had the residual
    been added before eSE: 0). Bias 0: gate 1/2, (x + 700) / 2 + x ->
    [[351.5, 353], [354.5, 356]]."""
    for bias, want in ((-3., [[1., 2.], [3., 4.]]),
                       (0., [[351.5, 353.], [354.5, 356.]])):
        block = _hand_block(identity=True, attention='ese')
        with torch.no_grad():
            block.attention.fc.weight.zero_()
            block.attention.fc.bias.fill_(bias)
            out = block(X)
        torch.testing.assert_close(out, torch.tensor([[want]]))
