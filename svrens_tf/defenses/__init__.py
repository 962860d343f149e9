"""The defenses of Table 3 as callables from uint8 images [B,299,299,3] to labels in 1..1000.

    from svrens_tf import defenses
    defense = defenses.build('jpeg', checkpoint_dir, quality=75)
    defense.classifiers        # zoo names it loaded
    labels = defense(images)   # np.int64 [B]; 'rs' answers 0 where it abstains

Defaults are the settings the authors' group ran (docs/algorithm.md, "Defenses of Table 3");
options name the alternatives. Every defense with zoo classifiers takes
`load_model(zoo_name, checkpoint_dir)` (default `svrens_tf.models.load`; `build` passes it to
those only) and single-classifier ones a `classifier` (zoo name or callable). NRP, RS (Cohen et al.'s ResNet-50), HGD and ComDefend load converted weights;
`missing_weights` says, before anything is built, which are absent and how to install them.
Other programs plug in through `defenses.external`.
"""
import ast
import inspect

from svrens_tf.defenses import (bit_red, comdefend, external, fd, hgd, jpeg, nips_r3, nrp,
                                rp, rs)

REGISTRY = {
    'bit_red': bit_red.BitReduction,
    'jpeg': jpeg.Jpeg,
    'fd': fd.FeatureDistillation,
    'rp': rp.RandomResizePad,
    'nips_r3': nips_r3.NipsR3,
    'rs': rs.RandomizedSmoothing,
    'comdefend': comdefend.ComDefend,
    'nrp': nrp.NeuralRepresentationPurifier,
    'hgd': hgd.Hgd,
}
NAMES = tuple(REGISTRY)


def options(name):
    """The options `build` accepts for defense `name`, with their defaults."""
    if name not in REGISTRY:
        raise ValueError(f'unknown defense {name!r}; choose from {", ".join(NAMES)}')
    return {p.name: p.default for p in inspect.signature(REGISTRY[name]).parameters.values()
            if p.name not in ('checkpoint_dir', 'seed')}


def parse_options(specs, names):
    """{defense: {option: value}} for `names` from 'DEFENSE.OPTION=VALUE' strings (values read
    as Python literals, else kept as strings), each checked against the defense's options."""
    parsed = {name: {} for name in names}
    for spec in specs:
        key, sep, text = spec.partition('=')
        name, dot, option = key.partition('.')
        if not sep or not dot or name not in parsed:
            raise ValueError(f'{spec!r}: expected DEFENSE.OPTION=VALUE for one of the chosen '
                             f'defenses ({", ".join(names) or "none"})')
        if option not in options(name):
            raise ValueError(f'{spec!r}: {name} has no option {option!r}; it takes '
                             f'{", ".join(options(name)) or "none"}')
        try:
            parsed[name][option] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parsed[name][option] = text
    return parsed


def settings(name, **kwargs):
    """The options of defense `name` with `kwargs` over the defaults (unknown ones refused)."""
    accepted = options(name)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f'defense {name!r} has no option {", ".join(unknown)}; '
                         f'it takes {", ".join(accepted) or "none"}')
    return {**accepted, **kwargs}


def missing_weights(name, checkpoint_dir=None, **kwargs):
    """None when the converted weights `build(name, checkpoint_dir, **kwargs)` loads are
    installed, else one line naming what is absent and the command that installs it (cheap:
    no file is read; call it before any work starts)."""
    problem = REGISTRY[name].missing_weights(settings(name, **kwargs), checkpoint_dir)
    return f'{name}: {problem}' if problem else None


def require_weights(names, checkpoint_dir=None, defense_options=None):
    """Raise CheckpointError listing every defense of `names` whose converted weights are absent
    (one line each, with its install command); call it before anything is evaluated."""
    from svrens_tf.models.checkpoint import CheckpointError
    absent = [m for m in (missing_weights(n, checkpoint_dir, **(defense_options or {}).get(n, {}))
                          for n in names) if m]
    if absent:
        raise CheckpointError('\n'.join(absent))


def zoo_models(name, **kwargs):
    """The zoo checkpoints `build(name, **kwargs)` loads (for prerequisite checks)."""
    return REGISTRY[name].zoo_models(settings(name, **kwargs))


def build(name, checkpoint_dir=None, seed=0, load_model=None, **kwargs):
    """The defense `name`, its classifiers loaded from `checkpoint_dir` (by `load_model` where
    given and the defense has zoo classifiers, HGD has none), randomness from `seed`."""
    settings(name, **kwargs)
    cls = REGISTRY[name]
    parameters = inspect.signature(cls).parameters
    if 'seed' in parameters:
        kwargs['seed'] = seed
    if load_model is not None and 'load_model' in parameters:
        kwargs['load_model'] = load_model
    return cls(checkpoint_dir=checkpoint_dir, **kwargs)
