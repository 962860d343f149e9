"""The attack loop: a whole batch attack (outer and inner loops) in one traced tf.function.

Outer step t, for every base attack and both strategies:
    x_q = x_t + alpha * mu * G  (NI look-ahead) or x_t
    d   = grad of the ensemble loss at x_q (ens) or the SVR-Ens direction around x_q (svre)
    d   = TI(d) (TI variants);  G = mu * G + norm(d);  x_{t+1} = clip(x_t + alpha * sign(G))
With mu = 0 this is I-FGSM (sign(norm(d)) = sign(d)); with svre and mu = 0 it is the authors'
SVRE-I-FGSM outer step x_t + alpha * sign(G_in).  The traced function is cached per
(surrogates, config), so the next batch of the same shape runs without retracing.
"""
import collections

import numpy as np
import tensorflow as tf

from svrens_tf.attacks import randomness, smoothing, svre, updates
from svrens_tf.attacks.gradients import GradientOracle

AttackResult = collections.namedtuple('AttackResult', ['x_adv', 'gradient_passes'])

_TRACED = {}
_TRACED_LIMIT = 8


def _attack_function(surrogates, cfg, image_size):
    """tf.function(x0, labels, model_indices, key) -> (x_adv, gradient passes)."""
    oracle = GradientOracle(surrogates, cfg, image_size)
    kernel = (smoothing.gaussian_kernel(cfg.ti_kernel_size, cfg.ti_nsig)
              if cfg.ti_kernel_size else None)

    def outer_step(t, x, velocity, passes, x0, labels, model_indices, key, box):
        step_key = randomness.derive(key, t)
        x_query = (updates.look_ahead(x, velocity, cfg.step, cfg.momentum)
                   if cfg.nesterov else x)
        ensemble_key = randomness.derive(step_key, randomness.ENSEMBLE)
        cached = bool(cfg.inner_steps) and cfg.outer_grad == 'cache'
        gradients = oracle.ensemble(x_query, x0, labels, ensemble_key, with_members=cached)
        direction, anchor_grads = gradients if cached else (gradients, None)
        passes += oracle.num_models * (2 if cached else 1)
        if cfg.inner_steps:
            direction, inner_passes = svre.svre_direction(
                oracle, x_query, x0, labels, direction, anchor_grads, model_indices[t],
                step_key, box, kernel)
            passes += inner_passes
        if kernel is not None:
            direction = smoothing.smooth(direction, kernel)
        velocity = updates.accumulate(velocity, updates.normalize(direction), cfg.momentum)
        return t + 1, updates.sign_step(x, velocity, cfg.step, box), velocity, passes

    @tf.function
    def attack(x0, labels, model_indices, key):
        box = updates.eps_box(x0, cfg.eps)
        _, x_adv, _, passes = tf.while_loop(
            lambda t, *_: t < cfg.num_iter,
            lambda *state: outer_step(*state, x0, labels, model_indices, key, box),
            (tf.constant(0), x0, tf.zeros_like(x0), tf.constant(0)))
        return x_adv, passes

    return attack


def _traced(surrogates, cfg, image_size):
    """The cached attack function of (surrogates, cfg, image_size); holds the surrogates."""
    cache_key = (tuple(id(s) for s in surrogates), cfg, image_size)
    if cache_key not in _TRACED:
        if len(_TRACED) >= _TRACED_LIMIT:
            _TRACED.pop(next(iter(_TRACED)))
        _TRACED[cache_key] = (list(surrogates), _attack_function(surrogates, cfg, image_size))
    return _TRACED[cache_key][1]


def _schedule(model_indices, key, cfg, num_models):
    shape = (cfg.num_iter, cfg.inner_steps)
    if model_indices is None or not cfg.inner_steps:
        return randomness.model_schedule(key, *shape, num_models)
    indices = np.asarray(model_indices, np.int32).reshape(shape)
    if indices.size and (indices.min() < 0 or indices.max() >= num_models):
        raise ValueError(f'model_indices must lie in [0, {num_models})')
    return tf.constant(indices)


def attack(surrogates, x, y, cfg, model_indices=None):
    """Run `cfg` on the batch x (float32 [B,H,W,C] in [-1,1]) with labels y ([B] ints).

    surrogates: callables returning logits, (logits, aux_logits) or an object with
        .logits/.aux_logits (aux may be None).
    y: true labels, or target labels when cfg.targeted.
    model_indices: optional int array [num_iter, m_svrg] of surrogate indices of the inner
        steps (svre; ens has none and ignores it); drawn from cfg.seed and the batch when None.
    Returns AttackResult(x_adv tensor, gradient_passes): the single-model forward-backward
    passes the attack ran (an SI/Admix pass covers all copies of the batch).
    """
    if not surrogates:
        raise ValueError('at least one surrogate is needed')
    x_np = np.asarray(x, np.float32)
    y_np = np.asarray(y).astype(np.int32)
    if x_np.ndim != 4 or y_np.shape != x_np.shape[:1]:
        raise ValueError(f'x must be [B,H,W,C] and y [B]; got {x_np.shape} and {y_np.shape}')
    key = randomness.batch_key(cfg.seed, x_np, y_np)
    indices = _schedule(model_indices, key, cfg, len(surrogates))
    function = _traced(surrogates, cfg, x_np.shape[1])
    x_adv, passes = function(tf.constant(x_np), tf.constant(y_np), indices, key)
    return AttackResult(x_adv, int(passes))


def generate(surrogates, x, y, cfg, model_indices=None):
    """Adversarial images for x: an ndarray for ndarray input, else a tensor (same shape)."""
    x_adv = attack(surrogates, x, y, cfg, model_indices).x_adv
    return x_adv if tf.is_tensor(x) else x_adv.numpy()
