"""HGD's Inception-ResNet-v2 member (`inres.py` + `inceptionresnet.py`, lfz/Guided-Denoise).

Cadene's pretrainedmodels layout: `BasicConv2d` = conv (no bias) + BatchNorm eps 1e-3 + ReLU;
Block35 / Block17 / Block8 add `scale * conv2d(concat(branches))` (a 1x1 conv with bias) to
their input, then ReLU (scales 0.17 / 0.10 / 0.20; the final Block8 scale 1.0 without ReLU);
no padding on stride-2 convs and max pools; `AvgPool2d(8)` on 8x8 = the global mean; a
1001-way `classif` whose background column is dropped. Only `denoise.0` (on the input) is a
denoiser. Input in TF's normalisation. Keys as in `denoise_inres_014.ckpt`.
"""
import tensorflow as tf

from svrens_tf.defenses.hgd_nets import member
from svrens_tf.defenses.hgd_nets.inception_v3 import basic_conv, basic_conv_chain, stem
from svrens_tf.defenses.hgd_nets.torch_layers import avg_pool_3x3_exclude_pad, max_pool


def mixed_5b(params, x, key):
    return tf.concat([
        basic_conv(params, x, f'{key}.branch0'),
        basic_conv_chain(params, x, f'{key}.branch1', [(1, 0), (1, 2)]),
        basic_conv_chain(params, x, f'{key}.branch2', [(1, 0), (1, 1), (1, 1)]),
        basic_conv(params, avg_pool_3x3_exclude_pad(x), f'{key}.branch3.1')], axis=-1)


def _residual(params, x, key, branches, scale, relu=True):
    out = params.conv(tf.concat(branches, axis=-1), f'{key}.conv2d', bias=True) * scale + x
    return tf.nn.relu(out) if relu else out


def block35(params, x, key):
    return _residual(params, x, key, [
        basic_conv(params, x, f'{key}.branch0'),
        basic_conv_chain(params, x, f'{key}.branch1', [(1, 0), (1, 1)]),
        basic_conv_chain(params, x, f'{key}.branch2', [(1, 0), (1, 1), (1, 1)])], 0.17)


def mixed_6a(params, x, key):
    return tf.concat([
        basic_conv(params, x, f'{key}.branch0', stride=2),
        basic_conv_chain(params, x, f'{key}.branch1', [(1, 0), (1, 1), (2, 0)]),
        max_pool(x, 3, 2)], axis=-1)


def block17(params, x, key):
    return _residual(params, x, key, [
        basic_conv(params, x, f'{key}.branch0'),
        basic_conv_chain(params, x, f'{key}.branch1', [(1, 0), (1, (0, 3)), (1, (3, 0))])], 0.10)


def mixed_7a(params, x, key):
    return tf.concat([
        basic_conv_chain(params, x, f'{key}.branch0', [(1, 0), (2, 0)]),
        basic_conv_chain(params, x, f'{key}.branch1', [(1, 0), (2, 0)]),
        basic_conv_chain(params, x, f'{key}.branch2', [(1, 0), (1, 1), (2, 0)]),
        max_pool(x, 3, 2)], axis=-1)


def block8(params, x, key, scale=0.20, relu=True):
    return _residual(params, x, key, [
        basic_conv(params, x, f'{key}.branch0'),
        basic_conv_chain(params, x, f'{key}.branch1', [(1, 0), (1, (0, 1)), (1, (1, 0))])], scale, relu)


def features(params, x):
    """Normalised image -> conv2d_7b [B,8,8,1536]."""
    x = mixed_5b(params, stem(params, x), 'net.mixed_5b')
    for i in range(10):
        x = block35(params, x, f'net.repeat.{i}')
    x = mixed_6a(params, x, 'net.mixed_6a')
    for i in range(20):
        x = block17(params, x, f'net.repeat_1.{i}')
    x = mixed_7a(params, x, 'net.mixed_7a')
    for i in range(9):
        x = block8(params, x, f'net.repeat_2.{i}')
    x = block8(params, x, 'net.block8', scale=1.0, relu=False)
    return basic_conv(params, x, 'net.conv2d_7b')


class InceptionResNetV2(member.Member):
    key = 'inres'
    released_file = 'denoise_inres_014.ckpt'
    normalisation = member.TF_NORMALISATION
    denoiser_prefix = 'net.denoise.0'
    features = staticmethod(features)
    classifier = 'net.classif'
