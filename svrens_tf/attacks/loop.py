"""The attack loop: a whole batch attack (outer and inner loops) in one traced tf.function.

Outer step t runs the stages named by the config (stages/__init__.py): the gradient
transform asks the ensemble strategy for directions (the ensemble gradient for ens, the
SVR-Ens direction of svre.py for svre), the direction is post-processed (TI) and the update
rule moves x_t inside the eps-box.  The paper's base attacks are the stages 'direct' (NI
look-ahead with nesterov), 'ti' and 'momentum' (MI-FGSM; I-FGSM with mu = 0).

The traced function takes the numeric settings (AttackConfig.settings) as tensors and is
cached per (surrogates, AttackConfig.trace_key, image shape), so a sweep over eps, steps, T,
M, momentum or seed, and every batch size, reuse one trace.
"""
import collections

import numpy as np
import tensorflow as tf

from svrens_tf.attacks import randomness, stages, svre
from svrens_tf.attacks.estimators import ESTIMATORS
from svrens_tf.attacks.gradients import GradientOracle
from svrens_tf.attacks.updates import eps_box

AttackResult = collections.namedtuple('AttackResult', ['x_adv', 'gradient_passes'])

_TRACED = {}
_TRACED_LIMIT = 8


def _attack_function(surrogates, cfg, image_shape, settings):
    """tf.function(x0, labels, model_indices, key, settings) -> (x_adv, gradient passes);
    `cfg` decides the structure only, `settings` are example values for the signature."""
    modules = [stages.load(kind, getattr(cfg, kind)) for kind in stages.KINDS]
    gradient_stage, post_stage, update_stage = modules
    inner_loop = cfg.inner_steps > 0
    cached = svre.uses_members(cfg)

    def post_process(d):
        return post_stage.post_process(d, cfg)

    def attack(x0, labels, model_indices, key, settings):
        oracle = GradientOracle(surrogates, cfg, image_shape[0], settings)
        box = eps_box(x0, settings['eps'])

        def outer_step(t, x, state, passes):
            step_key = randomness.derive(key, t)

            def direction(x_query, draw_key=None):
                """(d, passes): the strategy's direction at x_query (stages/__init__.py)."""
                own_key = step_key if draw_key is None else draw_key
                gradients = oracle.ensemble(
                    x_query, x0, labels, randomness.derive(own_key, randomness.ENSEMBLE),
                    with_members=cached)
                g_ens, anchor_grads = gradients if cached else (gradients, None)
                spent = tf.constant(oracle.num_models * (2 if cached else 1))
                if not inner_loop:
                    return g_ens, spent
                step_models = (model_indices[t] if draw_key is None else
                               randomness.model_schedule(draw_key, 1, settings['inner_steps'],
                                                         oracle.num_models)[0])
                d, inner_passes = svre.svre_direction(
                    oracle, x_query, x0, labels, g_ens, anchor_grads, step_models, own_key,
                    box, post_process)
                return d, spent + inner_passes

            d, state, spent = gradient_stage.gradient(
                direction, x, state, settings, cfg, randomness.derive(step_key, randomness.STAGE))
            x, state = update_stage.update(x, post_process(d), state, settings, box, cfg)
            return t + 1, x, state, passes + spent

        _, x_adv, _, passes = tf.while_loop(
            lambda t, *_: t < settings['num_iter'], outer_step,
            (tf.constant(0), x0, stages.initial_state(modules, x0, cfg), tf.constant(0)))
        return x_adv, passes

    signature = [tf.TensorSpec([None, *image_shape], tf.float32),
                 tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, None], tf.int32),
                 tf.TensorSpec([2], tf.int32),
                 {name: tf.TensorSpec([], _dtype(value)) for name, value in settings.items()}]
    return tf.function(attack, input_signature=signature)


def _dtype(value):
    return tf.int32 if isinstance(value, (int, np.integer)) else tf.float32


def _traced(surrogates, cfg, image_shape):
    """The cached attack function of (surrogates, cfg.trace_key(), image_shape)."""
    cache_key = (tuple(id(s) for s in surrogates), cfg.trace_key(), image_shape)
    if cache_key not in _TRACED:
        if len(_TRACED) >= _TRACED_LIMIT:
            _TRACED.pop(next(iter(_TRACED)))
        _TRACED[cache_key] = (list(surrogates),
                              _attack_function(surrogates, cfg, image_shape, cfg.settings()))
    return _TRACED[cache_key][1]


def _schedule(model_indices, key, cfg, num_models):
    shape = (cfg.num_iter, cfg.inner_steps)
    if model_indices is None or not cfg.inner_steps:
        return randomness.model_schedule(key, *shape, num_models)
    if not ESTIMATORS[cfg.estimator].uses_schedule:   # inner steps: svre only
        replayable = ', '.join(name for name, e in ESTIMATORS.items() if e.uses_schedule)
        raise ValueError(f'model_indices: estimator {cfg.estimator!r} draws its own inner '
                         f'surrogates; replay a schedule with {replayable}')
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
        steps (svre; ens has none and ignores it; svrg_is draws its own and refuses it); drawn
        from cfg.seed and the batch when None.
    Returns AttackResult(x_adv tensor, gradient_passes): the single-model forward-backward
    passes the attack ran (an SI/Admix pass covers all copies of the batch).
    """
    if not surrogates:
        raise ValueError('at least one surrogate is needed')
    x_np = np.asarray(x, np.float32)
    y_np = np.asarray(y).astype(np.int32)
    if x_np.ndim != 4 or y_np.shape != x_np.shape[:1] or x_np.shape[1] != x_np.shape[2]:
        raise ValueError(f'x must be [B,S,S,C] and y [B]; got {x_np.shape} and {y_np.shape}')
    key = randomness.batch_key(cfg.seed, x_np, y_np)
    indices = _schedule(model_indices, key, cfg, len(surrogates))
    function = _traced(surrogates, cfg, x_np.shape[1:])
    settings = {name: tf.constant(value, _dtype(value)) for name, value in cfg.settings().items()}
    x_adv, passes = function(tf.constant(x_np), tf.constant(y_np), indices, key, settings)
    return AttackResult(x_adv, int(passes))


def generate(surrogates, x, y, cfg, model_indices=None):
    """Adversarial images for x: an ndarray for ndarray input, else a tensor (same shape)."""
    x_adv = attack(surrogates, x, y, cfg, model_indices).x_adv
    return x_adv if tf.is_tensor(x) else x_adv.numpy()
