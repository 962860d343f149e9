"""AttackConfig: every knob of the base attacks and of SVR-Ens, and the paper's presets.

A preset (`base`) fills in the fields the caller left unset (any field; a key that is not a
field is an error), so `AttackConfig(base='ti_dim', di_prob=0.7)` is TI-DIM with a different DI
probability.
Units follow the authors' flags: `max_epsilon`, `alpha` and `beta` are in pixel units (of 255);
the attack works in [-1, 1] where a pixel unit is 2/255 (see `eps`, `step`, `inner_step`).
"""
import dataclasses
import math
import numbers
from typing import Optional

import numpy as np

from svrens_tf.attacks import stages

# Settings of each base attack of the paper (docs/algorithm.md, "Base attacks").
# m_svrg is the authors' script default: 16 for I/MI-FGSM, 32 for the TI/DI/SI/Admix scripts.
PRESETS = {
    'i_fgsm': dict(momentum=0.0, m_svrg=16),
    'mi_fgsm': dict(momentum=1.0, m_svrg=16),
    'ni_fgsm': dict(momentum=1.0, nesterov=True, m_svrg=16),
    'tim': dict(momentum=1.0, ti_kernel_size=7, m_svrg=32),
    'dim': dict(momentum=1.0, di_prob=0.5, m_svrg=32),
    'ti_dim': dict(momentum=1.0, ti_kernel_size=7, di_prob=0.5, m_svrg=32),
    'si_ti_dim': dict(momentum=1.0, ti_kernel_size=7, di_prob=0.5, si_copies=5, m_svrg=32),
    'admix_ti_dim': dict(momentum=1.0, ti_kernel_size=7, di_prob=0.5, si_copies=5,
                         si_aggregate='mean', admix_copies=3, m_svrg=32),
    # Variance tuning as the authors' vmi_fgsm.py / vni_fgsm.py (github.com/JHL-HUST/VT).
    'vmi_fgsm': dict(momentum=1.0, gradient='variance_tuning', vt_neighbors=20, vt_bound=1.5,
                     m_svrg=16),
    'vni_fgsm': dict(momentum=1.0, nesterov=True, gradient='variance_tuning', vt_neighbors=20,
                     vt_bound=1.5, m_svrg=16),
    # Patch-wise iterative attack as the authors' patch-wise_iter_attack.py
    # (github.com/qilong-zhang/Patch-wise-iterative-attack); momentum unused.
    'pi_fgsm': dict(update='patchwise', pi_amplification=10.0, pi_kernel_size=3, pi_gamma=1.0,
                    m_svrg=16),
}

# Value of a field that neither the caller nor the preset sets.  None for alpha (max_epsilon /
# num_iter), beta (alpha) and di_pad_size (the authors' 331 scaled to the input size).
DEFAULTS = dict(ensemble='svre', estimator='svrg', fusion='logits', aux_weight=0.4, max_epsilon=16.0, num_iter=10,
                alpha=None, momentum=1.0, nesterov=False, ti_kernel_size=0, ti_nsig=3.0,
                di_prob=0.0, di_pad_size=None, di_per_image=False, si_copies=1,
                si_aggregate='sum', admix_copies=0, admix_portion=0.2, m_svrg=16, beta=None,
                inner_momentum=1.0, outer_grad='auto', targeted=False, seed=1000,
                gradient='direct', post_process='ti', update='momentum', vt_neighbors=20,
                vt_bound=1.5, pi_amplification=10.0, pi_kernel_size=3, pi_gamma=1.0)

# Fields that enter the traced attack as runtime tensors (`AttackConfig.settings`): configs
# that differ only in these share one trace (loop.py).
RUNTIME_FIELDS = ('max_epsilon', 'num_iter', 'alpha', 'momentum', 'di_prob', 'admix_portion',
                  'm_svrg', 'beta', 'inner_momentum', 'aux_weight', 'seed', 'vt_neighbors',
                  'vt_bound', 'pi_amplification', 'pi_gamma')

ENSEMBLES = ('ens', 'svre')
ESTIMATORS = ('svrg', 'saga', 'sarah', 'svrg_is')  # estimators.py
FUSIONS = ('logits', 'predictions', 'loss')
OUTER_GRADS = ('auto', 'recompute', 'cache', 'shared')
SI_AGGREGATES = ('sum', 'mean')
SEED_LIMIT = 2 ** 31  # batch_key keeps 31 bits of the seed


def _odd(v):
    return v % 2 == 1


# The allowed values of every field but base and the stage names: (kind, test, range text).
# kind 'real' is a finite int or float, 'int' an int, 'bool' a bool, a tuple a choice of
# names; `test` runs on the value once its kind is right.
RULES = dict(
    ensemble=(ENSEMBLES, None, ''),
    estimator=(ESTIMATORS, None, ''),
    fusion=(FUSIONS, None, ''),
    outer_grad=(OUTER_GRADS, None, ''),
    si_aggregate=(SI_AGGREGATES, None, ''),
    aux_weight=('real', lambda v: v >= 0, '>= 0'),
    max_epsilon=('real', lambda v: 0 < v <= 255, 'in (0, 255] (pixel units)'),
    num_iter=('int', lambda v: v >= 1, '>= 1'),
    alpha=('real', lambda v: v > 0, '> 0 (pixel units)'),
    beta=('real', lambda v: v > 0, '> 0 (pixel units)'),
    momentum=('real', lambda v: v >= 0, '>= 0'),
    inner_momentum=('real', lambda v: v >= 0, '>= 0'),
    nesterov=('bool', None, ''),
    ti_kernel_size=('int', lambda v: v == 0 or (v > 0 and _odd(v)), '0 (off) or odd >= 1'),
    ti_nsig=('real', lambda v: v > 0, '> 0'),
    di_prob=('real', lambda v: 0 <= v <= 1, 'in [0, 1]'),
    di_pad_size=('int', lambda v: v >= 2, '>= 2 and above the image size, or None (scaled '
                 '331)'),
    di_per_image=('bool', None, ''),
    si_copies=('int', lambda v: v >= 1, '>= 1 (1 = off)'),
    admix_copies=('int', lambda v: v >= 0, '>= 0 (0 = off)'),
    admix_portion=('real', lambda v: 0 <= v <= 1, 'in [0, 1]'),
    m_svrg=('int', lambda v: v >= 0, '>= 0'),
    targeted=('bool', None, ''),
    seed=('int', lambda v: 0 <= v < SEED_LIMIT, f'in [0, {SEED_LIMIT})'),
    vt_neighbors=('int', lambda v: v >= 1, '>= 1'),
    vt_bound=('real', lambda v: v > 0, '> 0 (times eps)'),
    pi_amplification=('real', lambda v: v > 0, '> 0'),
    pi_kernel_size=('int', lambda v: v >= 3 and _odd(v), 'odd >= 3'),
    pi_gamma=('real', lambda v: v >= 0, '>= 0'),
)
KIND_TEXT = dict(real='a finite number', int='an int', bool='a bool (True or False)')


def check_field(name, value):
    """ValueError naming the field, its value and what it allows, unless `value` fits."""
    kind, test, allowed = RULES[name]
    if isinstance(kind, tuple):
        if value not in kind:
            raise ValueError(f'AttackConfig.{name}={value!r}: choose from {list(kind)}')
        return
    if kind == 'bool':
        fits = isinstance(value, (bool, np.bool_))
    elif kind == 'int':
        fits = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    else:
        fits = (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
                and math.isfinite(value))
    if not fits or (test is not None and not test(value)):
        text = ' '.join(filter(None, (KIND_TEXT[kind], allowed)))
        raise ValueError(f'AttackConfig.{name}={value!r}: must be {text}')


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """One attack: a base preset, its components, the ensemble strategy and SVR-Ens settings.

    A field left as None takes the preset's value, else its value in DEFAULTS.
    base: preset name, a key of PRESETS.
    ensemble: 'ens' (gradient of the fused ensemble loss) or 'svre' (SVR-Ens estimator).
    estimator: svre's inner gradient estimate (svrens_tf/attacks/estimators.py): 'svrg' (the
        authors' fixed anchor), 'saga' (per-model gradient table), 'sarah' (recursive) or
        'svrg_is' (svrg/cache, models drawn by importance); saga, sarah and svrg_is take no
        outer_grad choice.  Anything but svrg needs ensemble 'svre'.
    fusion: ensemble loss, 'logits' (authors' code), 'predictions' or 'loss' (paper Eq. 1-3).
    aux_weight: weight of the aux-logits cross-entropy, for models that have aux logits.
    max_epsilon: L-inf budget in pixel units.  num_iter: outer iterations T.
    alpha: outer step in pixel units (default max_epsilon / num_iter).
    momentum: mu of the outer MI update; 0 gives I-FGSM.  nesterov: NI look-ahead.
    ti_kernel_size, ti_nsig: TI Gaussian smoothing of gradients (size 0 = off).
    di_prob: DI probability (0 = off).  di_pad_size: DI padded size; None scales the
        authors' 331 for 299 inputs to the input size.  di_per_image: one coin per image
        instead of the authors' one coin per batch.
    si_copies: SI scale copies x/2^i (1 = off).  si_aggregate: 'sum' of the 1/2^i weighted
        copy gradients (authors' SI scripts) or 'mean' (authors' Admix script).
    admix_copies: Admix mixed copies (0 = off).  admix_portion: weight of the mixed-in image.
    m_svrg: inner iterations M of SVR-Ens (0 reduces svre to ens).
    beta: inner step in pixel units (default alpha).
    inner_momentum: momentum of the inner accumulator; the authors' scripts all use 1.
    outer_grad: how SVR-Ens gets grad J_k(x_t) for the control variate.  'recompute': a fresh
        pass per inner step (authors' code, K + 2M passes per outer step); 'cache': the K
        gradients computed once per outer step, from the ensemble pass's forward passes and
        transform draws, and reused (2K + M passes; identical to recompute when the
        transforms are deterministic); 'shared': recomputed per inner step with the same
        random transform draw as grad J_k(x_in) (textbook SVRG control variate).  Under
        DI/Admix randomness 'cache' and 'shared' are different estimators from the
        authors'.  'auto': cache when the transforms are deterministic, else recompute.
    targeted: labels are targets; the attack descends on their loss.
    seed: seeds every random draw (model choice and transforms), with the batch content.
    gradient, post_process, update: the stage modules of the outer step, names of modules of
        svrens_tf/attacks/stages (see its __init__): gradient transform, direction
        post-processing and update rule.
    vt_neighbors, vt_bound: variance tuning's N neighbours per step, drawn uniformly within
        vt_bound * eps of x_t (gradient 'variance_tuning').
    pi_amplification, pi_kernel_size, pi_gamma: the patch-wise update's step amplification,
        project kernel size and projection step as a multiple of the amplified step
        (update 'patchwise').
    """
    base: str = 'mi_fgsm'
    ensemble: Optional[str] = None
    estimator: Optional[str] = None
    fusion: Optional[str] = None
    aux_weight: Optional[float] = None
    max_epsilon: Optional[float] = None
    num_iter: Optional[int] = None
    alpha: Optional[float] = None
    momentum: Optional[float] = None
    nesterov: Optional[bool] = None
    ti_kernel_size: Optional[int] = None
    ti_nsig: Optional[float] = None
    di_prob: Optional[float] = None
    di_pad_size: Optional[int] = None
    di_per_image: Optional[bool] = None
    si_copies: Optional[int] = None
    si_aggregate: Optional[str] = None
    admix_copies: Optional[int] = None
    admix_portion: Optional[float] = None
    m_svrg: Optional[int] = None
    beta: Optional[float] = None
    inner_momentum: Optional[float] = None
    outer_grad: Optional[str] = None
    targeted: Optional[bool] = None
    seed: Optional[int] = None
    gradient: Optional[str] = None
    post_process: Optional[str] = None
    update: Optional[str] = None
    vt_neighbors: Optional[int] = None
    vt_bound: Optional[float] = None
    pi_amplification: Optional[float] = None
    pi_kernel_size: Optional[int] = None
    pi_gamma: Optional[float] = None

    def __post_init__(self):
        """Fill unset fields from the preset, then DEFAULTS; check every field (before any
        model is loaded or file written)."""
        if self.base not in PRESETS:
            raise ValueError(f'AttackConfig.base={self.base!r}: choose from {sorted(PRESETS)}')
        preset = PRESETS[self.base]
        unknown = sorted(set(preset) - set(DEFAULTS))
        if unknown:
            raise ValueError(f'preset {self.base!r} sets unknown fields {unknown}')
        for name, default in DEFAULTS.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, preset.get(name, default))
        for name in RULES:
            if getattr(self, name) is not None or name not in ('alpha', 'beta', 'di_pad_size'):
                check_field(name, getattr(self, name))
        for kind in stages.KINDS:
            stages.load(kind, getattr(self, kind))
        if self.alpha is None:
            object.__setattr__(self, 'alpha', self.max_epsilon / self.num_iter)
        if self.beta is None:
            object.__setattr__(self, 'beta', self.alpha)
        if self.outer_grad == 'auto':
            object.__setattr__(self, 'outer_grad',
                               'recompute' if self.random_transforms else 'cache')
        if self.estimator != 'svrg' and self.ensemble != 'svre':
            raise ValueError(f'AttackConfig.estimator={self.estimator!r} needs '
                             f"ensemble='svre', not {self.ensemble!r}")
        if self.nesterov and self.update != 'momentum':
            raise ValueError(f'AttackConfig.nesterov=True needs update=\'momentum\' (its '
                             f'velocity), not {self.update!r}')

    @property
    def eps(self):
        """L-inf budget in [-1, 1] units."""
        return 2.0 * self.max_epsilon / 255.0

    @property
    def step(self):
        """Outer step alpha in [-1, 1] units."""
        return 2.0 * self.alpha / 255.0

    @property
    def inner_step(self):
        """Inner step beta in [-1, 1] units."""
        return 2.0 * self.beta / 255.0

    @property
    def random_transforms(self):
        """Whether a gradient evaluation draws random input transforms (DI or Admix)."""
        return self.di_prob > 0.0 or self.admix_copies > 0

    @property
    def inner_steps(self):
        """Inner iterations actually run: M for svre, 0 for ens."""
        return self.m_svrg if self.ensemble == 'svre' else 0

    def settings(self):
        """The runtime values of the traced attack: the budget and steps in [-1, 1] units,
        the inner iterations run, and every other numeric field of RUNTIME_FIELDS as is."""
        derived = dict(eps=self.eps, step=self.step, inner_step=self.inner_step,
                       inner_steps=self.inner_steps)
        raw = {name: getattr(self, name) for name in RUNTIME_FIELDS
               if name not in ('max_epsilon', 'alpha', 'beta', 'm_svrg', 'seed')}
        return {**derived, **raw}

    def trace_key(self):
        """What the traced attack depends on besides `settings`: the non-runtime fields and
        which components the runtime values switch on (svre inner loop, DI)."""
        fixed = tuple((f.name, getattr(self, f.name)) for f in dataclasses.fields(self)
                      if f.name not in RUNTIME_FIELDS and f.name != 'base')
        return fixed + (('inner_loop', self.inner_steps > 0), ('di', self.di_prob > 0))
