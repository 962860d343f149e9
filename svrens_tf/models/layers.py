"""Building blocks shared by the slim architectures.

A `SlimModel` creates its variables by full slim name (`<scope>/<block>/.../weights`) the first
time its forward pass runs, so an architecture file reads like the checkpoint's table of
contents and a released checkpoint restores by name. Inference mode only: batch norm uses the
moving statistics, and a batch norm that follows a convolution is folded into the kernel
(`w * scale`, then the shift as a bias): one bias add instead of a multiply and an add over
the activation map (outputs within 6e-6 of slim's). Until `fold_batch_norm` is called the
folding sits in the graph, so weights assigned after `build` (checkpoint loading) take effect
with no extra step; but a traced input gradient then keeps every folded kernel alive from the
forward to the backward pass, a second copy of the weights (0.7 GiB for the four Table-1
surrogates). `fold_batch_norm` folds once, in place: the same values, so bit-identical
outputs, with one copy of the weights.
"""
import collections
import contextlib

import tensorflow as tf

from svrens_tf.models.zoo import IMAGE_SIZE

ModelOutput = collections.namedtuple('ModelOutput', ['logits', 'aux_logits'])



def symmetric_padding(kernel):
    """slim's `conv2d_same` padding for a strided conv: k-1 pixels, the odd one at the end."""
    total = kernel - 1
    begin = total // 2
    return [[0, 0], [begin, total - begin], [begin, total - begin], [0, 0]]


def squeeze_spatial(x):
    """[B,1,1,C] -> [B,C]; fails loudly when the map is not 1x1 (as slim's squeeze does)."""
    return tf.squeeze(x, [1, 2])


class SlimModel(tf.Module):
    """Base of the slim architectures: named variables, a scope stack, conv / BN / FC ops.

    Subclasses set `default_scope` and `bn_epsilon` (and `bn_scale` where BN has gamma) and
    implement `forward(x) -> ModelOutput`. Called eagerly, the model runs `forward` as a
    `tf.function` (one trace per input shape), so eager callers pay no per-op Python cost; called
    inside a `tf.function` (the attack loop), `forward` is traced inline into the caller's graph,
    which differentiates w.r.t. x without a nested function call and traces faster. The forward
    has no data-dependent control flow, so autograph is skipped (it cost ~10 s per trace).
    """
    default_scope = None
    image_size = IMAGE_SIZE
    bn_epsilon = 0.001
    bn_scale = False

    def __init__(self, scope=None, num_classes=1001):
        super().__init__(name=None)
        self.scope = scope or self.default_scope
        self.num_classes = num_classes
        self._variables = {}
        self._scopes = [self.scope]
        self._built = False
        self._folded = None  # {conv scope: (kernel, bias)} once fold_batch_norm has run
        self._compiled_forward = tf.function(self.forward, autograph=False)

    def build(self):
        """Create every variable (one eager forward pass on a zero image); returns self."""
        if not self._built:
            with tf.init_scope():
                self.forward(tf.zeros([1, self.image_size, self.image_size, 3]))
            self._built = True
        return self

    @tf.autograph.experimental.do_not_convert
    def __call__(self, x):
        """x: float32 [B,H,W,3] in [-1,1] (H = W = `image_size` for the slim checkpoints)
        -> ModelOutput(logits [B,C], aux_logits [B,C] or None)."""
        self.build()
        x = tf.convert_to_tensor(x, tf.float32)
        return self.forward(x) if tf.inside_function() else self._compiled_forward(x)

    def forward(self, x):
        raise NotImplementedError

    def fold_batch_norm(self):
        """Fold every conv's batch norm into its kernel and a bias variable, once; returns self.

        The kernel is rescaled in place and the batch-norm variables are dropped, so load the
        checkpoint first: a folded model can no longer be restored.
        """
        self.build()
        if self._folded is None:
            self._folded = {}
            with tf.init_scope():
                self.forward(tf.zeros([1, IMAGE_SIZE, IMAGE_SIZE, 3]))  # fills self._folded
            self._compiled_forward = tf.function(self.forward, autograph=False)
        return self

    @property
    def variables_by_name(self):
        """{slim name: tf.Variable}, the names a checkpoint must hold."""
        if self._folded is not None:
            raise ValueError(f'{self.scope}: batch norm is folded, the variables are no longer '
                             "the checkpoint's (restore before fold_batch_norm)")
        return dict(self._variables)

    @contextlib.contextmanager
    def name_scope(self, name):
        """Push `name` (one or more '/'-separated components) onto the variable scope."""
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

    def batch_norm_affine(self, depth, scope='BatchNorm'):
        """Inference batch norm under `<scope>` as (scale, shift): y = x * scale + shift."""
        with self.name_scope(scope):
            beta = self.variable('beta', [depth])
            gamma = self.variable('gamma', [depth]) if self.bn_scale else None
            mean = self.variable('moving_mean', [depth])
            variance = self.variable('moving_variance', [depth])
        scale = tf.math.rsqrt(variance + self.bn_epsilon)
        if gamma is not None:
            scale = scale * gamma
        return scale, beta - mean * scale

    def batch_norm(self, x, scope='BatchNorm', activation=None):
        """slim.batch_norm on its own (resnet_v2 `preact` / `postnorm`), then the activation."""
        scale, shift = self.batch_norm_affine(x.shape[-1], scope)
        y = x * scale + shift
        return activation(y) if activation is not None else y

    def conv2d(self, x, filters, kernel, scope, stride=1, padding='SAME',
               normalizer=True, activation=tf.nn.relu):
        """slim.conv2d: conv, then batch norm (no biases) or biases, then the activation.

        `padding`: 'SAME', 'VALID' or explicit pairs (see `symmetric_padding`).
        """
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        with self.name_scope(scope):
            if normalizer:
                w, shift = self._normalized_kernel([kh, kw, x.shape[-1], filters])
            else:
                w = self.variable('weights', [kh, kw, x.shape[-1], filters])
                shift = self.variable('biases', [filters])
        y = tf.nn.bias_add(tf.nn.conv2d(x, w, stride, padding), shift)
        return activation(y) if activation is not None else y

    def _normalized_kernel(self, shape):
        """(kernel, bias) of the conv at the current scope with its batch norm folded in.

        Unfolded: computed from the checkpoint variables in the caller's graph. During
        `fold_batch_norm` (eager): computed once, the kernel written into the weights
        variable and the bias into a new one, the batch-norm variables dropped; afterwards:
        those two variables.
        """
        path = '/'.join(self._scopes)
        if self._folded and path in self._folded:
            return self._folded[path]
        w = self.variable('weights', shape)
        scale, shift = self.batch_norm_affine(shape[-1])
        if self._folded is None:
            return w * scale, shift
        w.assign(w * scale)  # in place: no second copy of the kernel stays allocated
        for name in [f'{path}/weights'] + [f'{path}/BatchNorm/{n}' for n in
                                            ('beta', 'gamma', 'moving_mean', 'moving_variance')]:
            self._variables.pop(name, None)
        self._folded[path] = (w, tf.Variable(shift, name=f'{path}/folded_bias', trainable=False))
        return self._folded[path]

    def fully_connected(self, x, units, scope, activation=None):
        """slim.fully_connected with biases; x: [B, features]."""
        with self.name_scope(scope):
            w = self.variable('weights', [x.shape[-1], units])
            y = tf.nn.bias_add(tf.matmul(x, w), self.variable('biases', [units]))
        return activation(y) if activation is not None else y
