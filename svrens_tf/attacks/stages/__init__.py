"""The stages of an outer attack step: the plug-in points of the attack loop (loop.py).

Every outer step t of every attack runs, with `state` a dict of tensors carried across steps
(built once per batch by the stages' `initial_state(x0, cfg)`):

    gradient transform:         d, state, passes = gradient(direction, x_t, state, settings,
                                                            cfg, key)
    direction post-processing:  d = post_process(d, cfg)
    update rule:                x_{t+1}, state = update(x_t, d, state, settings, box, cfg)

`direction(x_query, draw_key=None) -> (d, passes)` is the ensemble strategy's direction at
x_query: the gradient of the fused ensemble loss (ens) or the SVR-Ens direction (svre, whose
inner loop post-processes each inner gradient with the same `post_process`).  With no
`draw_key` it uses the outer step's own random draws (and scheduled inner surrogates); a
stage that needs more directions per step passes keys derived from `key`, the [2] key of
the stage's own draws in this step (randomness.STAGE).
`settings` holds the runtime values (AttackConfig.settings); `cfg` only decides structure.
`box` is the eps-box (x_min, x_max); `passes` counts single-model gradient passes.

A stage is a module of this package named by the AttackConfig field of its kind: it defines
the function of that name, optionally `initial_state(x0, cfg) -> dict` (disjoint keys across
the three stages), and a gradient stage defines `evaluations(cfg)`, the directions it takes
per outer step.  A new base attack is such a module plus a preset in config.py.
"""
import importlib
import pkgutil

KINDS = ('gradient', 'post_process', 'update')


def names(kind):
    """The stage modules of this package that provide a `kind` stage."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__)
                  if hasattr(importlib.import_module(f'{__name__}.{info.name}'), kind))


def load(kind, name):
    """The module of the `kind` stage `name`; ValueError listing the valid names."""
    if kind not in KINDS:
        raise ValueError(f'unknown stage kind {kind!r}; kinds: {KINDS}')
    valid = names(kind)
    if name not in valid:
        raise ValueError(f'AttackConfig.{kind}={name!r}: choose from {valid}')
    return importlib.import_module(f'{__name__}.{name}')


def initial_state(modules, x0, cfg):
    """The merged initial state of the stage `modules`."""
    state = {}
    for module in modules:
        part = module.initial_state(x0, cfg) if hasattr(module, 'initial_state') else {}
        clash = set(state) & set(part)
        if clash:
            raise ValueError(f'stages share state keys {sorted(clash)}')
        state.update(part)
    return state
