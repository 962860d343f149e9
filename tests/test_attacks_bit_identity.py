"""The engine's results stay bit-identical on CPU across refactors.

`tests/data/attacks_reference.npz` holds the adversarial images that the engine of commit
ecb6fcb (numeric settings baked into the trace, one trace per config) produced for the cases
below, on two small surrogates built from fixed numpy weights.  The current engine (settings
as runtime tensors, one trace shared by the cases of one structure, e.g. mi_fgsm_cache and
mi_fgsm_eps4_beta) must reproduce them byte for byte.
Recorded with the old code on sys.path:

    PYTHONPATH=/path/to/old/checkout python tests/test_attacks_bit_identity.py --record OUT.npz

Outputs of sign-step attacks are x0 plus whole steps, clipped, so rounding noise between
CPUs does not reach them unless a gradient entry sits at exactly zero.
"""
import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf

from svrens_tf import attacks

REFERENCE = pathlib.Path(__file__).parent / 'data' / 'attacks_reference.npz'
SIZE, CLASSES = 16, 6

# (name, AttackConfig fields): every preset under both strategies' structural variants.
CASES = [
    ('mi_fgsm_ens', dict(base='mi_fgsm', ensemble='ens')),
    ('mi_fgsm_cache', dict(base='mi_fgsm', outer_grad='cache')),
    ('mi_fgsm_recompute', dict(base='mi_fgsm', outer_grad='recompute')),
    ('mi_fgsm_predictions', dict(base='mi_fgsm', fusion='predictions', m_svrg=2)),
    ('mi_fgsm_loss_targeted', dict(base='mi_fgsm', fusion='loss', targeted=True)),
    ('mi_fgsm_eps4_beta', dict(base='mi_fgsm', max_epsilon=4, beta=0.5, momentum=0.7)),
    ('i_fgsm_svre', dict(base='i_fgsm')),
    ('ni_fgsm_svre', dict(base='ni_fgsm')),
    ('tim_ens', dict(base='tim', ensemble='ens', ti_kernel_size=5)),
    ('tim_svre', dict(base='tim', ti_kernel_size=5)),
    ('dim_svre', dict(base='dim', di_per_image=True)),
    ('ti_dim_shared', dict(base='ti_dim', ti_kernel_size=3, outer_grad='shared')),
    ('si_ti_dim_svre', dict(base='si_ti_dim', ti_kernel_size=3, si_copies=3)),
    ('admix_ti_dim_ens', dict(base='admix_ti_dim', ensemble='ens', ti_kernel_size=3,
                              si_copies=2, admix_copies=2)),
]
COMMON = dict(num_iter=3, m_svrg=3, max_epsilon=16, seed=21)


def build_surrogates():
    """A conv net with an aux head and a softmax regression, from fixed numpy weights."""
    rng = np.random.RandomState(1234)
    conv = tf.constant(rng.randn(3, 3, 3, 8).astype(np.float32) * 0.3)
    dense = tf.constant(rng.randn(8, CLASSES).astype(np.float32) * 0.5)
    aux = tf.constant(rng.randn(SIZE * SIZE * 8, CLASSES).astype(np.float32) * 0.02)
    linear = tf.constant(rng.randn(SIZE * SIZE * 3, CLASSES).astype(np.float32) * 0.05)

    def cnn(x):
        h = tf.nn.relu(tf.nn.conv2d(x, conv, 1, 'SAME'))
        flat = tf.reshape(h, [tf.shape(h)[0], -1])
        return tf.reduce_mean(h, axis=[1, 2]) @ dense, flat @ aux

    def regression(x):
        return tf.reshape(x, [tf.shape(x)[0], -1]) @ linear
    return [cnn, regression]


def batch():
    rng = np.random.RandomState(99)
    x = np.clip(rng.uniform(-1.2, 1.2, (2, SIZE, SIZE, 3)), -1, 1).astype(np.float32)
    return x, np.array([1, 4])


SURROGATES = build_surrogates()  # one set, so cases of one structure share a trace


def run(fields):
    cfg = attacks.AttackConfig(**{**COMMON, **fields})
    return attacks.generate(SURROGATES, *batch(), cfg)


@pytest.fixture(scope='module')
def reference():
    return np.load(REFERENCE)


@pytest.mark.parametrize('name,fields', CASES, ids=[name for name, _ in CASES])
def test_results_equal_the_recorded_engine(reference, name, fields):
    x_adv = run(fields)
    assert np.abs(x_adv - batch()[0]).max() > 0
    np.testing.assert_array_equal(x_adv, reference[name])


if __name__ == '__main__':
    if sys.argv[1:2] != ['--record'] or len(sys.argv) != 3:
        sys.exit('usage: test_attacks_bit_identity.py --record OUT.npz')
    np.savez_compressed(sys.argv[2], **{name: run(fields) for name, fields in CASES})
