"""Inception-ResNet-v2 exactly as TF-slim's `nets/inception_resnet_v2.py` builds it (inference).

Stem (Inception-v3's: Conv2d_1a_3x3 .. MaxPool_5a_3x3), Mixed_5b, `Repeat/block35_1..10`
(scale 0.17), Mixed_6a, `Repeat_1/block17_1..20` (scale 0.10; the aux head reads its output,
`PreAuxLogits`), Mixed_7a, `Repeat_2/block8_1..9` (scale 0.20), a final `Block8` (scale 1,
no ReLU), Conv2d_7b_1x1. Each residual unit adds `scale * up` (a 1x1 conv with biases,
`Conv2d_1x1`) to its input, then applies ReLU.
Default slim settings: output_stride 16 (no atrous), align_feature_maps False. BN: epsilon 1e-3,
no gamma.
"""
import tensorflow as tf

from svrens_tf.models import inception_v3, layers


class InceptionResnetV2(layers.SlimModel):
    """slim `inception_resnet_v2(x, num_classes, is_training=False)`: logits and AuxLogits."""
    default_scope = 'InceptionResnetV2'

    def forward(self, x):
        net = inception_v3.stem(self, x)                                 # Conv2d_1a .. MaxPool_5a
        net = self.mixed_5b(net)
        net = self.repeat(net, 'Repeat', 'block35', 10, self.block35, scale=0.17)
        net = self.mixed_6a(net)
        net = self.repeat(net, 'Repeat_1', 'block17', 20, self.block17, scale=0.10)
        aux_logits = self.aux_logits(net)                                # from PreAuxLogits
        net = self.mixed_7a(net)
        net = self.repeat(net, 'Repeat_2', 'block8', 9, self.block8, scale=0.20)
        with self.name_scope('Block8'):
            net = self.block8(net, scale=1.0, relu=False)
        net = self.conv2d(net, 1536, 1, 'Conv2d_7b_1x1')
        return layers.ModelOutput(self.logits(net), aux_logits)

    def repeat(self, net, scope, unit, count, block, scale):
        """slim.repeat: `<scope>/<unit>_1 .. <unit>_<count>`."""
        with self.name_scope(scope):
            for i in range(1, count + 1):
                with self.name_scope(f'{unit}_{i}'):
                    net = block(net, scale)
        return net

    def residual(self, net, mixed, scale, relu=True):
        """net + scale * Conv2d_1x1(mixed), then ReLU unless `relu` is False."""
        up = self.conv2d(mixed, net.shape[-1], 1, 'Conv2d_1x1', normalizer=False, activation=None)
        net = net + scale * up
        return tf.nn.relu(net) if relu else net

    def mixed_5b(self, net):
        with self.name_scope('Mixed_5b'):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 96, 1, 'Conv2d_1x1')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 48, 1, 'Conv2d_0a_1x1')
                branch_1 = self.conv2d(branch_1, 64, 5, 'Conv2d_0b_5x5')
            with self.name_scope('Branch_2'):
                branch_2 = self.conv2d(net, 64, 1, 'Conv2d_0a_1x1')
                branch_2 = self.conv2d(branch_2, 96, 3, 'Conv2d_0b_3x3')
                branch_2 = self.conv2d(branch_2, 96, 3, 'Conv2d_0c_3x3')
            with self.name_scope('Branch_3'):
                branch_3 = tf.nn.avg_pool2d(net, 3, 1, 'SAME')          # AvgPool_0a_3x3
                branch_3 = self.conv2d(branch_3, 64, 1, 'Conv2d_0b_1x1')
        return tf.concat([branch_0, branch_1, branch_2, branch_3], 3)

    def block35(self, net, scale):
        with self.name_scope('Branch_0'):
            branch_0 = self.conv2d(net, 32, 1, 'Conv2d_1x1')
        with self.name_scope('Branch_1'):
            branch_1 = self.conv2d(net, 32, 1, 'Conv2d_0a_1x1')
            branch_1 = self.conv2d(branch_1, 32, 3, 'Conv2d_0b_3x3')
        with self.name_scope('Branch_2'):
            branch_2 = self.conv2d(net, 32, 1, 'Conv2d_0a_1x1')
            branch_2 = self.conv2d(branch_2, 48, 3, 'Conv2d_0b_3x3')
            branch_2 = self.conv2d(branch_2, 64, 3, 'Conv2d_0c_3x3')
        return self.residual(net, tf.concat([branch_0, branch_1, branch_2], 3), scale)

    def mixed_6a(self, net):
        with self.name_scope('Mixed_6a'):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 384, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 256, 1, 'Conv2d_0a_1x1')
                branch_1 = self.conv2d(branch_1, 256, 3, 'Conv2d_0b_3x3')
                branch_1 = self.conv2d(branch_1, 384, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
            branch_2 = tf.nn.max_pool2d(net, 3, 2, 'VALID')              # Branch_2/MaxPool_1a_3x3
        return tf.concat([branch_0, branch_1, branch_2], 3)

    def block17(self, net, scale):
        with self.name_scope('Branch_0'):
            branch_0 = self.conv2d(net, 192, 1, 'Conv2d_1x1')
        with self.name_scope('Branch_1'):
            branch_1 = self.conv2d(net, 128, 1, 'Conv2d_0a_1x1')
            branch_1 = self.conv2d(branch_1, 160, [1, 7], 'Conv2d_0b_1x7')
            branch_1 = self.conv2d(branch_1, 192, [7, 1], 'Conv2d_0c_7x1')
        return self.residual(net, tf.concat([branch_0, branch_1], 3), scale)

    def mixed_7a(self, net):
        with self.name_scope('Mixed_7a'):
            with self.name_scope('Branch_0'):
                branch_0 = self.conv2d(net, 256, 1, 'Conv2d_0a_1x1')
                branch_0 = self.conv2d(branch_0, 384, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
            with self.name_scope('Branch_1'):
                branch_1 = self.conv2d(net, 256, 1, 'Conv2d_0a_1x1')
                branch_1 = self.conv2d(branch_1, 288, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
            with self.name_scope('Branch_2'):
                branch_2 = self.conv2d(net, 256, 1, 'Conv2d_0a_1x1')
                branch_2 = self.conv2d(branch_2, 288, 3, 'Conv2d_0b_3x3')
                branch_2 = self.conv2d(branch_2, 320, 3, 'Conv2d_1a_3x3', stride=2, padding='VALID')
            branch_3 = tf.nn.max_pool2d(net, 3, 2, 'VALID')              # Branch_3/MaxPool_1a_3x3
        return tf.concat([branch_0, branch_1, branch_2, branch_3], 3)

    def block8(self, net, scale, relu=True):
        with self.name_scope('Branch_0'):
            branch_0 = self.conv2d(net, 192, 1, 'Conv2d_1x1')
        with self.name_scope('Branch_1'):
            branch_1 = self.conv2d(net, 192, 1, 'Conv2d_0a_1x1')
            branch_1 = self.conv2d(branch_1, 224, [1, 3], 'Conv2d_0b_1x3')
            branch_1 = self.conv2d(branch_1, 256, [3, 1], 'Conv2d_0c_3x1')
        return self.residual(net, tf.concat([branch_0, branch_1], 3), scale, relu)

    def aux_logits(self, net):
        with self.name_scope('AuxLogits'):
            aux = tf.nn.avg_pool2d(net, 5, 3, 'VALID')                   # Conv2d_1a_3x3 (a pool)
            aux = self.conv2d(aux, 128, 1, 'Conv2d_1b_1x1')
            aux = self.conv2d(aux, 768, 5, 'Conv2d_2a_5x5', padding='VALID')
            return self.fully_connected(layers.squeeze_spatial(aux), self.num_classes, 'Logits')

    def logits(self, net):
        with self.name_scope('Logits'):
            net = tf.reduce_mean(net, [1, 2])                            # AvgPool_1a_8x8
            return self.fully_connected(net, self.num_classes, 'Logits')
