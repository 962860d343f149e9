"""SlimModel building blocks against numpy re-derivations, on tiny models (no ../shared needed)."""
import numpy as np
import pytest
import tensorflow as tf

from svrens_tf.models import layers


def conv_numpy(x, w, stride, pad):
    """float64 cross-correlation of NHWC x with HWIO w after zero padding `pad` ((t, b), (l, r))."""
    x = np.pad(x.astype(np.float64), [(0, 0), pad[0], pad[1], (0, 0)])
    kh, kw = w.shape[:2]
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, w.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out


class ConvBN(layers.SlimModel):
    """One slim conv + BN + ReLU and one conv with biases, named like a checkpoint."""
    default_scope = 'Net'
    padding = 'VALID'
    stride = 2

    def forward(self, x):
        net = self.conv2d(x, 5, 3, 'Conv2d_1a_3x3', stride=self.stride, padding=self.padding)
        net = self.conv2d(net, self.num_classes, 1, 'Logits', normalizer=False, activation=None)
        return layers.ModelOutput(tf.reduce_mean(net, [1, 2]), None)


class ConvBNGamma(ConvBN):
    bn_scale = True
    bn_epsilon = 1e-5


class ResnetRoot(ConvBN):
    """ResNet's strided conv: symmetric explicit padding, not TF SAME."""
    padding = layers.symmetric_padding(3)


def randomize(model, rng):
    """Random weights, positive variances; returns {name: float64 array}."""
    values = {}
    for name, var in model.variables_by_name.items():
        value = rng.normal(size=var.shape)
        if name.endswith('moving_variance') or name.endswith('gamma'):
            value = rng.uniform(0.5, 1.5, size=var.shape)
        var.assign(value.astype(np.float32))
        values[name] = var.numpy().astype(np.float64)
    return values


def expected_logits(model, values, x, pad):
    bn = 'Net/Conv2d_1a_3x3/BatchNorm/'
    scale = 1 / np.sqrt(values[bn + 'moving_variance'] + model.bn_epsilon)
    if model.bn_scale:
        scale = scale * values[bn + 'gamma']
    y = conv_numpy(x, values['Net/Conv2d_1a_3x3/weights'], model.stride, pad)
    y = np.maximum((y - values[bn + 'moving_mean']) * scale + values[bn + 'beta'], 0)
    y = np.tensordot(y, values['Net/Logits/weights'][0, 0], axes=([3], [0]))
    return (y + values['Net/Logits/biases']).mean(axis=(1, 2))


@pytest.mark.parametrize('cls, pad', [
    (ConvBN, ((0, 0), (0, 0))),
    (ConvBNGamma, ((0, 0), (0, 0))),
    (ResnetRoot, ((1, 1), (1, 1))),
])
def test_folded_conv_batch_norm_matches_unfolded_formula(cls, pad, rng):
    model = cls(num_classes=3).build()
    values = randomize(model, rng)
    x = rng.uniform(-1, 1, (2, 9, 9, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x).logits, expected_logits(model, values, x, pad),
                               rtol=1e-4, atol=1e-4)


def test_variables_are_named_like_the_checkpoint():
    model = ConvBNGamma(scope='Renamed', num_classes=3).build()
    assert {v.name.split(':')[0]: tuple(v.shape) for v in model.variables} == {
        'Renamed/Conv2d_1a_3x3/weights': (3, 3, 3, 5),
        'Renamed/Conv2d_1a_3x3/BatchNorm/beta': (5,),
        'Renamed/Conv2d_1a_3x3/BatchNorm/gamma': (5,),
        'Renamed/Conv2d_1a_3x3/BatchNorm/moving_mean': (5,),
        'Renamed/Conv2d_1a_3x3/BatchNorm/moving_variance': (5,),
        'Renamed/Logits/weights': (1, 1, 5, 3),
        'Renamed/Logits/biases': (3,),
    }


def test_symmetric_padding_is_slims_conv2d_same():
    assert layers.symmetric_padding(7) == [[0, 0], [3, 3], [3, 3], [0, 0]]
    assert layers.symmetric_padding(3) == [[0, 0], [1, 1], [1, 1], [0, 0]]
    assert layers.symmetric_padding(4) == [[0, 0], [1, 2], [1, 2], [0, 0]]


def test_eager_call_and_traced_call_agree_in_value_and_input_gradient(rng):
    """Eagerly the model runs a compiled forward; inside tf.function it is traced inline."""
    model = ConvBN(num_classes=3).build()
    randomize(model, rng)
    x = tf.constant(rng.uniform(-1, 1, (2, 9, 9, 3)).astype(np.float32))

    def logits_and_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = model(x).logits
            target = tf.reduce_sum(logits[:, 0])
        return logits, tape.gradient(target, x)

    eager_logits, eager_grad = logits_and_grad(x)
    traced_logits, traced_grad = tf.function(logits_and_grad)(x)
    np.testing.assert_allclose(eager_logits, traced_logits, atol=1e-6)
    np.testing.assert_allclose(eager_grad, traced_grad, atol=1e-6)
    assert float(tf.reduce_max(tf.abs(traced_grad))) > 0


def test_new_variable_after_build_and_shape_change_are_errors():
    model = ConvBN(num_classes=3).build()
    with pytest.raises(KeyError, match='Net/Extra/weights'):
        model.variable('Extra/weights', [1])
    with model.name_scope('Logits'):
        with pytest.raises(ValueError, match=r'Net/Logits/biases: shape \(4,\)'):
            model.variable('biases', [4])


@pytest.mark.parametrize('cls', [ConvBN, ConvBNGamma, ResnetRoot])
def test_fold_batch_norm_gives_the_same_bits_with_one_copy_of_the_weights(cls, rng):
    unfolded = cls(num_classes=3).build()
    folded = cls(num_classes=3).build()
    values = randomize(unfolded, rng)
    for name, var in folded.variables_by_name.items():
        var.assign(values[name].astype(np.float32))
    x = tf.constant(rng.uniform(-1, 1, (2, 9, 9, 3)).astype(np.float32))

    @tf.function
    def logits_and_grad(model, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = model(x).logits
            target = tf.reduce_sum(logits[:, 0])
        return logits, tape.gradient(target, x)

    expected = logits_and_grad(unfolded, x)
    assert folded.fold_batch_norm() is folded.fold_batch_norm()  # a second call changes nothing
    for got, want in zip(logits_and_grad(folded, x), expected):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(folded(x).logits, unfolded(x).logits)  # eager path too
    # conv weights and BN statistics are replaced by one kernel and one bias per conv
    assert sorted(v.name.split(':')[0] for v in folded.variables) == [
        'Net/Conv2d_1a_3x3/folded_bias', 'Net/Conv2d_1a_3x3/weights',
        'Net/Logits/biases', 'Net/Logits/weights']
    kernel, bias = folded._folded['Net/Conv2d_1a_3x3']
    scale = 1 / np.sqrt(values['Net/Conv2d_1a_3x3/BatchNorm/moving_variance'] + cls.bn_epsilon)
    if cls.bn_scale:
        scale = scale * values['Net/Conv2d_1a_3x3/BatchNorm/gamma']
    np.testing.assert_allclose(kernel, values['Net/Conv2d_1a_3x3/weights'] * scale, rtol=1e-6)
    with pytest.raises(ValueError, match='Net: batch norm is folded'):
        folded.variables_by_name
