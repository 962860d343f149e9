"""SVR-Ens: the variance-reduced gradient direction that replaces the ensemble gradient.

From anchor x_t (the outer query point) the inner loop runs M steps on a fresh copy x_in:
    g = the estimator's gradient estimate at x_in, k drawn per step (estimators.py; the
        authors' 'svrg': grad J_k(x_in) - (grad J_k(x_t) - g_ens)),
    g = post_process(g) (TI variants);  G_in = mu_in * G_in + norm(g);
    x_in = clip(x_in + beta sign(G_in))
and returns the last G_in, which the outer step then uses like a gradient (docs/algorithm.md).
How svrg obtains grad J_k(x_t) follows `cfg.outer_grad` (recompute | cache | shared).
"""
import tensorflow as tf

from svrens_tf.attacks import stages, updates
from svrens_tf.attacks.estimators import ESTIMATORS


def uses_members(cfg):
    """Whether the direction needs the K member gradients of the ensemble pass."""
    return cfg.inner_steps > 0 and ESTIMATORS[cfg.estimator].uses_members(cfg)


def passes_per_outer_step(cfg, num_models):
    """Single-model gradient passes per outer step: per direction the gradient stage takes,
    K for the ensemble gradient, plus the estimator's (estimators.py): for svrg the inner
    loop's M (at x_in) and M (recompute, shared) or K (cache) at the anchor.  The K cached
    anchor gradients share the ensemble pass's forward passes (backward only)."""
    if cfg.inner_steps == 0:
        per_direction = num_models
    else:
        per_direction = ESTIMATORS[cfg.estimator].passes(cfg, num_models)
    return stages.load('gradient', cfg.gradient).evaluations(cfg) * per_direction


def svre_direction(oracle, x_anchor, clean, labels, g_ens, anchor_grads, step_models,
                   step_key, box, post_process):
    """(G_in, passes): the last inner accumulator of SVR-Ens around `x_anchor` and the
    single-model gradient passes spent in the inner loop.

    g_ens: ensemble gradient at the anchor; anchor_grads: [K,...] grad J_k(x_anchor) from the
        ensemble pass (when `uses_members`) or None.
    step_models: [M] int32 surrogate indices of the inner iterations (the schedule, which an
        estimator's `choose` may replace with its own draws).
    step_key: key of these draws; post_process: the attack's direction post-processing.
    """
    cfg, settings = oracle.cfg, oracle.settings
    estimator = ESTIMATORS[cfg.estimator]

    def inner_step(m, x_in, velocity, passes, state):
        k = estimator.choose(m, step_models[m], step_key, state)
        g, state, spent = estimator.estimate(oracle, m, k, x_in, x_anchor, clean, labels,
                                             step_key, state)
        g = post_process(g)
        velocity = updates.accumulate(velocity, updates.normalize(g), settings['inner_momentum'])
        x_in = updates.sign_step(x_in, velocity, settings['inner_step'], box)
        return m + 1, x_in, velocity, passes + spent, state

    _, _, velocity, passes, _ = tf.while_loop(
        lambda m, *_: m < settings['inner_steps'], inner_step,
        (tf.constant(0), x_anchor, tf.zeros_like(x_anchor), tf.constant(0),
         estimator.initial_state(g_ens, anchor_grads, x_anchor)))
    return velocity, passes
