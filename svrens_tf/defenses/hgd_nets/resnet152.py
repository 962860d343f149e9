"""HGD's ResNet-152 member (`res152_wide.py` + `resnet.py` of lfz/Guided-Denoise `nips_deploy/`),
and the torchvision-style ResNet trunk it shares with ResNeXt-101 and Cohen et al.'s ResNet-50.

torchvision's layout: conv1 7x7/2 pad 3 + BN + ReLU, max pool 3/2 pad 1 (both padded
symmetrically: 299 -> 150 -> 75), post-activation bottleneck stages (1x1, 3x3 carrying the
stride, 1x1; a 1x1 conv + BN shortcut with the stride on each stage's first block), BatchNorm
eps 1e-5, global mean, 1000-way `fc`. ResNet-152: stages [3, 8, 36, 3] (75 -> 75 -> 38 -> 19
-> 10). Only `denoise.0` (on the input) is a denoiser; the `denoise_relu` after each layer is a
no-op after the block's ReLU. Input in torchvision's normalisation. Keys as in
`denoise_res_015.ckpt`.
"""
import tensorflow as tf

from svrens_tf.defenses.hgd_nets import member
from svrens_tf.defenses.hgd_nets.torch_layers import max_pool

BN_EPS = 1e-5
BLOCKS = (3, 8, 36, 3)
# (conv, BN) keys inside a bottleneck: three on the residual branch, then the shortcut's
TORCHVISION_BLOCK = (('conv1', 'bn1'), ('conv2', 'bn2'), ('conv3', 'bn3'),
                     ('downsample.0', 'downsample.1'))


def bottleneck(params, x, key, stride, shortcut, names=TORCHVISION_BLOCK):
    """relu(branch(x) + shortcut(x)); a grouped 3x3 conv comes from its kernel's shape."""
    def conv_bn(x, i, stride=1, padding=0, relu=True):
        conv, bn = names[i]
        return params.conv(x, f'{key}.{conv}', stride, padding, bn=f'{key}.{bn}', eps=BN_EPS,
                           relu=relu)
    out = conv_bn(x, 0)
    out = conv_bn(out, 1, stride, 1)
    out = conv_bn(out, 2, relu=False)
    if shortcut:
        x = conv_bn(x, 3, stride, relu=False)
    return tf.nn.relu(out + x)


def resnet_trunk(params, x, stem, block_key, blocks, names=TORCHVISION_BLOCK):
    """Stem (`stem` = (conv key, BN key)) + max pool + bottleneck stages of `blocks` blocks;
    `block_key(stage, block)` names a block (stages from 0)."""
    conv, bn = stem
    x = params.conv(x, conv, 2, 3, bn=bn, eps=BN_EPS, relu=True)
    x = max_pool(x, 3, 2, padding=1)
    for stage, count in enumerate(blocks):
        for block in range(count):
            stride = 2 if stage > 0 and block == 0 else 1
            x = bottleneck(params, x, block_key(stage, block), stride, block == 0, names)
    return x


def features(params, x):
    """Normalised image -> layer4 [B,10,10,2048]."""
    return resnet_trunk(params, x, ('net.conv1', 'net.bn1'),
                        lambda stage, block: f'net.layer{stage + 1}.{block}', BLOCKS)


class ResNet152(member.Member):
    key = 'res152'
    released_file = 'denoise_res_015.ckpt'
    normalisation = member.TORCH_NORMALISATION
    denoiser_prefix = 'net.denoise.0'
    features = staticmethod(features)
    classifier = 'net.fc'
