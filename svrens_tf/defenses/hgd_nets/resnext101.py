"""HGD's ResNeXt-101 64x4d member (`resnext101.py`, `resnext.py`, `resnext_features/`).

A Torch7 conversion kept as nested `nn.Sequential`s, hence the numeric keys: `features.0` conv
7x7/2 pad 3, `.1` BN, max pool 3/2 pad 1, stages `features.4`-`.7` of [3, 4, 23, 3] blocks.
Block `features.<stage>.<block>.0` is a ConcatTable: `.0` the residual branch (`.0.0` 1x1 conv,
`.0.1` BN, `.0.3` 3x3 conv with 64 groups carrying the stride, `.0.4` BN, `.1` 1x1 conv, `.2`
BN) and, on each stage's first block, `.1` the shortcut (`.0` 1x1 conv with the stride, `.1`
BN); their sum goes through ReLU. BatchNorm eps 1e-5, global mean, 1000-way `fc`. Input in
torchvision's normalisation. Keys as in `denoise_rex_001.ckpt`.
"""
import tensorflow as tf

from svrens_tf.defenses.hgd_nets import member
from svrens_tf.defenses.hgd_nets.torch_layers import global_mean, max_pool

BN_EPS = 1e-5
BLOCKS = (3, 4, 23, 3)


def block(params, x, key, stride, shortcut):
    def conv_bn(x, conv, bn, stride=1, padding=0, relu=True):
        return params.conv(x, f'{key}.{conv}', stride, padding, bn=f'{key}.{bn}', eps=BN_EPS,
                           relu=relu)
    out = conv_bn(x, '0.0.0', '0.0.1')
    out = conv_bn(out, '0.0.3', '0.0.4', stride, 1)
    out = conv_bn(out, '0.1', '0.2', relu=False)
    if shortcut:
        x = conv_bn(x, '1.0', '1.1', stride, relu=False)
    return tf.nn.relu(out + x)


def features(params, x):
    """Normalised image -> features [B,10,10,2048]."""
    x = params.conv(x, 'net.features.0', 2, 3, bn='net.features.1', eps=BN_EPS, relu=True)
    x = max_pool(x, 3, 2, padding=1)
    for stage, blocks in enumerate(BLOCKS):
        for i in range(blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            x = block(params, x, f'net.features.{stage + 4}.{i}.0', stride, i == 0)
    return x


class ResNeXt101(member.Member):
    key = 'resnext101'
    released_file = 'denoise_rex_001.ckpt'
    normalisation = member.TORCH_NORMALISATION
    denoiser_prefix = 'net.denoise'

    def classify(self, x):
        return self.params.linear(global_mean(features(self.params, x)), 'net.fc')
