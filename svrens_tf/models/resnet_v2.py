"""ResNet-v2 (pre-activation) exactly as TF-slim's `nets/resnet_v2.py` builds it (inference).

Called as the attack codebases call it (`global_pool=True`, `spatial_squeeze=True`): root
`conv1` (7x7/2, biases, no BN/ReLU, symmetric padding) and `pool1` (3x3/2 max-pool, TF `SAME`),
four blocks of `unit_<i>/bottleneck_v2` units with the stride in each block's last unit
(block4: stride 1), a `postnorm` BN+ReLU, the global mean and a 1x1 conv `logits`.
BN: epsilon 1e-5, with gamma. There is no aux head (`aux_logits` is None).
"""
import tensorflow as tf

from svrens_tf.models import layers

BLOCK_BASE_DEPTHS = (64, 128, 256, 512)
BLOCK_STRIDES = (2, 2, 2, 1)


class ResnetV2(layers.SlimModel):
    """slim `resnet_v2(x, blocks, num_classes, is_training=False)`; subclasses set `block_units`."""
    bn_epsilon = 1e-5
    bn_scale = True
    block_units = None

    def forward(self, x):
        net = self.conv2d(x, 64, 7, 'conv1', stride=2, padding=layers.symmetric_padding(7),
                          normalizer=False, activation=None)
        net = tf.nn.max_pool2d(net, 3, 2, 'SAME')                        # pool1
        for block, (base_depth, units, stride) in enumerate(
                zip(BLOCK_BASE_DEPTHS, self.block_units, BLOCK_STRIDES), start=1):
            with self.name_scope(f'block{block}'):
                for unit in range(1, units + 1):
                    with self.name_scope(f'unit_{unit}/bottleneck_v2'):
                        net = self.bottleneck(net, 4 * base_depth, base_depth,
                                              stride if unit == units else 1)
        net = self.batch_norm(net, 'postnorm', activation=tf.nn.relu)
        net = tf.reduce_mean(net, [1, 2], keepdims=True)                 # pool5
        logits = self.conv2d(net, self.num_classes, 1, 'logits', normalizer=False, activation=None)
        return layers.ModelOutput(layers.squeeze_spatial(logits), None)

    def bottleneck(self, net, depth, depth_bottleneck, stride):
        """Pre-activation unit: shortcut (subsampled input, or 1x1 conv of the pre-activation)
        plus conv1 (1x1) -> conv2 (3x3, strided) -> conv3 (1x1, biases, no BN)."""
        preact = self.batch_norm(net, 'preact', activation=tf.nn.relu)
        if depth == net.shape[-1]:
            shortcut = net[:, ::stride, ::stride, :]                     # 1x1 max-pool subsample
        else:
            shortcut = self.conv2d(preact, depth, 1, 'shortcut', stride=stride,
                                   normalizer=False, activation=None)
        residual = self.conv2d(preact, depth_bottleneck, 1, 'conv1')
        residual = self.conv2d(residual, depth_bottleneck, 3, 'conv2', stride=stride,
                               padding='SAME' if stride == 1 else layers.symmetric_padding(3))
        residual = self.conv2d(residual, depth, 1, 'conv3', normalizer=False, activation=None)
        return shortcut + residual


class ResnetV2_50(ResnetV2):
    default_scope = 'resnet_v2_50'
    block_units = (3, 4, 6, 3)


class ResnetV2_101(ResnetV2):
    default_scope = 'resnet_v2_101'
    block_units = (3, 4, 23, 3)


class ResnetV2_152(ResnetV2):
    default_scope = 'resnet_v2_152'
    block_units = (3, 8, 36, 3)
