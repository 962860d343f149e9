"""Attack components against direct computations: TI, DI, SI, Admix, losses, updates, config."""
import collections

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import tensorflow as tf

from svrens_tf import attacks
from svrens_tf.attacks import losses, smoothing, transforms, updates
from svrens_tf.attacks.gradients import GradientOracle
from svrens_tf.outputs import split_outputs


@pytest.mark.parametrize('size,nsig', [(7, 3), (15, 3), (5, 2)])
def test_ti_kernel_is_a_normalised_sampled_gaussian(size, nsig):
    profile = scipy.signal.windows.gaussian(size, std=(size - 1) / (2 * nsig))
    expected = np.outer(profile, profile) / np.outer(profile, profile).sum()
    kernel = smoothing.gaussian_kernel(size, nsig)
    np.testing.assert_allclose(kernel, expected, rtol=1e-6)
    assert abs(kernel.sum() - 1.0) < 1e-6


def test_ti_smoothing_is_a_per_channel_zero_padded_convolution():
    grad = np.random.RandomState(0).randn(2, 12, 10, 3).astype(np.float32)
    kernel = smoothing.gaussian_kernel(7, 3)
    expected = np.stack([[scipy.signal.convolve2d(g[:, :, c], kernel, mode='same')
                          for c in range(3)] for g in grad]).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(smoothing.smooth(tf.constant(grad), kernel), expected, atol=1e-5)


def _legacy_nearest(image, size):
    """TF1 NEAREST resize without half-pixel centres: source index floor(i * in / out)."""
    index = np.floor(np.arange(size) * image.shape[0] / size).astype(int)
    return image[index][:, index]


def _di_candidates(image, pad_size):
    """Every image DI can produce from `image`: unchanged, or each (rnd, top, left) draw."""
    size = image.shape[0]
    yield image
    for rnd in range(size, pad_size):
        resized = _legacy_nearest(image, rnd)
        for top in range(pad_size - rnd):
            for left in range(pad_size - rnd):
                padded = np.zeros((pad_size, pad_size, image.shape[2]), image.dtype)
                padded[top:top + rnd, left:left + rnd] = resized
                yield _legacy_nearest(padded, size)


def test_di_pad_size_scales_the_authors_331_for_299():
    assert transforms.default_pad_size(299) == 331
    assert transforms.default_pad_size(32) == 35
    assert transforms.default_pad_size(8) == 9


def test_di_draws_are_resize_pad_resize_and_reproducible():
    image = np.random.RandomState(1).rand(12, 12, 3).astype(np.float32)
    x = tf.constant(np.stack([image, image]))
    candidates = list(_di_candidates(image, 16))
    outputs = []
    for seed in range(12):
        out = transforms.diverse_input(x, tf.constant([seed, 0]), 0.5, 16).numpy()
        again = transforms.diverse_input(x, tf.constant([seed, 0]), 0.5, 16).numpy()
        np.testing.assert_array_equal(out, again)
        assert out.shape == x.shape
        np.testing.assert_array_equal(out[0], out[1])  # one draw for the whole batch
        assert any(np.array_equal(out[0], c) for c in candidates)
        outputs.append(out[0])
    changed = [not np.array_equal(o, image) for o in outputs]
    assert any(changed) and not all(changed)


def test_di_probability_and_per_image_coins():
    x = tf.constant(np.random.RandomState(2).rand(16, 12, 12, 3).astype(np.float32))
    for seed in range(4):
        key = tf.constant([seed, 1])
        np.testing.assert_array_equal(transforms.diverse_input(x, key, 0.0, 16), x)
        per_image = transforms.diverse_input(x, key, 0.5, 16, per_image=True).numpy()
        changed = [not np.array_equal(per_image[i], x[i]) for i in range(16)]
        assert any(changed) and not all(changed)


def _linear_model(seed, size, classes=4):
    w = tf.constant(np.random.RandomState(seed).randn(size * size * 3, classes)
                    .astype(np.float32) * 0.1)
    return lambda x: tf.reshape(x, [tf.shape(x)[0], -1]) @ w


def _input_grad(model, x, labels):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = losses.cross_entropy(model(x), labels)
    return tape.gradient(loss, x).numpy()


@pytest.mark.parametrize('aggregate,scale', [('sum', 1.0), ('mean', 1.0 / 5)])
def test_si_gradient_is_the_weighted_sum_of_copy_gradients(aggregate, scale):
    model = _linear_model(3, 6)
    x = np.random.RandomState(4).uniform(-1, 1, (2, 6, 6, 3)).astype(np.float32)
    labels = tf.constant([1, 3])
    cfg = attacks.AttackConfig(base='mi_fgsm', si_copies=5, si_aggregate=aggregate)
    oracle = GradientOracle([model], cfg, 6, cfg.settings())
    got = oracle.single(tf.constant(0), tf.constant(x), tf.constant(x), labels,
                        tf.constant([0, 0])).numpy()
    # The 5B-image batch mean gives each copy's B-image mean CE a weight of 1/5.
    expected = sum(_input_grad(model, x / 2 ** i, labels) / 2 ** i for i in range(5)) / 5
    np.testing.assert_allclose(got, scale * expected, rtol=1e-4, atol=1e-7)


def test_admix_adds_a_portion_of_pool_images():
    rng = np.random.RandomState(5)
    x = tf.constant(rng.rand(4, 5, 5, 3).astype(np.float32))
    pool = rng.rand(4, 5, 5, 3).astype(np.float32)
    mixed = transforms.admix(x, tf.constant(pool), tf.constant([3, 9]), 3, 0.2).numpy()
    assert mixed.shape == (12, 5, 5, 3)
    partners = set()
    for copy in range(3):
        for b in range(4):
            added = (mixed[copy * 4 + b] - x[b].numpy()) / 0.2
            matches = [p for p in range(4) if np.allclose(added, pool[p], atol=1e-5)]
            assert len(matches) == 1
            partners.add(matches[0])
    assert len(partners) > 1
    again = transforms.admix(x, tf.constant(pool), tf.constant([3, 9]), 3, 0.2)
    np.testing.assert_array_equal(mixed, again)


def test_si_copies_are_halvings():
    x = tf.constant(np.random.RandomState(6).rand(2, 3, 3, 1).astype(np.float32))
    copies = transforms.scale_copies(x, 5).numpy()
    np.testing.assert_array_equal(copies.reshape(5, 2, 3, 3, 1),
                                  [x.numpy() / 2 ** i for i in range(5)])


def _np_ce(logits, y):
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean()


def test_ensemble_fusions_match_their_formulas():
    rng = np.random.RandomState(7)
    y = np.array([0, 2, 1])
    logits = [rng.randn(3, 4) for _ in range(3)]
    aux = [rng.randn(3, 4), None, rng.randn(3, 4)]
    outputs = [(tf.constant(l), None if a is None else tf.constant(a))
               for l, a in zip(logits, aux)]
    with_aux = [a for a in aux if a is not None]

    def predictions(heads):
        p = np.mean([np.exp(h) / np.exp(h).sum(1, keepdims=True) for h in heads], axis=0)
        return -np.log(p[np.arange(3), y]).mean()
    expected = {
        'logits': _np_ce(np.mean(logits, 0), y) + 0.4 * _np_ce(np.mean(with_aux, 0), y),
        'predictions': predictions(logits) + 0.4 * predictions(with_aux),
        'loss': np.mean([_np_ce(l, y) + (0 if a is None else 0.4 * _np_ce(a, y))
                         for l, a in zip(logits, aux)]),
    }
    for fusion, value in expected.items():
        got = losses.ensemble_loss(outputs, tf.constant(y), fusion, 0.4, targeted=False)
        assert float(got) == pytest.approx(value, rel=1e-6)
        negated = losses.ensemble_loss(outputs, tf.constant(y), fusion, 0.4, targeted=True)
        assert float(negated) == pytest.approx(-value, rel=1e-6)


def test_split_outputs_accepts_tensors_pairs_and_objects():
    logits, aux = tf.ones([1, 3]), tf.zeros([1, 3])
    Heads = collections.namedtuple('Heads', ['logits', 'aux_logits'])
    assert split_outputs(logits) == (logits, None)
    assert split_outputs((logits, aux)) == (logits, aux)
    assert split_outputs(Heads(logits, None)) == (logits, None)


def test_normalize_and_box():
    g = np.random.RandomState(8).randn(3, 4, 4, 2).astype(np.float32)
    g[1] = 0.0
    n = updates.normalize(tf.constant(g)).numpy()
    np.testing.assert_allclose(np.abs(n[[0, 2]]).mean(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(n[1], 0.0)
    x = tf.constant([[-0.99, 0.0, 0.99]])
    x_min, x_max = updates.eps_box(x, 0.05)
    np.testing.assert_allclose(x_min, [[-1.0, -0.05, 0.94]], atol=1e-7)
    np.testing.assert_allclose(x_max, [[-0.94, 0.05, 1.0]], atol=1e-7)


def test_presets_fill_only_unset_fields():
    cfg = attacks.AttackConfig(base='ti_dim', di_prob=0.7)
    assert (cfg.ti_kernel_size, cfg.di_prob, cfg.m_svrg, cfg.momentum) == (7, 0.7, 32, 1.0)
    assert cfg.outer_grad == 'recompute' and cfg.beta == cfg.alpha == 1.6
    assert attacks.AttackConfig(base='tim').outer_grad == 'cache'
    i_fgsm = attacks.AttackConfig(base='i_fgsm', max_epsilon=8, num_iter=4)
    assert (i_fgsm.momentum, i_fgsm.m_svrg, i_fgsm.alpha) == (0.0, 16, 2.0)
    assert i_fgsm.eps == pytest.approx(16 / 255) and i_fgsm.step == pytest.approx(4 / 255)
    admix = attacks.AttackConfig(base='admix_ti_dim')
    assert (admix.admix_copies, admix.si_copies, admix.si_aggregate) == (3, 5, 'mean')
    for bad in (dict(base='pgd'), dict(fusion='max'), dict(ti_kernel_size=6),
                dict(outer_grad='sometimes'), dict(di_prob=2.0)):
        with pytest.raises(ValueError):
            attacks.AttackConfig(**bad)


def test_presets_may_set_any_field_and_unknown_keys_fail(monkeypatch):
    monkeypatch.setitem(attacks.PRESETS, 'long_mi', dict(num_iter=20, max_epsilon=8.0,
                                                         fusion='loss', m_svrg=3))
    cfg = attacks.AttackConfig(base='long_mi')
    assert (cfg.num_iter, cfg.max_epsilon, cfg.fusion, cfg.m_svrg) == (20, 8.0, 'loss', 3)
    assert cfg.alpha == pytest.approx(0.4) and cfg.momentum == 1.0 and cfg.ti_kernel_size == 0
    assert attacks.AttackConfig(base='long_mi', num_iter=5).num_iter == 5
    monkeypatch.setitem(attacks.PRESETS, 'typo', dict(momentun=0.5))
    with pytest.raises(ValueError, match="'typo' sets unknown fields \\['momentun'\\]"):
        attacks.AttackConfig(base='typo')


def test_stage_names_are_checked():
    for kind in ('gradient', 'post_process', 'update'):
        with pytest.raises(ValueError, match=f"AttackConfig.{kind}='nope': choose from"):
            attacks.AttackConfig(**{kind: 'nope'})
