"""Gradient stage 'variance_tuning': VMI-FGSM and VNI-FGSM (Wang & He, CVPR 2021).

As the authors' TF code (github.com/JHL-HUST/VT, vmi_fgsm.py, vni_fgsm.py) runs it:

    g    = direction(x_q)                       x_q = x_t, or the NI look-ahead point (VNI)
    d    = g + v_t                              the tuned direction, then post-processed
                                                (TI) and normalised by the update rule
    v_t+1 = mean_n direction(x_t + r_n) - g     r_n ~ U(-vt_bound * eps, vt_bound * eps)
                                                per pixel, n = 1..vt_neighbors, unclipped

with v_0 = 0.  Neighbours are drawn around x_t, not the look-ahead point.  Under svre each
direction is an SVR-Ens direction (its own inner loop, with inner surrogates drawn per
neighbour), so a step costs 1 + vt_neighbors directions.
"""
import tensorflow as tf

from svrens_tf.attacks import randomness
from svrens_tf.attacks.stages import direct


def evaluations(cfg):
    return 1 + cfg.vt_neighbors


def initial_state(x0, cfg):
    return {'variance': tf.zeros_like(x0)}


def gradient(direction, x, state, settings, cfg, key):
    g, passes = direction(direct.query_point(x, state, settings, cfg))
    bound = settings['vt_bound'] * settings['eps']

    def neighbour(n, total, passes):
        noise = tf.random.stateless_uniform(tf.shape(x), randomness.derive(key, n, 0),
                                            -bound, bound)
        d, spent = direction(x + noise, randomness.derive(key, n, 1))
        return n + 1, total + d, passes + spent

    _, total, passes = tf.while_loop(lambda n, *_: n < settings['vt_neighbors'], neighbour,
                                     (tf.constant(0), tf.zeros_like(x), passes))
    variance = total / tf.cast(settings['vt_neighbors'], x.dtype) - g
    return g + state['variance'], {**state, 'variance': variance}, passes
