"""Inception-v4 exactly as TF-slim's `nets/inception_v4.py` builds it (inference mode).

Stem (Mixed_3a..5a), 4 x Inception-A (Mixed_5b..5e), Reduction-A (Mixed_6a), 7 x Inception-B
(Mixed_6b..6h), Reduction-B (Mixed_7a), 3 x Inception-C (Mixed_7b..7d). The aux head's 5x5 conv
is named `Conv2d_2a` (no suffix) and its classifier `Aux_logits`; the main classifier is the
fully-connected `Logits/Logits`. BN: epsilon 1e-3, no gamma.
"""
import tensorflow as tf

from svrens_tf.models import layers


class InceptionV4(layers.SlimModel):
    """slim `inception_v4(x, num_classes, is_training=False)`: logits, AuxLogits from Mixed_6h."""
    default_scope = 'InceptionV4'

    def forward(self, x):
        net = self.conv2d(x, 32, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
        net = self.conv2d(net, 32, 3, 'Conv2d_2a_3x3', padding='VALID')
        net = self.conv2d(net, 64, 3, 'Conv2d_2b_3x3')
        net = self.mixed_3a(net)
        net = self.mixed_4a(net)
        net = self.mixed_5a(net)
        for block in 'bcde':
            net = self.inception_a(net, 'Mixed_5' + block)
        net = self.reduction_a(net)
        for block in 'bcdefgh':
            net = self.inception_b(net, 'Mixed_6' + block)
        aux_logits = self.aux_logits(net)
        net = self.reduction_b(net)
        for block in 'bcd':
            net = self.inception_c(net, 'Mixed_7' + block)
        return layers.ModelOutput(self.logits(net), aux_logits)

    def mixed_3a(self, net):
        with self.name_scope('Mixed_3a'):
            branch_0 = tf.nn.max_pool2d(net, 3, 2, 'VALID')              # Branch_0/MaxPool_0a_3x3
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 96, 3, 'Conv2d_0a_3x3', stride=2, padding='VALID')
        return tf.concat([branch_0, branch_1], 3)

    def mixed_4a(self, net):
        with self.name_scope('Mixed_4a'):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 64, 1, 'Conv2d_0a_1x1')
                branch_0 = self.conv2d(branch_0, 96, 3, 'Conv2d_1a_3x3', padding='VALID')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 64, 1, 'Conv2d_0a_1x1')
                branch_1 = self.conv2d(branch_1, 64, [1, 7], 'Conv2d_0b_1x7')
                branch_1 = self.conv2d(branch_1, 64, [7, 1], 'Conv2d_0c_7x1')
                branch_1 = self.conv2d(branch_1, 96, 3, 'Conv2d_1a_3x3', padding='VALID')
        return tf.concat([branch_0, branch_1], 3)

    def mixed_5a(self, net):
        with self.name_scope('Mixed_5a'):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 192, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
            branch_1 = tf.nn.max_pool2d(net, 3, 2, 'VALID')              # Branch_1/MaxPool_1a_3x3
        return tf.concat([branch_0, branch_1], 3)

    def inception_a(self, net, scope):
        with self.name_scope(scope):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 96, 1, 'Conv2d_0a_1x1')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 64, 1, 'Conv2d_0a_1x1')
                branch_1 = self.conv2d(branch_1, 96, 3, 'Conv2d_0b_3x3')
            with self.name_scope('Branch_2'):
                branch_2 = self.conv2d(net, 64, 1, 'Conv2d_0a_1x1')
                branch_2 = self.conv2d(branch_2, 96, 3, 'Conv2d_0b_3x3')
                branch_2 = self.conv2d(branch_2, 96, 3, 'Conv2d_0c_3x3')
            with self.name_scope('Branch_3'):
                branch_3 = tf.nn.avg_pool2d(net, 3, 1, 'SAME')          # AvgPool_0a_3x3
                branch_3 = self.conv2d(branch_3, 96, 1, 'Conv2d_0b_1x1')
        return tf.concat([branch_0, branch_1, branch_2, branch_3], 3)

    def reduction_a(self, net):
        with self.name_scope('Mixed_6a'):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 384, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 192, 1, 'Conv2d_0a_1x1')
                branch_1 = self.conv2d(branch_1, 224, 3, 'Conv2d_0b_3x3')
                branch_1 = self.conv2d(branch_1, 256, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
            branch_2 = tf.nn.max_pool2d(net, 3, 2, 'VALID')              # Branch_2/MaxPool_1a_3x3
        return tf.concat([branch_0, branch_1, branch_2], 3)

    def inception_b(self, net, scope):
        with self.name_scope(scope):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 384, 1, 'Conv2d_0a_1x1')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 192, 1, 'Conv2d_0a_1x1')
                branch_1 = self.conv2d(branch_1, 224, [1, 7], 'Conv2d_0b_1x7')
                branch_1 = self.conv2d(branch_1, 256, [7, 1], 'Conv2d_0c_7x1')
            with self.name_scope('Branch_2'):
                branch_2 = self.conv2d(net, 192, 1, 'Conv2d_0a_1x1')
                branch_2 = self.conv2d(branch_2, 192, [7, 1], 'Conv2d_0b_7x1')
                branch_2 = self.conv2d(branch_2, 224, [1, 7], 'Conv2d_0c_1x7')
                branch_2 = self.conv2d(branch_2, 224, [7, 1], 'Conv2d_0d_7x1')
                branch_2 = self.conv2d(branch_2, 256, [1, 7], 'Conv2d_0e_1x7')
            with self.name_scope('Branch_3'):
                branch_3 = tf.nn.avg_pool2d(net, 3, 1, 'SAME')          # AvgPool_0a_3x3
                branch_3 = self.conv2d(branch_3, 128, 1, 'Conv2d_0b_1x1')
        return tf.concat([branch_0, branch_1, branch_2, branch_3], 3)

    def reduction_b(self, net):
        with self.name_scope('Mixed_7a'):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 192, 1, 'Conv2d_0a_1x1')
                branch_0 = self.conv2d(branch_0, 192, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 256, 1, 'Conv2d_0a_1x1')
                branch_1 = self.conv2d(branch_1, 256, [1, 7], 'Conv2d_0b_1x7')
                branch_1 = self.conv2d(branch_1, 320, [7, 1], 'Conv2d_0c_7x1')
                branch_1 = self.conv2d(branch_1, 320, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
            branch_2 = tf.nn.max_pool2d(net, 3, 2, 'VALID')              # Branch_2/MaxPool_1a_3x3
        return tf.concat([branch_0, branch_1, branch_2], 3)

    def inception_c(self, net, scope):
        with self.name_scope(scope):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 256, 1, 'Conv2d_0a_1x1')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 384, 1, 'Conv2d_0a_1x1')
                branch_1 = tf.concat([self.conv2d(branch_1, 256, [1, 3], 'Conv2d_0b_1x3'),
                                      self.conv2d(branch_1, 256, [3, 1], 'Conv2d_0c_3x1')], 3)
            with self.name_scope('Branch_2'):
                branch_2 = self.conv2d(net, 384, 1, 'Conv2d_0a_1x1')
                branch_2 = self.conv2d(branch_2, 448, [3, 1], 'Conv2d_0b_3x1')
                branch_2 = self.conv2d(branch_2, 512, [1, 3], 'Conv2d_0c_1x3')
                branch_2 = tf.concat([self.conv2d(branch_2, 256, [1, 3], 'Conv2d_0d_1x3'),
                                      self.conv2d(branch_2, 256, [3, 1], 'Conv2d_0e_3x1')], 3)
            with self.name_scope('Branch_3'):
                branch_3 = tf.nn.avg_pool2d(net, 3, 1, 'SAME')          # AvgPool_0a_3x3
                branch_3 = self.conv2d(branch_3, 256, 1, 'Conv2d_0b_1x1')
        return tf.concat([branch_0, branch_1, branch_2, branch_3], 3)

    def aux_logits(self, net):
        with self.name_scope('AuxLogits'):
            aux = tf.nn.avg_pool2d(net, 5, 3, 'VALID')                   # AvgPool_1a_5x5
            aux = self.conv2d(aux, 128, 1, 'Conv2d_1b_1x1')
            aux = self.conv2d(aux, 768, 5, 'Conv2d_2a', padding='VALID')
            return self.fully_connected(layers.squeeze_spatial(aux), self.num_classes, 'Aux_logits')

    def logits(self, net):
        with self.name_scope('Logits'):
            net = tf.reduce_mean(net, [1, 2])                            # AvgPool_1a over the map
            return self.fully_connected(net, self.num_classes, 'Logits')
