"""Five small, architecturally diverse CIFAR-10 classifiers in backend-agnostic Keras 3.

Each takes float32 [B,32,32,3] in [-1,1] and returns 10 logits. Every layer has an explicit
name, so saved weights load by name. Sizes are kept small (a few to tens of millions of
multiply-adds per image, full resolution only in the stem) so the zoo trains and the transfer
benchmark runs on a CPU.
"""
import keras
from keras import layers

NUM_CLASSES = 10
INPUT_SHAPE = (32, 32, 3)


def _conv_bn_relu(x, filters, name, kernel=3, strides=1):
    x = layers.Conv2D(filters, kernel, strides=strides, padding='same', use_bias=False,
                      name=f'{name}_conv')(x)
    x = layers.BatchNormalization(name=f'{name}_bn')(x)
    return layers.ReLU(name=f'{name}_relu')(x)


def _bn_relu(x, name):
    x = layers.BatchNormalization(name=f'{name}_bn')(x)
    return layers.ReLU(name=f'{name}_relu')(x)


def _stem(inputs, filters):
    """One conv-BN-ReLU at full resolution, then 2x2 max pooling: the rest runs at 16x16 and
    below, which keeps training on a CPU fast (full-resolution layers are memory-bound)."""
    x = _conv_bn_relu(inputs, filters, 'stem')
    return layers.MaxPooling2D(name='stem_pool')(x)


def _head(x):
    x = layers.GlobalAveragePooling2D(name='pool')(x)
    logits = layers.Dense(NUM_CLASSES, name='logits')(x)
    return logits


def vgg(name='vgg'):
    """Plain conv-BN-ReLU stacks with max pooling (VGG-like)."""
    inputs = keras.Input(INPUT_SHAPE, name='image')
    x = _stem(inputs, 24)
    for stage, filters in ((2, 48), (3, 96)):
        x = _conv_bn_relu(x, filters, f'b{stage}c1')
        x = _conv_bn_relu(x, filters, f'b{stage}c2')
        x = layers.MaxPooling2D(name=f'b{stage}_pool')(x)
    x = _conv_bn_relu(x, 192, 'b4c1')
    return keras.Model(inputs, _head(x), name=name)


def _preact_block(x, filters, strides, name):
    """Pre-activation residual unit: BN-ReLU-conv-BN-ReLU-conv plus a (projected) shortcut."""
    pre = _bn_relu(x, f'{name}_pre')
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False,
                                 name=f'{name}_shortcut')(pre)
    y = layers.Conv2D(filters, 3, strides=strides, padding='same', use_bias=False,
                      name=f'{name}_conv1')(pre)
    y = _bn_relu(y, f'{name}_mid')
    y = layers.Conv2D(filters, 3, padding='same', use_bias=False, name=f'{name}_conv2')(y)
    return layers.Add(name=f'{name}_add')([shortcut, y])


def preact_resnet(name='preact_resnet'):
    """Pre-activation ResNet (ResNet-v2 style, like the paper's Res-101) with three stages."""
    inputs = keras.Input(INPUT_SHAPE, name='image')
    x = _stem(inputs, 32)
    x = _preact_block(x, 32, 1, 'stage1')
    x = _preact_block(x, 64, 2, 'stage2')
    x = _preact_block(x, 128, 2, 'stage3')
    x = _bn_relu(x, 'final')
    return keras.Model(inputs, _head(x), name=name)


def _inception_module(x, widths, name):
    """Four parallel branches (1x1, 1x1-3x3, 1x1-3x3-3x3, pool-1x1) concatenated."""
    w1, w3, w5, wp = widths
    b1 = _conv_bn_relu(x, w1, f'{name}_b1', kernel=1)
    b3 = _conv_bn_relu(_conv_bn_relu(x, w3 // 2, f'{name}_b3a', kernel=1), w3, f'{name}_b3b')
    b5 = _conv_bn_relu(x, w5 // 2, f'{name}_b5a', kernel=1)
    b5 = _conv_bn_relu(_conv_bn_relu(b5, w5, f'{name}_b5b'), w5, f'{name}_b5c')
    bp = layers.MaxPooling2D(3, strides=1, padding='same', name=f'{name}_bp_pool')(x)
    bp = _conv_bn_relu(bp, wp, f'{name}_bp', kernel=1)
    return layers.Concatenate(name=f'{name}_concat')([b1, b3, b5, bp])


def _inception_reduction(x, filters, name):
    """Halve the resolution with a strided 3x3 branch beside a max-pool branch."""
    conv = _conv_bn_relu(x, filters, f'{name}_conv', strides=2)
    pool = layers.MaxPooling2D(3, strides=2, padding='same', name=f'{name}_pool')(x)
    return layers.Concatenate(name=f'{name}_concat')([conv, pool])


def inception(name='inception'):
    """Inception-like multi-branch network (like the paper's Inc-v3/v4 surrogates)."""
    inputs = keras.Input(INPUT_SHAPE, name='image')
    x = _stem(inputs, 32)
    x = _inception_module(x, (16, 32, 16, 16), 'mix1')
    x = _inception_reduction(x, 48, 'red1')
    x = _inception_module(x, (32, 64, 32, 32), 'mix2')
    x = _inception_reduction(x, 96, 'red2')
    x = _inception_module(x, (64, 96, 48, 48), 'mix3')
    return keras.Model(inputs, _head(x), name=name)


def _separable(x, filters, strides, name):
    x = layers.DepthwiseConv2D(3, strides=strides, padding='same', use_bias=False,
                               name=f'{name}_dw')(x)
    x = _bn_relu(x, f'{name}_dw')
    return _conv_bn_relu(x, filters, f'{name}_pw', kernel=1)


def separable(name='separable'):
    """Depthwise-separable convolutions throughout (MobileNet-like)."""
    inputs = keras.Input(INPUT_SHAPE, name='image')
    x = _stem(inputs, 32)
    for i, (filters, strides) in enumerate(((96, 1), (96, 1), (192, 2), (192, 1), (384, 2),
                                            (384, 1))):
        x = _separable(x, filters, strides, f'sep{i + 1}')
    return keras.Model(inputs, _head(x), name=name)


def _dense_block(x, layers_count, growth, name):
    """Each layer (BN-ReLU-3x3 conv) sees the concatenation of all earlier feature maps."""
    for i in range(layers_count):
        y = _bn_relu(x, f'{name}_l{i}')
        y = layers.Conv2D(growth, 3, padding='same', use_bias=False, name=f'{name}_l{i}_conv')(y)
        x = layers.Concatenate(name=f'{name}_l{i}_concat')([x, y])
    return x


def _transition(x, name):
    x = _bn_relu(x, name)
    x = layers.Conv2D(x.shape[-1] // 2, 1, use_bias=False, name=f'{name}_conv')(x)
    return layers.AveragePooling2D(2, name=f'{name}_pool')(x)


def densenet(name='densenet'):
    """DenseNet-like: dense blocks with growing width, joined by compressing transitions."""
    inputs = keras.Input(INPUT_SHAPE, name='image')
    x = _stem(inputs, 32)
    x = _dense_block(x, 4, 16, 'block1')
    x = _transition(x, 'trans1')
    x = _dense_block(x, 4, 24, 'block2')
    x = _transition(x, 'trans2')
    x = _dense_block(x, 4, 32, 'block3')
    x = _bn_relu(x, 'final')
    return keras.Model(inputs, _head(x), name=name)


BUILDERS = {f.__name__: f for f in (vgg, preact_resnet, inception, separable, densenet)}


def build(name):
    """A fresh, untrained model by zoo name (see BUILDERS)."""
    if name not in BUILDERS:
        raise ValueError(f'unknown CIFAR-10 model {name!r}; choose from {sorted(BUILDERS)}')
    return BUILDERS[name]()


def load(name, weights_dir):
    """The model `name` with its trained weights `<weights_dir>/<name>.weights.h5`."""
    model = build(name)
    model.load_weights(f'{weights_dir}/{name}.weights.h5')
    return model
