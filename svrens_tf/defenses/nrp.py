"""NRP (Naseer et al. 2020): the released neural representation purifiers in TF2, then a classifier.

Two purifiers of Muzammal-Naseer/NRP `networks.py`, built from their released state dicts
(`pretrained_purifiers/NRP.pth`, `NRP_resG.pth`, converted once by `svrens-download --defense
nrp`), on RGB images in [0,1] of any size, output unclamped:
- `nrp`: conv_first 3x3 (3->64) -> 23 RRDBs -> trunk_conv 3x3 (64->3), no global skip. An
  RRDB is three residual dense blocks (five 3x3 convs on the running concatenation
  [x, x1..x4], LeakyReLU 0.2 after the first four, `x5 * 0.2 + x`), closed by `out * 0.2 + x`.
- `nrp_resg`: conv_first + LeakyReLU 0.1 -> 23 `x + conv2(relu(conv1(x)))` blocks -> conv_last.
All convs have biases, stride 1, zero padding 1 (= TF 'SAME').

As `purify.py` runs it (the TransferAttack / VT scripts): optionally (`dynamic`, for white-box
settings) x + N(0, 0.05) projected onto the 16/255 L-inf ball around x and clamped to [0,1];
purify; clamp to [0,1] and store as an 8-bit image (x255, rounded); the classifier
(Inc-v3ens3 by default, as the VT code ran it) labels the stored image.
"""
import numpy as np
import tensorflow as tf

from svrens_tf.defenses import base
from svrens_tf.defenses.hgd_nets.torch_layers import StateDict

BLOCKS = 23
RESIDUAL_SCALE = 0.2
DYNAMIC_STD = 0.05
DYNAMIC_EPS = 16 / 255
RELEASED_FILES = {'nrp': 'NRP.pth', 'nrp_resg': 'NRP_resG.pth'}


def _rrdb_trunk(params, x):
    for block in range(BLOCKS):
        trunk_in = x
        for rdb in (1, 2, 3):
            key = f'RRDB_trunk.{block}.RDB{rdb}'
            features = [x]
            for i in range(1, 5):
                y = params.conv(tf.concat(features, -1), f'{key}.conv{i}', padding=1, bias=True)
                features.append(tf.nn.leaky_relu(y, 0.2))
            y = params.conv(tf.concat(features, -1), f'{key}.conv5', padding=1, bias=True)
            x = y * RESIDUAL_SCALE + x
        x = x * RESIDUAL_SCALE + trunk_in
    return x


def nrp(params, x):
    """NRP(3, 3, 64, 23) on [B,H,W,3] in [0,1]."""
    x = params.conv(x, 'conv_first', padding=1, bias=True)
    return params.conv(_rrdb_trunk(params, x), 'trunk_conv', padding=1, bias=True)


def nrp_resg(params, x):
    """NRP_resG(3, 3, 64, 23) on [B,H,W,3] in [0,1]."""
    x = tf.nn.leaky_relu(params.conv(x, 'conv_first', padding=1, bias=True), 0.1)
    for block in range(BLOCKS):
        key = f'recon_trunk.{block}'
        y = params.conv(x, f'{key}.conv1', padding=1, bias=True, relu=True)
        x = x + params.conv(y, f'{key}.conv2', padding=1, bias=True)
    return params.conv(x, 'conv_last', padding=1, bias=True)


NETWORKS = {'nrp': nrp, 'nrp_resg': nrp_resg}


class Purifier(tf.Module):
    """One released purifier from its state dict ({key: ndarray}, the .pth's own names).

    Construction traces the network once, converting every weight, and refuses a state dict
    with missing, misshaped or unused keys."""

    def __init__(self, state_dict, variant='nrp'):
        super().__init__(name=variant)
        if variant not in NETWORKS:
            raise ValueError(f'unknown purifier {variant!r}; choose from {", ".join(NETWORKS)}')
        self.params = StateDict(state_dict, f'{variant} ({RELEASED_FILES[variant]})')
        network = NETWORKS[variant]
        self._forward = self.params.trace(lambda x: network(self.params, x), [None, None, 3])

    def __call__(self, images_unit):
        """float32 RGB [B,H,W,3] in [0,1] -> purified [B,H,W,3], unclamped."""
        return self._forward(tf.convert_to_tensor(images_unit, tf.float32))


def dynamic_input(images_unit, noise):
    """purify.py's --dynamic step: x + noise, projected onto the 16/255 ball around x, in [0,1]."""
    moved = np.clip(images_unit + noise, images_unit - DYNAMIC_EPS, images_unit + DYNAMIC_EPS)
    return np.clip(moved, 0.0, 1.0).astype(np.float32)


class NeuralRepresentationPurifier(base.TransformDefense):
    """Purify with `purifier` ('nrp' or 'nrp_resg'), store as uint8, classify.

    `weights`: the folder holding the converted `<purifier>.npz` (default
    `<checkpoint_dir>/nrp`, filled by `svrens-download --defense nrp`). `dynamic=True` adds
    purify.py's noise step (seeded by `seed`)."""

    name = 'nrp'

    @classmethod
    def stored_weights(cls, settings):
        return [(cls.name, settings['purifier'])]

    def __init__(self, purifier='nrp', dynamic=False, weights=None, classifier='ens3_adv_inc_v3',
                 seed=0, checkpoint_dir=None, load_model=base.load_zoo_model):
        if purifier not in NETWORKS:
            raise ValueError(f'unknown purifier {purifier!r}; choose from {", ".join(NETWORKS)}')
        self.purifier = Purifier(base.load_weights(self.name, purifier, weights, checkpoint_dir),
                                 purifier)
        self.dynamic = dynamic
        self.rng = np.random.RandomState(seed)
        super().__init__(classifier, checkpoint_dir, load_model)

    def transform(self, images):
        x = images.astype(np.float32) / np.float32(255)
        if self.dynamic:
            x = dynamic_input(x, self.rng.normal(0.0, DYNAMIC_STD, x.shape))
        purified = np.clip(self.purifier(x).numpy(), 0.0, 1.0)
        return np.round(purified * 255.0).astype(np.float32) / 255.0

