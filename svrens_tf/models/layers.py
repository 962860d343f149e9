"""Building blocks shared by the slim architectures.

A `SlimModel` creates its variables by full slim name (`<scope>/<block>/.../weights`) the first
time its forward pass runs, so an architecture file reads like the checkpoint's table of
contents and a released checkpoint restores by name. Inference mode only: batch norm uses the
moving statistics.
"""
import collections
import contextlib

import tensorflow as tf

ModelOutput = collections.namedtuple('ModelOutput', ['logits', 'aux_logits'])

IMAGE_SIZE = 299


class SlimModel(tf.Module):
    """Base of the slim architectures: named variables, a scope stack, conv / BN / FC ops.

    Subclasses set `default_scope` and `bn_epsilon` (and `bn_scale` where BN has gamma) and
    implement `forward(x) -> ModelOutput`.
    """
    default_scope = None
    bn_epsilon = 0.001
    bn_scale = False

    def __init__(self, scope=None, num_classes=1001):
        super().__init__(name=None)
        self.scope = scope or self.default_scope
        self.num_classes = num_classes
        self._variables = {}
        self._scopes = [self.scope]
        self._built = False

    def build(self):
        """Create every variable (one eager forward pass on a zero image); returns self."""
        if not self._built:
            self.forward(tf.zeros([1, IMAGE_SIZE, IMAGE_SIZE, 3]))
            self._built = True
        return self

    def __call__(self, x):
        """x: float32 [B,299,299,3] in [-1,1] -> ModelOutput(logits, aux_logits)."""
        return self.forward(tf.convert_to_tensor(x, tf.float32))

    def forward(self, x):
        raise NotImplementedError

    @property
    def variables_by_name(self):
        """{slim name: tf.Variable}, the names a checkpoint must hold."""
        return dict(self._variables)

    @contextlib.contextmanager
    def name_scope(self, name):
        self._scopes.append(name)
        try:
            yield
        finally:
            self._scopes.pop()

    def variable(self, name, shape):
        """The variable `<current scope>/name`, created (zeros) on first use."""
        full = '/'.join(self._scopes + [name])
        var = self._variables.get(full)
        if var is None:
            if self._built:
                raise KeyError(f'{full}: variable requested after build')
            with tf.init_scope():
                var = tf.Variable(tf.zeros(shape), name=full, trainable=False)
            self._variables[full] = var
        elif tuple(var.shape) != tuple(shape):
            raise ValueError(f'{full}: shape {tuple(shape)} requested, {tuple(var.shape)} exists')
        return var

    def batch_norm(self, x):
        """Inference batch norm under `<scope>/BatchNorm` (gamma only when `bn_scale`)."""
        depth = x.shape[-1]
        with self.name_scope('BatchNorm'):
            beta = self.variable('beta', [depth])
            gamma = self.variable('gamma', [depth]) if self.bn_scale else None
            mean = self.variable('moving_mean', [depth])
            var = self.variable('moving_variance', [depth])
        scale = tf.math.rsqrt(var + self.bn_epsilon)
        if gamma is not None:
            scale = scale * gamma
        return x * scale + (beta - mean * scale)

    def conv2d(self, x, filters, kernel, scope, stride=1, padding='SAME',
               normalizer=True, activation=tf.nn.relu):
        """slim.conv2d: conv, then batch norm (no biases) or biases, then the activation."""
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        with self.name_scope(scope):
            w = self.variable('weights', [kh, kw, x.shape[-1], filters])
            y = tf.nn.conv2d(x, w, stride, padding)
            if normalizer:
                y = self.batch_norm(y)
            else:
                y = tf.nn.bias_add(y, self.variable('biases', [filters]))
        return activation(y) if activation is not None else y

    def fully_connected(self, x, units, scope, activation=None):
        """slim.fully_connected with biases; x: [B, features]."""
        with self.name_scope(scope):
            w = self.variable('weights', [x.shape[-1], units])
            y = tf.nn.bias_add(tf.matmul(x, w), self.variable('biases', [units]))
        return activation(y) if activation is not None else y
