"""Inception-v3 exactly as TF-slim's `nets/inception_v3.py` builds it (inference mode).

Blocks appear in checkpoint order under the checkpoint's scope names, irregular ones included
(`Mixed_5c/Branch_1/Conv_1_0c_5x5`, the 3x3 `Conv2d_1a_1x1` of `Mixed_6a`, the `3x1` conv of
`Mixed_7b` named `0b` and of `Mixed_7c` named `0c`). BN: epsilon 1e-3, no gamma.
"""
import tensorflow as tf

from svrens_tf.models import layers


def _reduced_kernel(x, kernel):
    """slim's `_reduced_kernel_size_for_small_input`: shrink a pooling window to the map."""
    height, width = x.shape[1:3]
    if height is None or width is None:
        return kernel
    return [min(height, kernel[0]), min(width, kernel[1])]


def stem(model, x):
    """Conv2d_1a_3x3 .. MaxPool_5a_3x3, shared with Inception-ResNet-v2 (same names and depths)."""
    net = model.conv2d(x, 32, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
    net = model.conv2d(net, 32, 3, 'Conv2d_2a_3x3', padding='VALID')
    net = model.conv2d(net, 64, 3, 'Conv2d_2b_3x3')
    net = tf.nn.max_pool2d(net, 3, 2, 'VALID')                           # MaxPool_3a_3x3
    net = model.conv2d(net, 80, 1, 'Conv2d_3b_1x1', padding='VALID')
    net = model.conv2d(net, 192, 3, 'Conv2d_4a_3x3', padding='VALID')
    return tf.nn.max_pool2d(net, 3, 2, 'VALID')                          # MaxPool_5a_3x3


class InceptionV3(layers.SlimModel):
    """slim `inception_v3(x, num_classes, is_training=False)`: logits, AuxLogits from Mixed_6e."""
    default_scope = 'InceptionV3'

    def forward(self, x):
        net = stem(self, x)
        net = self.mixed_35x35(net, 'Mixed_5b', pool_depth=32)
        net = self.mixed_35x35(net, 'Mixed_5c', pool_depth=64,
                               branch_1_names=('Conv2d_0b_1x1', 'Conv_1_0c_5x5'))
        net = self.mixed_35x35(net, 'Mixed_5d', pool_depth=64)
        net = self.mixed_6a(net)
        net = self.mixed_17x17(net, 'Mixed_6b', depth_7x7=128)
        net = self.mixed_17x17(net, 'Mixed_6c', depth_7x7=160)
        net = self.mixed_17x17(net, 'Mixed_6d', depth_7x7=160)
        net = self.mixed_17x17(net, 'Mixed_6e', depth_7x7=192)
        aux_logits = self.aux_logits(net)
        net = self.mixed_7a(net)
        net = self.mixed_8x8(net, 'Mixed_7b', branch_1_3x1_name='Conv2d_0b_3x1')
        net = self.mixed_8x8(net, 'Mixed_7c', branch_1_3x1_name='Conv2d_0c_3x1')
        return layers.ModelOutput(self.logits(net), aux_logits)

    def mixed_35x35(self, net, scope, pool_depth,
                    branch_1_names=('Conv2d_0a_1x1', 'Conv2d_0b_5x5')):
        with self.name_scope(scope):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 64, 1, 'Conv2d_0a_1x1')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 48, 1, branch_1_names[0])
                branch_1 = self.conv2d(branch_1, 64, 5, branch_1_names[1])
            with self.name_scope('Branch_2'):
                branch_2 = self.conv2d(net, 64, 1, 'Conv2d_0a_1x1')
                branch_2 = self.conv2d(branch_2, 96, 3, 'Conv2d_0b_3x3')
                branch_2 = self.conv2d(branch_2, 96, 3, 'Conv2d_0c_3x3')
            with self.name_scope('Branch_3'):
                branch_3 = tf.nn.avg_pool2d(net, 3, 1, 'SAME')          # AvgPool_0a_3x3
                branch_3 = self.conv2d(branch_3, pool_depth, 1, 'Conv2d_0b_1x1')
        return tf.concat([branch_0, branch_1, branch_2, branch_3], 3)

    def mixed_6a(self, net):
        with self.name_scope('Mixed_6a'):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 384, 3, 'Conv2d_1a_1x1', stride=2, padding='VALID')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 64, 1, 'Conv2d_0a_1x1')
                branch_1 = self.conv2d(branch_1, 96, 3, 'Conv2d_0b_3x3')
                branch_1 = self.conv2d(branch_1, 96, 3, 'Conv2d_1a_1x1', stride=2, padding='VALID')
            branch_2 = tf.nn.max_pool2d(net, 3, 2, 'VALID')              # Branch_2/MaxPool_1a_3x3
        return tf.concat([branch_0, branch_1, branch_2], 3)

    def mixed_17x17(self, net, scope, depth_7x7):
        with self.name_scope(scope):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 192, 1, 'Conv2d_0a_1x1')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, depth_7x7, 1, 'Conv2d_0a_1x1')
                branch_1 = self.conv2d(branch_1, depth_7x7, [1, 7], 'Conv2d_0b_1x7')
                branch_1 = self.conv2d(branch_1, 192, [7, 1], 'Conv2d_0c_7x1')
            with self.name_scope('Branch_2'):
                branch_2 = self.conv2d(net, depth_7x7, 1, 'Conv2d_0a_1x1')
                branch_2 = self.conv2d(branch_2, depth_7x7, [7, 1], 'Conv2d_0b_7x1')
                branch_2 = self.conv2d(branch_2, depth_7x7, [1, 7], 'Conv2d_0c_1x7')
                branch_2 = self.conv2d(branch_2, depth_7x7, [7, 1], 'Conv2d_0d_7x1')
                branch_2 = self.conv2d(branch_2, 192, [1, 7], 'Conv2d_0e_1x7')
            with self.name_scope('Branch_3'):
                branch_3 = tf.nn.avg_pool2d(net, 3, 1, 'SAME')          # AvgPool_0a_3x3
                branch_3 = self.conv2d(branch_3, 192, 1, 'Conv2d_0b_1x1')
        return tf.concat([branch_0, branch_1, branch_2, branch_3], 3)

    def mixed_7a(self, net):
        with self.name_scope('Mixed_7a'):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 192, 1, 'Conv2d_0a_1x1')
                branch_0 = self.conv2d(branch_0, 320, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 192, 1, 'Conv2d_0a_1x1')
                branch_1 = self.conv2d(branch_1, 192, [1, 7], 'Conv2d_0b_1x7')
                branch_1 = self.conv2d(branch_1, 192, [7, 1], 'Conv2d_0c_7x1')
                branch_1 = self.conv2d(branch_1, 192, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
            branch_2 = tf.nn.max_pool2d(net, 3, 2, 'VALID')              # Branch_2/MaxPool_1a_3x3
        return tf.concat([branch_0, branch_1, branch_2], 3)

    def mixed_8x8(self, net, scope, branch_1_3x1_name):
        with self.name_scope(scope):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 320, 1, 'Conv2d_0a_1x1')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 384, 1, 'Conv2d_0a_1x1')
                branch_1 = tf.concat([self.conv2d(branch_1, 384, [1, 3], 'Conv2d_0b_1x3'),
                                      self.conv2d(branch_1, 384, [3, 1], branch_1_3x1_name)], 3)
            with self.name_scope('Branch_2'):
                branch_2 = self.conv2d(net, 448, 1, 'Conv2d_0a_1x1')
                branch_2 = self.conv2d(branch_2, 384, 3, 'Conv2d_0b_3x3')
                branch_2 = tf.concat([self.conv2d(branch_2, 384, [1, 3], 'Conv2d_0c_1x3'),
                                      self.conv2d(branch_2, 384, [3, 1], 'Conv2d_0d_3x1')], 3)
            with self.name_scope('Branch_3'):
                branch_3 = tf.nn.avg_pool2d(net, 3, 1, 'SAME')          # AvgPool_0a_3x3
                branch_3 = self.conv2d(branch_3, 192, 1, 'Conv2d_0b_1x1')
        return tf.concat([branch_0, branch_1, branch_2, branch_3], 3)

    def aux_logits(self, net):
        with self.name_scope('AuxLogits'):
            aux = tf.nn.avg_pool2d(net, 5, 3, 'VALID')                   # AvgPool_1a_5x5
            aux = self.conv2d(aux, 128, 1, 'Conv2d_1b_1x1')
            aux = self.conv2d(aux, 768, 5, 'Conv2d_2a_5x5', padding='VALID')
            aux = self.conv2d(aux, self.num_classes, 1, 'Conv2d_2b_1x1',
                              normalizer=False, activation=None)
        return layers.squeeze_spatial(aux)

    def logits(self, net):
        with self.name_scope('Logits'):
            net = tf.nn.avg_pool2d(net, _reduced_kernel(net, [8, 8]), 2, 'VALID')  # AvgPool_1a_8x8
            net = self.conv2d(net, self.num_classes, 1, 'Conv2d_1c_1x1',
                              normalizer=False, activation=None)
        return layers.squeeze_spatial(net)
