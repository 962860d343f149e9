"""Gradient stage 'direct': the direction at x_t, or at the NI look-ahead point (NI-FGSM)."""
from svrens_tf.attacks import updates


def evaluations(cfg):
    return 1


def gradient(direction, x, state, settings, cfg, key):
    """direction(x_t), or direction(x_t + alpha * mu * G) with cfg.nesterov (needs the
    'momentum' update's velocity G); takes no draws of its own (`key` unused)."""
    d, passes = direction(query_point(x, state, settings, cfg))
    return d, state, passes


def query_point(x, state, settings, cfg):
    """x_t, or with cfg.nesterov the NI look-ahead x_t + alpha * mu * G."""
    if not cfg.nesterov:
        return x
    return updates.look_ahead(x, state['velocity'], settings['step'], settings['momentum'])
