"""HGD's ResNet-152 member (`res152_wide.py` + `resnet.py` of lfz/Guided-Denoise `nips_deploy/`).

torchvision's ResNet-152 layout (post-activation bottlenecks [3, 8, 36, 3], stride on the 3x3
`conv2`, `downsample` = 1x1 conv + BN on each layer's first block), BatchNorm eps 1e-5, conv1
7x7/2 pad 3 and max pool 3/2 pad 1 padded symmetrically (299 -> 150 -> 75 -> 75 -> 38 -> 19
-> 10), global mean, 1000-way `fc`. Only `denoise.0` (on the input) is a denoiser; the
`denoise_relu` after each layer is a no-op after the block's ReLU. Input in torchvision's
normalisation. Keys as in `denoise_res_015.ckpt`.
"""
import tensorflow as tf

from svrens_tf.defenses.hgd_nets import member
from svrens_tf.defenses.hgd_nets.torch_layers import global_mean, max_pool

BN_EPS = 1e-5
BLOCKS = (3, 8, 36, 3)


def bottleneck(params, x, key, stride, downsample):
    def conv_bn(x, conv, bn, stride=1, padding=0, relu=True):
        return params.conv(x, f'{key}.{conv}', stride, padding, bn=f'{key}.{bn}', eps=BN_EPS,
                           relu=relu)
    out = conv_bn(x, 'conv1', 'bn1')
    out = conv_bn(out, 'conv2', 'bn2', stride, 1)
    out = conv_bn(out, 'conv3', 'bn3', relu=False)
    if downsample:
        x = conv_bn(x, 'downsample.0', 'downsample.1', stride, relu=False)
    return tf.nn.relu(out + x)


def features(params, x):
    """Normalised image -> layer4 [B,10,10,2048]."""
    x = params.conv(x, 'net.conv1', 2, 3, bn='net.bn1', eps=BN_EPS, relu=True)
    x = max_pool(x, 3, 2, padding=1)
    for layer, blocks in enumerate(BLOCKS):
        for block in range(blocks):
            stride = 2 if layer > 0 and block == 0 else 1
            x = bottleneck(params, x, f'net.layer{layer + 1}.{block}', stride, block == 0)
    return x


class ResNet152(member.Member):
    key = 'res152'
    released_file = 'denoise_res_015.ckpt'
    normalisation = member.TORCH_NORMALISATION
    denoiser_prefix = 'net.denoise.0'

    def classify(self, x):
        return self.params.linear(global_mean(features(self.params, x)), 'net.fc')
