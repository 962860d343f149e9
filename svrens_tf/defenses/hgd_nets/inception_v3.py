"""HGD's Inception-v3 member (`v3.py` + `inception.py` of lfz/Guided-Denoise `nips_deploy/`).

torchvision's Inception-v3 with TF-slim's branch order (branch0..3) and no aux head: every
`BasicConv2d` is conv (no bias) + BatchNorm eps 1e-3 + ReLU; stride-2 convs and max pools have
no padding (299 -> 149 -> 147 -> 73 -> 71 -> 35 -> 17 -> 8); pool branches average 3x3 over
valid pixels only; a 1001-way `classif` whose background column is dropped. Input in TF's
normalisation, (x - 0.5) / 0.5. State-dict keys `net.<module>...` as in `denoise_incepv3_012.ckpt`.
"""
import tensorflow as tf

from svrens_tf.defenses.hgd_nets import member
from svrens_tf.defenses.hgd_nets.torch_layers import avg_pool_3x3_exclude_pad, max_pool

BN_EPS = 1e-3


def basic_conv(params, x, key, stride=1, padding=0):
    return params.conv(x, f'{key}.conv', stride, padding, bn=f'{key}.bn', eps=BN_EPS, relu=True)


def basic_conv_chain(params, x, key, layers):
    """nn.Sequential of BasicConv2d: `layers` = [(stride, padding), ...] under `key.<i>`."""
    for i, (stride, padding) in enumerate(layers):
        x = basic_conv(params, x, f'{key}.{i}', stride, padding)
    return x


def _pool_branch(params, x, key):
    return basic_conv(params, avg_pool_3x3_exclude_pad(x), f'{key}.1')


def inception_a(params, x, key):
    return tf.concat([
        basic_conv_chain(params, x, f'{key}.branch0', [(1, 0)]),
        basic_conv_chain(params, x, f'{key}.branch1', [(1, 0), (1, 2)]),
        basic_conv_chain(params, x, f'{key}.branch2', [(1, 0), (1, 1), (1, 1)]),
        _pool_branch(params, x, f'{key}.branch3')], axis=-1)


def inception_b(params, x, key):
    return tf.concat([
        basic_conv_chain(params, x, f'{key}.branch0', [(2, 0)]),
        basic_conv_chain(params, x, f'{key}.branch1', [(1, 0), (1, 1), (2, 0)]),
        max_pool(x, 3, 2)], axis=-1)


def inception_c(params, x, key):
    row, col = (0, 3), (3, 0)
    return tf.concat([
        basic_conv_chain(params, x, f'{key}.branch0', [(1, 0)]),
        basic_conv_chain(params, x, f'{key}.branch1', [(1, 0), (1, row), (1, col)]),
        basic_conv_chain(params, x, f'{key}.branch2', [(1, 0), (1, col), (1, row), (1, col), (1, row)]),
        _pool_branch(params, x, f'{key}.branch3')], axis=-1)


def inception_d(params, x, key):
    return tf.concat([
        basic_conv_chain(params, x, f'{key}.branch0', [(1, 0), (2, 0)]),
        basic_conv_chain(params, x, f'{key}.branch1', [(1, 0), (1, (0, 3)), (1, (3, 0)), (2, 0)]),
        max_pool(x, 3, 2)], axis=-1)


def inception_e(params, x, key):
    b1 = basic_conv(params, x, f'{key}.branch1_0')
    b2 = basic_conv(params, x, f'{key}.branch2_0')
    b2 = basic_conv(params, b2, f'{key}.branch2_1', padding=1)
    return tf.concat([
        basic_conv_chain(params, x, f'{key}.branch0', [(1, 0)]),
        basic_conv(params, b1, f'{key}.branch1_1', padding=(0, 1)),
        basic_conv(params, b1, f'{key}.branch1_2', padding=(1, 0)),
        basic_conv(params, b2, f'{key}.branch2_2', padding=(0, 1)),
        basic_conv(params, b2, f'{key}.branch2_3', padding=(1, 0)),
        _pool_branch(params, x, f'{key}.branch3')], axis=-1)


def stem(params, x):
    """299 -> 35: conv2d_1a (3x3/2) ... conv2d_4a, two max pools (also Inception-ResNet-v2's)."""
    x = basic_conv(params, x, 'net.conv2d_1a', stride=2)
    x = basic_conv(params, x, 'net.conv2d_2a')
    x = basic_conv(params, x, 'net.conv2d_2b', padding=1)
    x = max_pool(x, 3, 2)
    x = basic_conv(params, x, 'net.conv2d_3b')
    x = basic_conv(params, x, 'net.conv2d_4a')
    return max_pool(x, 3, 2)


def features(params, x):
    """Normalised image -> Mixed_7c [B,8,8,2048]."""
    x = stem(params, x)
    for name in ('Mixed_5b', 'Mixed_5c', 'Mixed_5d'):
        x = inception_a(params, x, f'net.{name}')
    x = inception_b(params, x, 'net.Mixed_6a')
    for name in ('Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e'):
        x = inception_c(params, x, f'net.{name}')
    x = inception_d(params, x, 'net.Mixed_7a')
    for name in ('Mixed_7b', 'Mixed_7c'):
        x = inception_e(params, x, f'net.{name}')
    return x


class InceptionV3(member.Member):
    key = 'v3'
    released_file = 'denoise_incepv3_012.ckpt'
    normalisation = member.TF_NORMALISATION
    denoiser_prefix = 'net.denoise'
    features = staticmethod(features)
    classifier = 'net.classif'
