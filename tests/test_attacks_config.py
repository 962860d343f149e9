"""AttackConfig refuses every out-of-range, non-finite or mistyped field with one message
naming the field, the value and what it allows (issue #11), before anything runs."""
import dataclasses
import math

import numpy as np
import pytest

from svrens_tf import attacks
from svrens_tf.attacks import config

# (field, bad value, text the message must hold): the cases first.
CASES = [
    ('max_epsilon', -4, 'in (0, 255]'),
    ('max_epsilon', 300, 'in (0, 255]'),
    ('max_epsilon', math.nan, 'finite number in (0, 255]'),
    ('alpha', -5, '> 0'),
    ('num_iter', 0, 'int >= 1'),
    ('max_epsilon', 0, 'in (0, 255]'),
    ('max_epsilon', math.inf, 'finite number'),
    ('max_epsilon', '16', 'finite number'),
    ('num_iter', 2.5, 'an int'),
    ('num_iter', True, 'an int'),
    ('alpha', math.nan, 'finite number > 0'),
    ('beta', 0.0, '> 0'),
    ('beta', -math.inf, 'finite number > 0'),
    ('momentum', -1.0, '>= 0'),
    ('momentum', math.nan, 'finite number >= 0'),
    ('inner_momentum', -0.5, '>= 0'),
    ('aux_weight', -0.4, '>= 0'),
    ('di_prob', 1.5, 'in [0, 1]'),
    ('di_prob', -0.1, 'in [0, 1]'),
    ('admix_portion', 2.0, 'in [0, 1]'),
    ('m_svrg', -1, 'int >= 0'),
    ('m_svrg', 4.0, 'an int'),
    ('si_copies', 0, '>= 1'),
    ('admix_copies', -1, '>= 0'),
    ('ti_kernel_size', 6, 'odd'),
    ('ti_kernel_size', -7, 'odd'),
    ('ti_nsig', 0.0, '> 0'),
    ('di_pad_size', 1, '>= 2'),
    ('seed', -1, 'in [0, 2147483648)'),
    ('seed', 2 ** 31, 'in [0, 2147483648)'),
    ('nesterov', 1, 'a bool'),
    ('targeted', 'yes', 'a bool'),
    ('di_per_image', 0, 'a bool'),
    ('ensemble', 'svrg', "choose from ['ens', 'svre']"),
    ('estimator', 'svrg++', "choose from ['svrg', 'saga', 'sarah', 'svrg_is']"),
    ('fusion', 'max', "choose from ['logits', 'predictions', 'loss']"),
    ('outer_grad', 'sometimes', "choose from ['auto', 'recompute', 'cache', 'shared']"),
    ('si_aggregate', 'max', "choose from ['sum', 'mean']"),
    ('base', 'mi_fsgm', "choose from ['admix_ti_dim'"),
    ('gradient', 'nope', "choose from ['direct'"),
    ('post_process', 'gauss', "choose from ["),
    ('update', 'adam', "choose from ['momentum'"),
    ('vt_neighbors', 0, 'int >= 1'),
    ('vt_bound', -1.5, '> 0'),
    ('pi_amplification', 0.0, '> 0'),
    ('pi_kernel_size', 1, 'odd >= 3'),
    ('pi_kernel_size', 4, 'odd >= 3'),
    ('pi_gamma', math.nan, 'finite number >= 0'),
]


@pytest.mark.parametrize('field,value,allowed', CASES)
def test_bad_field_is_refused_naming_field_value_and_range(field, value, allowed):
    with pytest.raises(ValueError) as error:
        attacks.AttackConfig(**{field: value})
    message = str(error.value)
    assert message.startswith(f'AttackConfig.{field}={value!r}')
    assert allowed in message


def test_bad_preset_values_are_refused_too(monkeypatch):
    monkeypatch.setitem(attacks.PRESETS, 'broken', dict(di_prob=7.0))
    with pytest.raises(ValueError, match=r'AttackConfig.di_prob=7.0: .*in \[0, 1\]'):
        attacks.AttackConfig(base='broken')


def test_estimators_other_than_svrg_need_svre():
    with pytest.raises(ValueError, match="estimator='saga' needs ensemble='svre', not 'ens'"):
        attacks.AttackConfig(ensemble='ens', estimator='saga')


def test_nesterov_needs_the_momentum_update():
    with pytest.raises(ValueError, match="nesterov=True needs update='momentum'"):
        attacks.AttackConfig(base='ni_fgsm', update='patchwise')


@pytest.mark.parametrize('fields', [
    dict(max_epsilon=255), dict(max_epsilon=0.5, num_iter=1), dict(alpha=20.0, beta=0.01),
    dict(momentum=0.0, inner_momentum=0.0, aux_weight=0.0), dict(di_prob=1.0, di_pad_size=40),
    dict(admix_portion=0.0, m_svrg=0, seed=0), dict(num_iter=np.int64(3), max_epsilon=np.float32(8)),
    dict(ti_kernel_size=1, si_copies=1, admix_copies=0, nesterov=np.bool_(True))])
def test_edge_values_inside_the_ranges_are_accepted(fields):
    cfg = attacks.AttackConfig(**fields)
    assert all(getattr(cfg, name) == value for name, value in fields.items())


def test_every_rule_names_a_field_and_every_default_passes_its_rule():
    names = {f.name for f in dataclasses.fields(attacks.AttackConfig)}
    assert set(config.RULES) <= names
    assert names - set(config.RULES) == {'base', 'gradient', 'post_process', 'update'}
    for preset in attacks.PRESETS:
        attacks.AttackConfig(base=preset)
