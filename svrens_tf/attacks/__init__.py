"""Transfer attacks on an ensemble of surrogates: the paper's base attacks, Ens and SVR-Ens.

    cfg = AttackConfig(base='mi_fgsm', ensemble='svre', max_epsilon=16, num_iter=10, seed=0)
    x_adv = generate(surrogates, x, y, cfg, model_indices=None)
"""
from svrens_tf.attacks.budget import at_passes, authors_passes
from svrens_tf.attacks.config import DEFAULTS, PRESETS, AttackConfig
from svrens_tf.attacks.loop import AttackResult, attack, generate
from svrens_tf.attacks.svre import passes_per_outer_step
from svrens_tf.attacks.tracing import trace_count

__all__ = ['AttackConfig', 'AttackResult', 'DEFAULTS', 'PRESETS', 'at_passes', 'attack',
           'authors_passes', 'generate', 'passes_per_outer_step', 'trace_count']
