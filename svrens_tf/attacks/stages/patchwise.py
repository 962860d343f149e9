"""Update stage 'patchwise': PI-FGSM (Gao et al., ECCV 2020).

As the authors' TF code (github.com/qilong-zhang/Patch-wise-iterative-attack,
patch-wise_iter_attack.py) runs it, with s = alpha * pi_amplification the amplified step:

    a  = a + s * sign(d)                           accumulated amplified steps (a_0 = 0)
    C  = max(|a| - eps, 0) * sign(a)               the part the eps-box cuts off
    P  = gamma * sign(W * C)                       C projected onto each pixel's neighbours
    a  = a + P
    x  = clip(x + s * sign(d) + P)

W is the pi_kernel_size square kernel of weight 1 / (size^2 - 1) with a zero centre, applied
per channel with zero padding; gamma = pi_gamma * s.  Their defaults: amplification 10,
kernel 3, gamma = s (pi_gamma 1).  No momentum and no normalisation: only sign(d) is used.
"""
import numpy as np
import tensorflow as tf

from svrens_tf.attacks import smoothing


def project_kernel(size):
    """The authors' project_kern: 1 / (size^2 - 1) everywhere but a zero centre."""
    kernel = np.full((size, size), 1.0 / (size * size - 1), np.float32)
    kernel[size // 2, size // 2] = 0.0
    return kernel


def initial_state(x0, cfg):
    return {'amplification': tf.zeros_like(x0)}


def update(x, d, state, settings, box, cfg):
    amplified = settings['step'] * settings['pi_amplification']
    gamma = settings['pi_gamma'] * amplified
    amplification = state['amplification'] + amplified * tf.sign(d)
    cut = tf.maximum(tf.abs(amplification) - settings['eps'], 0.0) * tf.sign(amplification)
    projection = gamma * tf.sign(smoothing.smooth(cut, project_kernel(cfg.pi_kernel_size)))
    x_min, x_max = box
    x = tf.clip_by_value(x + amplified * tf.sign(d) + projection, x_min, x_max)
    return x, {**state, 'amplification': amplification + projection}
