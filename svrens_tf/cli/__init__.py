"""Command-line programs (absl apps), one module per console script declared in setup.py: each
parses its flags and makes one call into svrens_tf.pipeline (or svrens_tf.downloads)."""
import dataclasses
import shlex
import sys
import typing

from absl import app, flags

CHECKPOINT_DIR_HELP = ('Folder with one subfolder per zoo name, as written by svrens-download '
                       '(default: $SVRENS_CHECKPOINT_DIR, else checkpoints/).')


def flag_values(module_name):
    """{flag name: value} of the flags a program module defines, for its run record."""
    return {f.name: f.value for f in flags.FLAGS.get_flags_for_module(module_name)}


def check_usage(argv, required=()):
    """UsageError for stray arguments or a missing required flag."""
    if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
    for name in required:
        if not flags.FLAGS[name].value:
            raise app.UsageError(f'--{name} is required')


def exit_on(errors, program, call, *args, **kwargs):
    """`call(*args, **kwargs)`; one of `errors` ends the program with one line naming it."""
    try:
        return call(*args, **kwargs)
    except errors as err:
        sys.exit(f'{program}: {err}')


def define_config_flags(module_name):
    """One flag per attacks.AttackConfig field, typed from its annotation, registered as
    `module_name`'s; default None = the --base preset's value."""
    from svrens_tf import attacks
    if module_name == '__main__':  # run with -m: absl files the main module's flags by path
        module_name = sys.argv[0]
    definers = {bool: flags.DEFINE_boolean, int: flags.DEFINE_integer,
                float: flags.DEFINE_float, str: flags.DEFINE_string}
    for field in dataclasses.fields(attacks.AttackConfig):
        shown = (f"the --base preset's, else {attacks.DEFAULTS[field.name]!r}"
                 if field.default is None else repr(field.default))
        help_text = (f'AttackConfig.{field.name} (see svrens_tf.attacks.AttackConfig); '
                     f'default: {shown}.')
        if field.name == 'base':
            flags.DEFINE_enum('base', field.default, sorted(attacks.PRESETS), help_text,
                              module_name=module_name)
        else:
            kind = next(t for t in typing.get_args(field.type) or (field.type,) if t in definers)
            definers[kind](field.name, field.default, help_text, module_name=module_name)


def config_from_flags():
    """The AttackConfig of the config flags given (the preset fills the rest); UsageError if
    the combination is invalid."""
    from svrens_tf import attacks
    values = {f.name: flags.FLAGS[f.name].value for f in dataclasses.fields(attacks.AttackConfig)}
    try:
        return attacks.AttackConfig(**{k: v for k, v in values.items() if v is not None})
    except ValueError as err:
        raise app.UsageError(str(err)) from None


def parse_external(specs):
    """{name: argv} from --external_defense NAME=COMMAND strings."""
    external = {}
    for spec in specs:
        name, sep, command = spec.partition('=')
        if not sep or not name or not command.strip():
            raise app.UsageError(f'--external_defense {spec!r}: expected NAME=COMMAND')
        external[name] = shlex.split(command)
    return external


def defense_options(names, specs):
    """{defense: {option: value}} for --defenses `names` from --defense_option `specs`;
    UsageError for an unknown defense or option."""
    from svrens_tf import defenses
    unknown = [d for d in names if d not in defenses.NAMES]
    if unknown:
        raise app.UsageError(f'unknown defenses {", ".join(unknown)}; known: '
                             f'{", ".join(defenses.NAMES)}')
    try:
        return defenses.parse_options(specs, names)
    except ValueError as err:
        raise app.UsageError(f'--defense_option: {err}')
