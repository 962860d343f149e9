"""VGG-16 exactly as TF-slim's `nets/vgg.py` builds it (`vgg_16(x, num_classes=1000)`, inference).

Five blocks of 3x3 SAME convs with biases and ReLU (`conv1/conv1_1` .. `conv5/conv5_3`), each
block closed by a 2x2/2 max-pool; `fc6` a 7x7 VALID conv to 4096, `fc7` and `fc8` 1x1 convs
(dropout is the identity at inference); no batch norm. 224x224 only (at 299 the fc8 map is
3x3 and slim's squeeze fails).

Like every zoo model it takes x in [-1,1] and returns 1001-way logits: inside, x is mapped back
to RGB pixels in [0,255] minus the channel means (slim's `vgg_preprocessing`), and, since the
checkpoint has 1000 classes and no background, a background logit far below any class logit
(softmax weight exactly 0 in float32) is put in front, so NIPS17 label t is logit t as for the
Inception models and cross-entropies equal the 1000-way ones. `num_classes=1000` returns
slim's raw logits.
"""
import tensorflow as tf

from svrens_tf.models import layers

BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
VGG_MEAN = (123.68, 116.78, 103.94)
CHECKPOINT_CLASSES = 1000
BACKGROUND_LOGIT = -1e4


class Vgg16(layers.SlimModel):
    default_scope = 'vgg_16'
    image_size = 224

    def __init__(self, scope=None, num_classes=1001):
        if num_classes not in (CHECKPOINT_CLASSES, CHECKPOINT_CLASSES + 1):
            raise ValueError(f'vgg_16 has {CHECKPOINT_CLASSES} classes; num_classes must be '
                             f'1000 (raw) or 1001 (with a background logit), got {num_classes}')
        super().__init__(scope, num_classes)

    def forward(self, x):
        net = (x + 1.0) * 127.5 - tf.constant(VGG_MEAN)
        for block, (convs, depth) in enumerate(BLOCKS, start=1):
            with self.name_scope(f'conv{block}'):
                for i in range(1, convs + 1):
                    net = self.conv2d(net, depth, 3, f'conv{block}_{i}', normalizer=False)
            net = tf.nn.max_pool2d(net, 2, 2, 'VALID')                   # pool<block>
        net = self.conv2d(net, 4096, 7, 'fc6', padding='VALID', normalizer=False)
        net = self.conv2d(net, 4096, 1, 'fc7', normalizer=False)
        net = self.conv2d(net, CHECKPOINT_CLASSES, 1, 'fc8', normalizer=False, activation=None)
        logits = layers.squeeze_spatial(net)
        if self.num_classes > CHECKPOINT_CLASSES:
            background = tf.fill([tf.shape(logits)[0], 1], BACKGROUND_LOGIT)
            logits = tf.concat([background, logits], axis=1)
        return layers.ModelOutput(logits, None)
