"""TI: translation-invariant smoothing of gradients by a depthwise Gaussian convolution."""
import numpy as np
import tensorflow as tf


def gaussian_kernel(size, nsig):
    """The authors' gkern: a normalised 2-D Gaussian sampled at size points in [-nsig, nsig]."""
    points = np.linspace(-nsig, nsig, size)
    profile = np.exp(-0.5 * points ** 2)
    kernel = np.outer(profile, profile)
    return (kernel / kernel.sum()).astype(np.float32)


def smooth(grad, kernel):
    """Convolve every channel of `grad` [B,H,W,C] with the 2-D `kernel` (SAME, zero padding)."""
    channels = grad.shape[-1]
    depthwise = np.tile(kernel[:, :, None, None], (1, 1, channels, 1))
    return tf.nn.depthwise_conv2d(grad, tf.constant(depthwise, grad.dtype),
                                  strides=[1, 1, 1, 1], padding='SAME')
