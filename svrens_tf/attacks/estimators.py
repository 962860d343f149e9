"""Estimators of the inner gradient of SVR-Ens (AttackConfig.estimator), one class each.

The inner loop of svre.py asks its estimator, at inner step m with surrogate k = k_m and
current point x_m (x_0 = x_t, the anchor), for the gradient estimate g_m that it
post-processes, normalises and accumulates.  Each estimator starts from the ensemble
gradient g_ens at the anchor and, except svrg under outer_grad 'recompute'/'shared', from the
K member gradients grad J_j(x_t) of the same ensemble pass (AttackConfig.outer_grad 'cache').
Their per-direction pass counts (`passes`) are what svre.passes_per_outer_step adds up, and
`choose` picks k_m: the schedule's index (uniform draws, or `model_indices`) unless the
estimator draws its own.
"""
import tensorflow as tf

from svrens_tf.attacks import randomness


class Estimator:
    """What the estimators share: step m uses the scheduled surrogate."""
    uses_schedule = True   # False: `choose` draws k itself, so `model_indices` is refused

    @staticmethod
    def choose(m, scheduled, step_key, state):
        return scheduled


class Svrg(Estimator):
    """'svrg', the authors' SVR-Ens (docs/algorithm.md, "SVR-Ens"): a fixed anchor,

        g_m = grad J_k(x_m) - (grad J_k(x_t) - g_ens),

    grad J_k(x_t) cached ('cache', 1 pass per step), recomputed with its own draw
    ('recompute', 2) or with x_m's draw ('shared', 2)."""

    @staticmethod
    def uses_members(cfg):
        return cfg.outer_grad == 'cache'

    @staticmethod
    def passes(cfg, num_models):
        inner = cfg.inner_steps
        return num_models + inner + (num_models if cfg.outer_grad == 'cache' else inner)

    @staticmethod
    def initial_state(g_ens, members, x_anchor):
        return (g_ens,) if members is None else (g_ens, members)

    @staticmethod
    def estimate(oracle, m, k, x_m, x_anchor, clean, labels, step_key, state):
        g_ens = state[0]
        inner_key = randomness.derive(step_key, randomness.INNER, m)
        if oracle.cfg.outer_grad == 'cache':
            g_in = oracle.singles(k[None], x_m[None], clean, labels, inner_key[None])[0]
            return g_in - (tf.gather(state[1], k) - g_ens), state, 1
        anchor_key = (inner_key if oracle.cfg.outer_grad == 'shared'
                      else randomness.derive(step_key, randomness.ANCHOR, m))
        pair = oracle.singles(tf.stack([k, k]), tf.stack([x_m, x_anchor]), clean, labels,
                              tf.stack([inner_key, anchor_key]))
        return pair[0] - (pair[1] - g_ens), state, 2


class OnePassFromMembers(Estimator):
    """Estimators that start from the ensemble pass's K member gradients and spend 1 pass per
    inner step: 2K + M per direction."""

    @staticmethod
    def uses_members(cfg):
        return True

    @staticmethod
    def passes(cfg, num_models):
        return 2 * num_models + cfg.inner_steps


class Saga(OnePassFromMembers):
    """'saga': a table phi_j of the last gradient seen of each surrogate instead of the fixed
    anchor (SAGA, Defazio et al. 2014), started from the ensemble pass (phi_j = grad J_j(x_t),
    gbar = g_ens):

        g_m  = grad J_k(x_m) - (phi_k - gbar)
        gbar = gbar + (grad J_k(x_m) - phi_k) / K ;  phi_k = grad J_k(x_m)

    1 pass per inner step (2K + M per direction).  The control variate of model k follows the
    inner iterate instead of staying at x_t; gbar is g_ens corrected by the table's drift."""

    @staticmethod
    def initial_state(g_ens, members, x_anchor):
        return members, g_ens

    @staticmethod
    def estimate(oracle, m, k, x_m, x_anchor, clean, labels, step_key, state):
        table, mean = state
        inner_key = randomness.derive(step_key, randomness.INNER, m)
        g_in = oracle.singles(k[None], x_m[None], clean, labels, inner_key[None])[0]
        old = tf.gather(table, k)
        g = g_in - (old - mean)
        mean = mean + (g_in - old) / tf.cast(oracle.num_models, g_in.dtype)
        table = tf.tensor_scatter_nd_update(table, k[None, None], g_in[None])
        return g, (table, mean), 1


class Sarah(Estimator):
    """'sarah': the recursive direction of SARAH / SPIDER (Nguyen et al. 2017; Fang et al.
    2018), each step correcting the previous estimate instead of the anchor's:

        g_0 = g_ens (no pass);  g_m = grad J_k(x_m) - (grad J_k(x_{m-1}) - g_{m-1}), m >= 1,

    both gradients of step m with one transform draw (x_m's), 2 passes per step after the
    first (K + 2(M - 1) per direction); the surrogate scheduled for step 0 goes unused."""

    @staticmethod
    def uses_members(cfg):
        return False

    @staticmethod
    def passes(cfg, num_models):
        return num_models + 2 * max(cfg.inner_steps - 1, 0)

    @staticmethod
    def initial_state(g_ens, members, x_anchor):
        return g_ens, x_anchor

    @staticmethod
    def estimate(oracle, m, k, x_m, x_anchor, clean, labels, step_key, state):
        previous, x_previous = state
        inner_key = randomness.derive(step_key, randomness.INNER, m)

        def recurse():
            pair = oracle.singles(tf.stack([k, k]), tf.stack([x_m, x_previous]), clean, labels,
                                  tf.stack([inner_key, inner_key]))
            return pair[0] - (pair[1] - previous)
        g = tf.cond(m > 0, recurse, lambda: previous)
        return g, (g, x_m), tf.where(m > 0, 2, 0)


class ImportanceSvrg(OnePassFromMembers):
    """'svrg_is': svrg/cache with the surrogate of each step drawn by importance instead of
    uniformly.  At the anchor, the ensemble pass's member gradients give each model a variance
    proxy, s_j = sum over the batch's images of ||grad J_j(x_t) - g_ens||_2, and

        p_j = (1 - MIX) / K + MIX s_j / sum_i s_i      (uniform if every s_j is 0),
        k_m = #{j : p_0 + ... + p_j <= u_m},  u_m ~ U[0, 1) keyed by (step key, SCHEDULE, m),
        g_m = (grad J_k(x_m) - grad J_k(x_t)) / (K p_k) + g_ens,

    whose mean over k ~ p is svrg's over uniform k, g_ens + (1/K) sum_j (grad J_j(x_m) -
    grad J_j(x_t)).  MIX = 0.5 keeps every p_j >= 1/(2K), so no weight exceeds 2.  One model
    per step for the whole batch, as the oracle's passes are; the schedule goes unused, so
    `model_indices` is refused.  1 pass per inner step (2K + M per direction, as
    svrg/cache); no outer_grad choice (the members are the ensemble pass's)."""
    MIX = 0.5
    uses_schedule = False

    @classmethod
    def initial_state(cls, g_ens, members, x_anchor):
        deviation = members - g_ens
        proxy = tf.reduce_sum(tf.sqrt(tf.reduce_sum(
            tf.square(deviation), axis=list(range(2, deviation.shape.rank)))), axis=1)
        total = tf.reduce_sum(proxy)
        uniform = tf.ones_like(proxy) / tf.cast(tf.size(proxy), proxy.dtype)
        share = tf.where(total > 0, tf.math.divide_no_nan(proxy, total), uniform)
        return g_ens, members, (1.0 - cls.MIX) * uniform + cls.MIX * share

    @staticmethod
    def choose(m, scheduled, step_key, state):
        probabilities = state[2]
        u = tf.random.stateless_uniform([], randomness.derive(step_key, randomness.SCHEDULE, m))
        k = tf.reduce_sum(tf.cast(tf.cumsum(probabilities) <= u, tf.int32))
        return tf.minimum(k, tf.size(probabilities) - 1)   # u above a rounded-down last sum

    @staticmethod
    def estimate(oracle, m, k, x_m, x_anchor, clean, labels, step_key, state):
        g_ens, members, probabilities = state
        inner_key = randomness.derive(step_key, randomness.INNER, m)
        g_in = oracle.singles(k[None], x_m[None], clean, labels, inner_key[None])[0]
        weight = 1.0 / (tf.cast(oracle.num_models, g_in.dtype) * tf.gather(probabilities, k))
        return (g_in - tf.gather(members, k)) * weight + g_ens, state, 1


ESTIMATORS = {'svrg': Svrg, 'saga': Saga, 'sarah': Sarah, 'svrg_is': ImportanceSvrg}
