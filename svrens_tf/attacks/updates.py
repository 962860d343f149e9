"""Update rules shared by the base attacks and the SVR-Ens inner loop (I/MI/NI-FGSM pieces)."""
import tensorflow as tf


def normalize(grad):
    """g / mean(|g|) per image over H, W, C (an all-zero gradient stays zero)."""
    scale = tf.reduce_mean(tf.abs(grad), axis=[1, 2, 3], keepdims=True)
    return tf.math.divide_no_nan(grad, scale)


def eps_box(x, eps):
    """(x_min, x_max): the L-inf ball of radius eps around x, intersected with [-1, 1]."""
    return tf.clip_by_value(x - eps, -1.0, 1.0), tf.clip_by_value(x + eps, -1.0, 1.0)


def sign_step(x, direction, step, box):
    """x + step * sign(direction), clipped to `box`."""
    x_min, x_max = box
    return tf.clip_by_value(x + step * tf.sign(direction), x_min, x_max)


def accumulate(velocity, grad, momentum):
    """MI accumulator: momentum * velocity + grad."""
    return momentum * velocity + grad


def look_ahead(x, velocity, step, momentum):
    """NI query point x + step * momentum * velocity (not clipped, as in SI-NI-FGSM)."""
    return x + step * momentum * velocity
