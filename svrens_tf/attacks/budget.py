"""Gradient-pass budgets: the config that spends a given number of single-model gradient passes
per image, for comparisons at equal cost.

    cfg = AttackConfig(base='ti_dim', max_epsilon=16)
    budget = authors_passes(cfg, num_models=4)                    # 10 x (4 + 2 x 32) = 680
    ens = at_passes(dataclasses.replace(cfg, ensemble='ens'), budget, num_models=4)   # T = 170

A pass is one model's forward and backward on one copy of the batch (`passes_per_outer_step`).
"""
import dataclasses

from svrens_tf.attacks.svre import passes_per_outer_step


def authors_passes(cfg, num_models):
    """Passes per image of the authors' SVR-Ens (svrg, outer_grad 'auto') at `cfg`'s T and M
    on `num_models` surrogates."""
    authors = dataclasses.replace(cfg, ensemble='svre', estimator='svrg', outer_grad='auto')
    return authors.num_iter * passes_per_outer_step(authors, num_models)


def at_passes(cfg, budget, num_models):
    """`cfg` with the T and M whose T x (passes per outer step) is `budget`: the T nearest
    cfg.num_iter that divides the budget, with the M >= 1 that fills it under svre (Ens: T
    only), and alpha = eps / T, beta = alpha.  ValueError if no (T, M) spends it exactly."""
    for num_iter in sorted(range(1, budget + 1), key=lambda t: (abs(t - cfg.num_iter), t)):
        if budget % num_iter:
            continue
        per_step = budget // num_iter
        inner = range(1, per_step + 1) if cfg.ensemble == 'svre' else [cfg.m_svrg]
        for m_svrg in inner:
            candidate = dataclasses.replace(
                cfg, num_iter=num_iter, m_svrg=m_svrg, alpha=cfg.max_epsilon / num_iter,
                beta=cfg.max_epsilon / num_iter)
            passes = passes_per_outer_step(candidate, num_models)
            if passes == per_step:
                return candidate
            if passes > per_step:
                break
    raise ValueError(f'no T and M give {cfg} exactly {budget} passes per image')
