"""The attack engine end to end on small surrogates.

The reference loops below are re-derived in plain numpy from docs/algorithm.md (the authors'
Ens/SVRE scripts) over softmax-regression surrogates whose input gradients numpy computes in
closed form; attacks.generate must reproduce their adversarial images.
"""
import collections

import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from svrens_tf import attacks
from svrens_tf.attacks import randomness
from svrens_tf.attacks.estimators import ImportanceSvrg, Svrg
from svrens_tf.attacks.gradients import GradientOracle

SIZE, CLASSES, BATCH = 8, 5, 2
Heads = collections.namedtuple('Heads', ['logits', 'aux_logits'])


class SoftmaxRegression:
    """logits = flatten(x) @ w + b, optionally an aux head; a TF callable with numpy gradients."""

    def __init__(self, rng, aux):
        dim = SIZE * SIZE * 3
        self.heads = [(rng.randn(dim, CLASSES).astype(np.float32) * 0.05,
                       rng.randn(CLASSES).astype(np.float32))
                      for _ in range(2 if aux else 1)]

    @property
    def has_aux(self):
        return len(self.heads) == 2

    def __call__(self, x):
        flat = tf.reshape(x, [tf.shape(x)[0], -1])
        logits = [flat @ w + b for w, b in self.heads]
        return Heads(logits[0], logits[1] if self.has_aux else None)

    def logits(self, x):
        flat = x.reshape(len(x), -1).astype(np.float64)
        return [flat @ w + b for w, b in self.heads]


def ce_logit_grad(logits, y):
    """d mean-CE / d logits."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return p / len(y)


def single_grad(model, x, y, sign):
    """Input gradient of J_k = CE(logits) + 0.4 CE(aux)."""
    weights = [1.0, 0.4]
    grad = sum(wt * ce_logit_grad(l, y) @ w.T
               for wt, l, (w, _) in zip(weights, model.logits(x), model.heads))
    return sign * grad.reshape(x.shape)


def ensemble_grad(models, x, y, sign):
    """Input gradient of CE(mean logits) + 0.4 CE(mean aux logits of the aux models)."""
    grad = 0.0
    for head, weight in ((0, 1.0), (1, 0.4)):
        members = [m for m in models if len(m.heads) > head]
        mean_logits = sum(m.logits(x)[head] for m in members) / len(members)
        upstream = ce_logit_grad(mean_logits, y)
        grad = grad + weight * sum(upstream @ m.heads[head][0].T for m in members) / len(members)
    return sign * grad.reshape(x.shape)


def norm(g):
    return g / np.mean(np.abs(g), axis=(1, 2, 3), keepdims=True)


def ti(g):
    """The authors' gkern(7, 3) convolved per channel with zero padding."""
    pdf = np.exp(-0.5 * np.linspace(-3, 3, 7) ** 2)
    kernel = np.outer(pdf, pdf) / np.outer(pdf, pdf).sum()
    return scipy.ndimage.correlate(g, kernel[None, :, :, None], mode='constant')


def importance_probabilities(members, g_ens):
    """svrg_is: p_j = 1/(2K) + s_j / (2 sum s), s_j the summed per-image L2 deviations."""
    proxy = np.array([np.linalg.norm((g - g_ens).reshape(len(g), -1), axis=1).sum()
                      for g in members])
    return 0.5 / len(members) + 0.5 * proxy / proxy.sum()


def reference_direction(models, x, y, sign, ensemble, inner_models, box, beta, smooth,
                        estimator='svrg'):
    """Ens: the ensemble gradient at x.  SVRE: the last inner accumulator around x, with the
    inner estimate of `estimator` as svrens_tf/attacks/estimators.py states its update;
    inner_models holds the surrogate of each inner step, or for svrg_is its uniform u_m."""
    g_ens = ensemble_grad(models, x, y, sign)
    if ensemble == 'ens':
        return g_ens
    x_in, inner = x.copy(), np.zeros_like(x)
    members = [single_grad(model, x, y, sign) for model in models]
    table, mean = list(members), g_ens                                           # saga
    previous, x_previous = g_ens, x                                              # sarah
    p = importance_probabilities(members, g_ens)                                 # svrg_is
    for m, k in enumerate(inner_models):
        if estimator == 'svrg_is':
            k = min(int(np.sum(np.cumsum(p) <= k)), len(models) - 1)
            g = ((single_grad(models[k], x_in, y, sign) - members[k]) / (len(models) * p[k])
                 + g_ens)
        elif estimator == 'svrg':
            g = single_grad(models[k], x_in, y, sign) - (single_grad(models[k], x, y, sign)
                                                         - g_ens)
        elif estimator == 'saga':
            fresh = single_grad(models[k], x_in, y, sign)
            g = fresh - table[k] + mean
            mean = mean + (fresh - table[k]) / len(models)
            table[k] = fresh
        else:
            g = previous if m == 0 else (single_grad(models[k], x_in, y, sign)
                                         - single_grad(models[k], x_previous, y, sign) + previous)
            previous, x_previous = g, x_in
        inner = inner + norm(smooth(g))
        x_in = np.clip(x_in + beta * np.sign(inner), *box)
    return inner


def reference_attack(models, x, y, base, ensemble, indices, targeted, num_iter, eps, alpha,
                     estimator='svrg'):
    """The authors' Ens / SVRE loops for I-FGSM, MI-FGSM and TIM (docs/algorithm.md)."""
    sign = -1.0 if targeted else 1.0
    smooth = ti if base == 'tim' else (lambda g: g)
    x = x.astype(np.float64)
    box = np.clip(x - eps, -1, 1), np.clip(x + eps, -1, 1)
    velocity = np.zeros_like(x)
    for t in range(num_iter):
        direction = smooth(reference_direction(models, x, y, sign, ensemble, indices[t], box,
                                               alpha, smooth, estimator))
        if base == 'i_fgsm':
            x = np.clip(x + alpha * np.sign(direction), *box)
        else:
            velocity = velocity + norm(direction)
            x = np.clip(x + alpha * np.sign(velocity), *box)
    return x


@pytest.fixture(scope='module')
def linear_models():
    rng = np.random.RandomState(7)
    return [SoftmaxRegression(rng, aux=k != 1) for k in range(3)]


@pytest.fixture(scope='module')
def unequal_models():
    """Softmax regressions at weight scales 1, 4 and 0.25: svrg_is's p far from uniform."""
    rng = np.random.RandomState(7)
    models = [SoftmaxRegression(rng, aux=k != 1) for k in range(3)]
    for model, scale in zip(models, (1.0, 4.0, 0.25)):
        model.heads = [(w * np.float32(scale), b) for w, b in model.heads]
    return models


@pytest.fixture(scope='module')
def batch():
    rng = np.random.RandomState(3)
    x = rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype(np.float32)
    x[:, :2] = 1.0  # saturated pixels exercise the [-1, 1] clip
    return x, rng.randint(0, CLASSES, BATCH)


@pytest.mark.parametrize('base,ensemble,targeted', [
    ('i_fgsm', 'svre', False), ('mi_fgsm', 'svre', False), ('mi_fgsm', 'svre', True),
    ('tim', 'svre', False), ('mi_fgsm', 'ens', False)])
def test_generate_matches_numpy_reference(linear_models, batch, base, ensemble, targeted):
    x, y = batch
    cfg = attacks.AttackConfig(base=base, ensemble=ensemble, num_iter=3, m_svrg=4,
                               targeted=targeted, seed=11)
    indices = np.random.RandomState(5).randint(0, 3, (3, 4))
    x_adv = attacks.generate(linear_models, x, y, cfg, model_indices=indices)
    expected = reference_attack(linear_models, x, y, base, ensemble, indices, targeted,
                                cfg.num_iter, cfg.eps, cfg.step)
    assert np.abs(x_adv - x).max() > 0.5 * cfg.eps
    np.testing.assert_allclose(x_adv, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize('estimator,base,targeted', [
    ('saga', 'mi_fgsm', False), ('saga', 'tim', True), ('sarah', 'mi_fgsm', False),
    ('sarah', 'i_fgsm', True)])
def test_estimators_match_numpy_reference_and_count_their_passes(linear_models, batch,
                                                                 estimator, base, targeted):
    x, y = batch
    cfg = attacks.AttackConfig(base=base, estimator=estimator, num_iter=3, m_svrg=5,
                               targeted=targeted, seed=11)
    indices = np.random.RandomState(5).randint(0, 3, (3, 5))
    result = attacks.attack(linear_models, x, y, cfg, model_indices=indices)
    args = (linear_models, x, y, base, 'svre', indices, targeted, cfg.num_iter, cfg.eps,
            cfg.step)
    expected = reference_attack(*args, estimator=estimator)
    assert np.abs(result.x_adv.numpy() - x).max() > 0.5 * cfg.eps
    np.testing.assert_allclose(result.x_adv, expected, atol=1e-5, rtol=0)
    assert np.abs(expected - reference_attack(*args)).max() > 0   # not svrg in disguise
    per_step = {'saga': 3 + 3 + 5, 'sarah': 3 + 2 * 4}[estimator]
    assert attacks.passes_per_outer_step(cfg, 3) == per_step
    assert result.gradient_passes == 3 * per_step


def importance_uniforms(cfg, x, y):
    """[T, M] u_m of svrg_is: keyed by (batch key, t, SCHEDULE, m) (estimators.py)."""
    key = randomness.batch_key(cfg.seed, x, y)
    return np.array([[float(tf.random.stateless_uniform(
        [], randomness.derive(key, t, randomness.SCHEDULE, m)))
        for m in range(cfg.inner_steps)] for t in range(cfg.num_iter)])


@pytest.mark.parametrize('base,targeted', [('mi_fgsm', False), ('tim', True)])
def test_importance_svrg_matches_numpy_reference_and_counts_its_passes(unequal_models,
                                                                       batch, base, targeted):
    x, y = batch
    cfg = attacks.AttackConfig(base=base, estimator='svrg_is', num_iter=3, m_svrg=5,
                               targeted=targeted, seed=11)
    sign = -1.0 if targeted else 1.0
    p = importance_probabilities([single_grad(m, x, y, sign) for m in unequal_models],
                                 ensemble_grad(unequal_models, x, y, sign))
    assert p.max() > 1.5 * p.min()   # the draws and weights are not svrg's
    result = attacks.attack(unequal_models, x, y, cfg)
    expected = reference_attack(unequal_models, x, y, base, 'svre',
                                importance_uniforms(cfg, x, y), targeted, cfg.num_iter, cfg.eps,
                                cfg.step, estimator='svrg_is')
    assert np.abs(result.x_adv.numpy() - x).max() > 0.5 * cfg.eps
    np.testing.assert_allclose(result.x_adv, expected, atol=1e-5, rtol=0)
    assert attacks.passes_per_outer_step(cfg, 3) == 3 + 3 + 5
    assert result.gradient_passes == 3 * (3 + 3 + 5)


def test_importance_svrg_is_unbiased_and_is_svrg_at_uniform_probabilities(unequal_models,
                                                                          batch):
    """sum_k p_k g_is(k) = mean_k g_svrg(k) at a point away from the anchor; with p uniform
    (or every proxy 0) each g_is(k) is svrg's g(k)."""
    x, y = batch
    cfg = attacks.AttackConfig(base='mi_fgsm', estimator='svrg_is', m_svrg=1)
    oracle = GradientOracle(unequal_models, cfg, SIZE, cfg.settings())
    x_t, labels, key = tf.constant(x), tf.constant(y, tf.int32), tf.constant([3, 4])
    g_ens, members = oracle.ensemble(x_t, x_t, labels, key, with_members=True)
    x_m = tf.clip_by_value(x_t + 0.1 * tf.sign(g_ens), -1.0, 1.0)

    def estimate(estimator, k, state):
        return estimator.estimate(oracle, tf.constant(0), tf.constant(k), x_m, x_t, x_t, labels,
                                  key, state)[0].numpy().astype(np.float64)
    state = ImportanceSvrg.initial_state(g_ens, members, x_t)
    p = state[2].numpy()
    np.testing.assert_allclose(p, importance_probabilities(members.numpy(), g_ens.numpy()),
                               rtol=1e-5)
    svrg = [estimate(Svrg, k, (g_ens, members)) for k in range(3)]
    weighted = sum(p[k] * estimate(ImportanceSvrg, k, state) for k in range(3))
    np.testing.assert_allclose(weighted, np.mean(svrg, 0), rtol=0, atol=1e-6)
    assert np.abs(estimate(ImportanceSvrg, 0, state) - svrg[0]).max() > 1e-4
    uniform = (g_ens, members, tf.fill([3], 1 / 3))
    for k in range(3):
        np.testing.assert_allclose(estimate(ImportanceSvrg, k, uniform), svrg[k], rtol=0,
                                   atol=1e-7)
    flat = ImportanceSvrg.initial_state(g_ens, tf.stack([g_ens] * 3), x_t)[2]
    np.testing.assert_array_equal(flat, np.full(3, 1 / 3, np.float32))


@pytest.mark.parametrize('base', ['mi_fgsm', 'admix_ti_dim'])
def test_svre_without_inner_steps_equals_ens(linear_models, batch, base):
    x, y = batch
    ens = attacks.AttackConfig(base=base, ensemble='ens', num_iter=2, seed=4)
    svre = attacks.AttackConfig(base=base, ensemble='svre', m_svrg=0, num_iter=2, seed=4)
    np.testing.assert_array_equal(attacks.generate(linear_models, x, y, ens),
                                  attacks.generate(linear_models, x, y, svre))


@pytest.fixture(scope='module')
def conv_models():
    """Two small CNNs with different class counts' worth of capacity, one with an aux head."""
    tf.keras.utils.set_random_seed(2)

    def cnn(aux):
        inputs = tf.keras.Input((SIZE, SIZE, 3))
        h = tf.keras.layers.Conv2D(6, 3, padding='same', activation='relu')(inputs)
        logits = tf.keras.layers.Dense(CLASSES)(tf.keras.layers.GlobalAveragePooling2D()(h))
        outputs = [logits, tf.keras.layers.Dense(CLASSES)(tf.keras.layers.Flatten()(h))]
        return tf.keras.Model(inputs, outputs if aux else logits)
    return [cnn(True), cnn(False)]


@pytest.mark.parametrize('base', ['i_fgsm', 'mi_fgsm', 'tim'])
def test_cached_outer_gradients_equal_recomputed(conv_models, batch, base):
    x, y = batch
    indices = np.random.RandomState(1).randint(0, 2, (3, 5))
    results = {}
    for outer_grad in ('recompute', 'cache', 'shared')[:3 if base == 'mi_fgsm' else 2]:
        cfg = attacks.AttackConfig(base=base, num_iter=3, m_svrg=5, outer_grad=outer_grad)
        results[outer_grad] = attacks.generate(conv_models, x, y, cfg, model_indices=indices)
    difference = max(np.abs(results[name] - results['recompute']).max() for name in results)
    print(f'{base}: max |cache - recompute| = {difference:g}')
    assert difference == 0.0


@pytest.mark.parametrize('outer_grad,per_step', [('recompute', 3 + 2 * 4), ('cache', 3 + 3 + 4),
                                                 ('shared', 3 + 2 * 4)])
def test_gradient_passes_are_counted(linear_models, batch, outer_grad, per_step):
    x, y = batch
    cfg = attacks.AttackConfig(base='mi_fgsm', num_iter=2, m_svrg=4, outer_grad=outer_grad)
    assert attacks.attack(linear_models, x, y, cfg).gradient_passes == 2 * per_step
    assert attacks.passes_per_outer_step(cfg, 3) == per_step
    ens = attacks.AttackConfig(base='mi_fgsm', ensemble='ens', num_iter=2)
    assert attacks.attack(linear_models, x, y, ens).gradient_passes == 2 * 3


@pytest.fixture(scope='module')
def wide_models():
    """Softmax regressions on 32x32 images, where DI's resize range is not trivial."""
    rng = np.random.RandomState(9)

    def model(w):
        return lambda x: tf.reshape(x, [tf.shape(x)[0], -1]) @ w
    return [model(tf.constant(rng.randn(32 * 32 * 3, 4).astype(np.float32) * 0.05))
            for _ in range(2)]


def test_shared_draw_control_variate_cancels_at_the_anchor_under_di(wide_models):
    """outer_grad 'shared': at inner step 0 (x_0 = x_t) grad J_k(x_0) and grad J_k(x_t) share
    one DI draw and cancel, so g_0 = g_ens whichever model k is; with the authors' fresh
    anchor draw ('recompute') or the ensemble pass's ('cache') they do not."""
    x = np.clip(np.random.RandomState(0).uniform(-1, 1, (2, 32, 32, 3)), -1, 1).astype(np.float32)
    y = np.array([0, 3])
    for outer_grad in ('shared', 'recompute', 'cache'):
        cfg = attacks.AttackConfig(base='ti_dim', ti_kernel_size=3, di_prob=1.0, num_iter=3,
                                   m_svrg=1, outer_grad=outer_grad)
        by_model = [attacks.generate(wide_models, x, y, cfg, model_indices=np.full((3, 1), k))
                    for k in range(2)]
        assert (np.abs(by_model[1] - by_model[0]).max() == 0.0) == (outer_grad == 'shared')


@pytest.mark.parametrize('ensemble', ['ens', 'svre'])
@pytest.mark.parametrize('base', sorted(attacks.PRESETS))
def test_every_preset_stays_in_the_eps_box(wide_models, base, ensemble):
    rng = np.random.RandomState(0)
    x = np.clip(rng.uniform(-1.1, 1.1, (2, 32, 32, 3)), -1, 1).astype(np.float32)
    cfg = attacks.AttackConfig(base=base, ensemble=ensemble, num_iter=2, m_svrg=2,
                               max_epsilon=8)
    x_adv = attacks.generate(wide_models, x, np.array([0, 3]), cfg)
    assert x_adv.shape == x.shape and x_adv.dtype == np.float32
    assert np.abs(x_adv - x).max() <= cfg.eps + 1e-6
    assert x_adv.min() >= -1.0 and x_adv.max() <= 1.0
    assert np.abs(x_adv - x).max() >= 0.5 * cfg.eps


def test_seeded_and_replayable(wide_models):
    x = np.random.RandomState(1).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    y = np.array([1, 2])
    cfg = attacks.AttackConfig(base='ti_dim', num_iter=2, m_svrg=3, seed=5)
    first = attacks.generate(wide_models, x, y, cfg)
    np.testing.assert_array_equal(first, attacks.generate(wide_models, x, y, cfg))
    other = attacks.generate(wide_models, x, y, attacks.AttackConfig(
        base='ti_dim', num_iter=2, m_svrg=3, seed=6))
    assert not np.array_equal(first, other)


def test_model_indices_pick_the_inner_surrogates(linear_models, batch):
    """Inner steps that only ever use one surrogate equal an svre run whose other surrogates
    are never picked: the schedule, not chance, decides."""
    x, y = batch
    cfg = attacks.AttackConfig(base='mi_fgsm', num_iter=2, m_svrg=3)
    only_first = np.zeros((2, 3), np.int32)
    a = attacks.generate(linear_models, x, y, cfg, model_indices=only_first)
    b = attacks.generate(linear_models, x, y, cfg, model_indices=only_first + 1)
    assert not np.array_equal(a, b)
    with pytest.raises(ValueError):
        attacks.generate(linear_models, x, y, cfg, model_indices=only_first + 3)
    # svrg_is draws its own surrogates: a replayed schedule would be silently ignored.
    with pytest.raises(ValueError, match="'svrg_is' draws its own"):
        attacks.generate(linear_models, x, y, attacks.AttackConfig(
            base='mi_fgsm', num_iter=2, m_svrg=3, estimator='svrg_is'), model_indices=only_first)


def test_tensor_io_and_no_retrace_on_the_next_batch(linear_models, batch):
    x, y = batch
    traces = []

    def counted(x):
        traces.append(1)  # Python side effects run only while tracing
        return linear_models[0](x)
    cfg = attacks.AttackConfig(base='mi_fgsm', num_iter=2, m_svrg=2)
    out = attacks.generate([counted, linear_models[1]], tf.constant(x), y, cfg)
    assert tf.is_tensor(out) and out.shape == x.shape
    traced = len(traces)
    attacks.generate([counted, linear_models[1]], -x, y, cfg)
    assert len(traces) == traced



def _regressions(seed):
    """Fresh callables over the same fixed weights: a new trace each time they are built."""
    rng = np.random.RandomState(seed)
    weights = [tf.constant(rng.randn(SIZE * SIZE * 3, CLASSES).astype(np.float32) * 0.05)
               for _ in range(2)]
    return [lambda x, w=w: tf.reshape(x, [tf.shape(x)[0], -1]) @ w for w in weights]


def test_a_sweep_shares_one_trace_and_matches_fresh_traces(batch):
    """Configs that differ in M, T, eps, beta, momentum or seed run on one trace (each model's
    graph traced once), with the results of a trace of their own."""
    x, y = batch
    shared = _regressions(3)
    sweep = [dict(m_svrg=2), dict(m_svrg=5, num_iter=3), dict(max_epsilon=4.0, beta=1.0),
             dict(momentum=0.5, seed=3, alpha=2.0)]
    results = [attacks.generate(shared, x, y, attacks.AttackConfig(base='mi_fgsm', **fields))
               for fields in sweep]
    assert [attacks.trace_count(s) for s in shared] == [2, 2]  # ensemble pass + inner switch
    for fields, result in zip(sweep, results):
        fresh = attacks.generate(_regressions(3), x, y,
                                 attacks.AttackConfig(base='mi_fgsm', **fields))
        np.testing.assert_array_equal(result, fresh)


def neighbour_draws(cfg, x, y, t, n, num_models):
    """The engine's draws for variance-tuning neighbour n of outer step t (the keys of
    randomness.py): the noise within vt_bound * eps, and the neighbour's inner surrogates."""
    key = randomness.derive(randomness.batch_key(cfg.seed, x, y), t, randomness.STAGE)
    bound = tf.constant(np.float32(cfg.vt_bound)) * tf.constant(np.float32(cfg.eps))
    noise = tf.random.stateless_uniform(x.shape, randomness.derive(key, n, 0), -bound, bound)
    models = randomness.model_schedule(randomness.derive(key, n, 1), 1, cfg.inner_steps,
                                       num_models)[0]
    return noise.numpy().astype(np.float64), models.numpy()


def reference_variance_tuning(models, x, y, cfg, indices):
    """VMI/VNI-FGSM as the authors' vmi_fgsm.py / vni_fgsm.py, with Ens or SVRE directions."""
    x_clean, x = x, x.astype(np.float64)
    box = np.clip(x - cfg.eps, -1, 1), np.clip(x + cfg.eps, -1, 1)
    velocity, variance = np.zeros_like(x), np.zeros_like(x)

    def direction(point, inner_models):
        return reference_direction(models, point, y, 1.0, cfg.ensemble, inner_models, box,
                                   cfg.inner_step, lambda g: g)
    for t in range(cfg.num_iter):
        query = x + cfg.step * cfg.momentum * velocity if cfg.nesterov else x
        g = direction(query, indices[t])
        total = 0.0
        for n in range(cfg.vt_neighbors):
            noise, inner_models = neighbour_draws(cfg, x_clean, y, t, n, len(models))
            total = total + direction(x + noise, inner_models)
        tuned, variance = g + variance, total / cfg.vt_neighbors - g
        velocity = cfg.momentum * velocity + norm(tuned)
        x = np.clip(x + cfg.step * np.sign(velocity), *box)
    return x


@pytest.mark.parametrize('base,ensemble', [('vmi_fgsm', 'ens'), ('vmi_fgsm', 'svre'),
                                           ('vni_fgsm', 'svre')])
def test_variance_tuning_matches_numpy_reference(linear_models, batch, base, ensemble):
    x, y = batch
    cfg = attacks.AttackConfig(base=base, ensemble=ensemble, num_iter=3, m_svrg=2,
                               vt_neighbors=3, max_epsilon=8, seed=5)
    indices = np.random.RandomState(2).randint(0, 3, (3, 2))
    result = attacks.attack(linear_models, x, y, cfg, model_indices=indices)
    expected = reference_variance_tuning(linear_models, x, y, cfg, indices)
    assert np.abs(result.x_adv.numpy() - x).max() > 0.5 * cfg.eps
    np.testing.assert_allclose(result.x_adv, expected, atol=1e-5, rtol=0)
    assert result.gradient_passes == 3 * attacks.passes_per_outer_step(cfg, 3)
    assert attacks.passes_per_outer_step(cfg, 3) == 4 * (3 if ensemble == 'ens' else 3 + 2 + 3)


def project(cut):
    """The authors' project_noise: zero-padded 3x3 sum of the neighbours over 8."""
    kernel = np.full((3, 3), 1 / 8.0)
    kernel[1, 1] = 0.0
    return scipy.ndimage.correlate(cut, kernel[None, :, :, None], mode='constant')


def reference_patchwise(models, x, y, cfg, indices):
    """PI-FGSM as the authors' patch-wise_iter_attack.py, with Ens or SVRE (TI) directions."""
    x = x.astype(np.float64)
    box = np.clip(x - cfg.eps, -1, 1), np.clip(x + cfg.eps, -1, 1)
    smooth = ti if cfg.ti_kernel_size else (lambda g: g)
    step = cfg.step * cfg.pi_amplification
    amplification = np.zeros_like(x)
    for t in range(cfg.num_iter):
        d = smooth(reference_direction(models, x, y, 1.0, cfg.ensemble, indices[t], box,
                                       cfg.inner_step, smooth))
        amplification = amplification + step * np.sign(d)
        cut = np.maximum(np.abs(amplification) - cfg.eps, 0) * np.sign(amplification)
        projection = cfg.pi_gamma * step * np.sign(project(cut))
        amplification = amplification + projection
        x = np.clip(x + step * np.sign(d) + projection, *box)
    return x


@pytest.mark.parametrize('ensemble,ti_kernel_size', [('ens', 0), ('svre', 0), ('svre', 7)])
def test_patchwise_matches_numpy_reference(linear_models, batch, ensemble, ti_kernel_size):
    x, y = batch
    cfg = attacks.AttackConfig(base='pi_fgsm', ensemble=ensemble, num_iter=4, m_svrg=3,
                               ti_kernel_size=ti_kernel_size, pi_amplification=2.5)
    indices = np.random.RandomState(4).randint(0, 3, (4, 3))
    x_adv = attacks.generate(linear_models, x, y, cfg, model_indices=indices)
    expected = reference_patchwise(linear_models, x, y, cfg, indices)
    np.testing.assert_allclose(x_adv, expected, atol=1e-5, rtol=0)
    moved = np.abs(x_adv - x)
    assert moved.max() > 0.5 * cfg.eps
    # the projection moves pixels by other than whole amplified steps
    assert np.any(np.abs(moved / (cfg.step * 2.5) - np.round(moved / (cfg.step * 2.5))) > 0.01)
