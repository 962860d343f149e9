"""SVR-Ens: the variance-reduced gradient direction that replaces the ensemble gradient.

From anchor x_t (the outer query point) the inner loop runs M steps on a fresh copy x_in:
    g = grad J_k(x_in) - (grad J_k(x_t) - g_ens),  k drawn per step,
    g = post_process(g) (TI variants);  G_in = mu_in * G_in + norm(g);
    x_in = clip(x_in + beta sign(G_in))
and returns the last G_in, which the outer step then uses like a gradient (docs/algorithm.md).
How grad J_k(x_t) is obtained follows `cfg.outer_grad` (recompute | cache | shared).
"""
import tensorflow as tf

from svrens_tf.attacks import randomness, stages, updates


def passes_per_outer_step(cfg, num_models):
    """Single-model gradient passes per outer step: per direction the gradient stage takes,
    K for the ensemble gradient, plus the inner loop's M (at x_in) and M (recompute, shared)
    or K (cache) at the anchor.  The K cached anchor gradients share the ensemble pass's
    forward passes (backward only)."""
    inner = cfg.inner_steps
    if inner == 0:
        per_direction = num_models
    else:
        anchor = num_models if cfg.outer_grad == 'cache' else inner
        per_direction = num_models + inner + anchor
    return stages.load('gradient', cfg.gradient).evaluations(cfg) * per_direction


def svre_direction(oracle, x_anchor, clean, labels, g_ens, anchor_grads, step_models,
                   step_key, box, post_process):
    """(G_in, passes): the last inner accumulator of SVR-Ens around `x_anchor` and the
    single-model gradient passes spent in the inner loop.

    g_ens: ensemble gradient at the anchor; anchor_grads: [K,...] cached grad J_k(x_anchor)
        (outer_grad 'cache') or None.
    step_models: [M] int32 surrogate indices of the inner iterations.
    step_key: key of these draws; post_process: the attack's direction post-processing.
    """
    cfg, settings = oracle.cfg, oracle.settings
    passes = tf.constant(0)

    def inner_step(m, x_in, velocity, passes):
        k = step_models[m]
        inner_key = randomness.derive(step_key, randomness.INNER, m)
        if cfg.outer_grad == 'cache':
            g_in = oracle.singles(k[None], x_in[None], clean, labels, inner_key[None])[0]
            g_anchor = tf.gather(anchor_grads, k)
            passes += 1
        else:
            anchor_key = (inner_key if cfg.outer_grad == 'shared'
                          else randomness.derive(step_key, randomness.ANCHOR, m))
            pair = oracle.singles(tf.stack([k, k]), tf.stack([x_in, x_anchor]), clean, labels,
                                  tf.stack([inner_key, anchor_key]))
            g_in, g_anchor = pair[0], pair[1]
            passes += 2
        g = post_process(g_in - (g_anchor - g_ens))
        velocity = updates.accumulate(velocity, updates.normalize(g), settings['inner_momentum'])
        x_in = updates.sign_step(x_in, velocity, settings['inner_step'], box)
        return m + 1, x_in, velocity, passes

    _, _, velocity, passes = tf.while_loop(
        lambda m, *_: m < settings['inner_steps'], inner_step,
        (tf.constant(0), x_anchor, tf.zeros_like(x_anchor), passes))
    return velocity, passes
