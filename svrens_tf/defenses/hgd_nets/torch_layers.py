"""PyTorch state dicts as TF2 inference layers (NHWC inside), as the HGD port reads them.

Weights arrive as {key: np.ndarray} in PyTorch's layouts: conv OIHW (grouped: [out, in/groups,
kh, kw]), Linear [out, in], BatchNorm weight / bias / running_mean / running_var. A network
asks `StateDict` for its layers by key while it is traced for the first time: each conv is
converted once to HWIO with the BatchNorm that follows it folded in
(`kernel * weight / sqrt(running_var + eps)`, bias `bias - running_mean * scale`, computed in
float64), kept as an eager tensor and reused by later traces; its numpy array leaves the dict,
so a network holds one copy of its weights as it builds. `check_all_used` then refuses a
state dict with keys the network never asked for, so a missing, unused or mis-shaped key is one
error naming it.

PyTorch pads symmetrically; TF's 'SAME' puts the odd pixel at the end and pads 0 at the start
on even sizes with stride 2, so paddings are passed explicitly unless they equal 'SAME'
(stride 1, odd kernel, (k-1)/2) or 'VALID' (0).
"""
import numpy as np
import tensorflow as tf

from svrens_tf import runtime

BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var')


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_padding(kernel_hw, stride, padding):
    """tf.nn.conv2d's padding argument equal to PyTorch's symmetric `padding`."""
    (kh, kw), (ph, pw) = kernel_hw, _pair(padding)
    if ph == pw == 0:
        return 'VALID'
    if stride == 1 and 2 * ph == kh - 1 and 2 * pw == kw - 1:
        return 'SAME'
    return [[0, 0], [ph, ph], [pw, pw], [0, 0]]


def max_pool(x, kernel, stride, padding=0):
    """nn.MaxPool2d (floor mode); zero padding equals PyTorch's -inf padding on inputs >= 0."""
    if padding:
        x = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    return tf.nn.max_pool2d(x, kernel, stride, 'VALID')


def avg_pool_3x3_exclude_pad(x):
    """nn.AvgPool2d(3, 1, padding=1, count_include_pad=False): TF's SAME averages valid pixels."""
    return tf.nn.avg_pool2d(x, 3, 1, 'SAME')


def global_mean(x):
    """[B,H,W,C] -> [B,C] (`x.view(B, C, -1).mean(2)`, `avg_pool2d(8)` on 8x8)."""
    return tf.reduce_mean(x, axis=[1, 2])


def upsample_bilinear_align_corners(x, size_hw):
    """nn.Upsample(size, mode='bilinear') as PyTorch <= 0.3.1 ran it (align_corners=True)."""
    return tf.raw_ops.ResizeBilinear(images=x, size=size_hw, align_corners=True,
                                     half_pixel_centers=False)


class StateDict:
    """Hands out a state dict's weights by key in TF layouts; `what` names it in errors."""

    def __init__(self, arrays, what):
        self.what = what
        self._arrays = dict(arrays)
        self._used = set()
        self._tensors = {}

    def _array(self, key, ndim=None):
        """The array of `key`, handed out once: it leaves the dict (its tensor is cached)."""
        if key in self._used:
            raise ValueError(f'{self.what}: {key} is requested by two layers')
        if key not in self._arrays:
            raise KeyError(f'{self.what}: the state dict has no key {key!r}')
        a = np.asarray(self._arrays.pop(key))
        if ndim is not None and a.ndim != ndim:
            raise ValueError(f'{self.what}: {key} has shape {list(a.shape)}, expected {ndim} dims')
        self._used.add(key)
        return a

    def _cached(self, cache_key, make):
        tensor = self._tensors.get(cache_key)
        if tensor is None:
            with tf.init_scope():
                tensor = tuple(tf.constant(a, tf.float32) for a in make())
            self._tensors[cache_key] = tensor
        return tensor

    def _bn_scale_shift(self, bn, eps, channels):
        w, b, mean, var = (self._array(f'{bn}.{k}', 1).astype(np.float64) for k in BN_KEYS)
        if w.shape[0] != channels:
            raise ValueError(f'{self.what}: {bn} has {w.shape[0]} channels, its conv '
                             f'{channels}')
        scale = w / np.sqrt(var + eps)
        return scale, b - mean * scale

    def conv(self, x, key, stride=1, padding=0, bn=None, eps=None, bias=False, relu=False):
        """nn.Conv2d `key` (+ nn.BatchNorm2d `bn` with `eps`, or its own bias) (+ ReLU)."""
        def make():
            w = self._array(f'{key}.weight', 4).astype(np.float64)
            kernel = w.transpose(2, 3, 1, 0)
            if bn is not None:
                scale, shift = self._bn_scale_shift(bn, eps, w.shape[0])
                return kernel * scale, shift
            if bias:
                return kernel, self._array(f'{key}.bias', 1)
            return (kernel,)
        kernel, *shift = self._cached((key, bn), make)
        if x.shape[-1] % kernel.shape[2]:
            raise ValueError(f'{self.what}: {key} takes {kernel.shape[2]} input channels '
                             f'(per group), the input has {x.shape[-1]}')
        y = grouped_conv2d(x, kernel, stride, conv_padding(kernel.shape[:2], stride, padding))
        if shift:
            y = tf.nn.bias_add(y, shift[0])
        return tf.nn.relu(y) if relu else y

    def linear(self, x, key):
        """nn.Linear `key` on [B, features]."""
        w, b = self._cached((key,), lambda: (self._array(f'{key}.weight', 2).T,
                                             self._array(f'{key}.bias', 1)))
        return tf.nn.bias_add(tf.matmul(x, w), b)

    def trace(self, forward, image_shape):
        """`forward` (x -> outputs) as a tf.function over float32 [B, *image_shape], traced
        now, so every layer takes its weights, then check_all_used: a missing, unused or
        misshaped key is one error when the network is built, not at its first call."""
        function = tf.function(forward, autograph=False, input_signature=[
            tf.TensorSpec([None, *image_shape], tf.float32)])
        function.get_concrete_function()
        self.check_all_used()
        return function

    def check_all_used(self):
        """Refuse keys no layer asked for (BatchNorm's `num_batches_tracked`, which PyTorch >= 0.4.1
        adds and inference ignores, excepted); then drop them."""
        unused = sorted(k for k in self._arrays if not k.endswith('.num_batches_tracked'))
        if unused:
            raise ValueError(f'{self.what}: {len(unused)} state-dict keys are not used by the '
                             f'network, e.g. {", ".join(unused[:5])}')
        self._arrays = {}


def grouped_conv2d(x, kernel, stride, padding):
    """tf.nn.conv2d, grouped when the kernel takes fewer input channels than x has.

    Without oneDNN, TF's CPU kernels cannot run a grouped conv once Grappler fuses it with its
    bias and ReLU ("Fused conv implementation does not support grouped convolutions"), so
    there each group runs as its own conv (the same sums per output channel).
    """
    groups = x.shape[-1] // kernel.shape[2]
    if groups == 1 or runtime.onednn_enabled() or tf.config.list_logical_devices('GPU'):
        return tf.nn.conv2d(x, kernel, stride, padding)
    return tf.concat([tf.nn.conv2d(part, k, stride, padding) for part, k in
                      zip(tf.split(x, groups, axis=-1), tf.split(kernel, groups, axis=-1))], -1)
