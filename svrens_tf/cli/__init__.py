"""Command-line programs (absl apps), one module per console script declared in setup.py: each
parses its flags and makes one call into svrens_tf.pipeline (or svrens_tf.downloads);
run_attacks.py, behind run_attacks.sh, parses with argparse and calls svrens_tf.executor.

What every program shares (importing this package sets up the first two before TensorFlow loads):
- TensorFlow's start-up lines stay quiet: TF_CPP_MIN_LOG_LEVEL defaults to 2, and the lines
  TensorFlow's native code writes before its logging is initialised, which ignore that
  variable, are filtered by the same level;
- `--help` shows the program's docstring and its own flags (`--helpfull`: every flag);
- a bad input or flag ends the program with one line `<program>: <message>` and exit status 1;
  with SVRENS_TRACEBACK=1 (or --verbosity 1 or more) the traceback comes first.
"""
import contextlib
import dataclasses
import importlib.abc
import importlib.util
import os
import re
import shlex
import sys
import tempfile
import traceback
import typing

from absl import app, flags

LOG_LEVEL_ENV = 'TF_CPP_MIN_LOG_LEVEL'
DEFAULT_LOG_LEVEL = '2'
TRACEBACK_ENV = 'SVRENS_TRACEBACK'
# A native log line (absl/glog format): severity letter, date, time, thread id, file:line].
_NATIVE_LINE = re.compile(r'^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [^ ]+:\d+\] ')
_ABSL_NOTICE = 'WARNING: All log messages before absl::InitializeLog() is called'
_SEVERITY = {'I': 0, 'W': 1, 'E': 2, 'F': 3}


def shown_lines(text, level):
    """The lines of `text` (captured stderr) that TF_CPP_MIN_LOG_LEVEL=`level` lets through:
    native log lines below the level go, with their continuation lines; the rest stays."""
    kept, keep = [], True
    for line in text.splitlines(keepends=True):
        match = _NATIVE_LINE.match(line)
        if match:
            keep = _SEVERITY[match.group(1)] >= level
        elif line.startswith(_ABSL_NOTICE):
            keep = level < 2
        if keep:
            kept.append(line)
    return ''.join(kept)


@contextlib.contextmanager
def _filtered_stderr(level):
    """Capture file descriptor 2 (where native code writes) and replay what `shown_lines` keeps."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            sys.stderr.write(shown_lines(capture.read().decode(errors='replace'), level))
            sys.stderr.flush()


class _QuietTensorflowImport(importlib.abc.MetaPathFinder):
    """Runs the first `import tensorflow` inside `_filtered_stderr`, then steps aside."""

    def find_spec(self, name, path=None, target=None):
        if name != 'tensorflow':
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module
        text = os.environ.get(LOG_LEVEL_ENV, '')
        level = int(text) if text.isdigit() else 0

        def exec_module(module):
            with _filtered_stderr(level):
                execute(module)
        spec.loader.exec_module = exec_module
        return spec


os.environ.setdefault(LOG_LEVEL_ENV, DEFAULT_LOG_LEVEL)
if 'tensorflow' not in sys.modules:
    sys.meta_path.insert(0, _QuietTensorflowImport())


def run(main, module_name):
    """app.run(main) for the program module `module_name`: `--help` shows its docstring and
    flags also when a console-script wrapper (whose own module has neither) is __main__, and
    a UsageError is one line `svrens-<program>: <message>` (exit status 1), not the help."""
    program = sys.modules[module_name]
    wrapper = sys.modules['__main__']
    if wrapper is not program:
        wrapper.__doc__ = program.__doc__
        for flag in flags.FLAGS.get_key_flags_for_module(module_name):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    name = 'svrens-' + os.path.splitext(os.path.basename(program.__file__))[0]

    def checked_main(argv):
        try:
            return main(argv)
        except app.UsageError as err:
            sys.exit(f'{name}: {err} (--help lists the flags)')
    app.run(checked_main)


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


def check_zoo_names(names, flag='models'):
    """UsageError listing the zoo names if one of `names` is not one (models.zoo.check_names)."""
    from svrens_tf.models import zoo
    try:
        zoo.check_names(names, f'--{flag}')
    except ValueError as err:
        raise app.UsageError(str(err)) from None


def exit_on(errors, program, call, *args, **kwargs):
    """`call(*args, **kwargs)`; one of `errors` ends the program with one line naming it (after
    the traceback with SVRENS_TRACEBACK=1 or --verbosity >= 1)."""
    try:
        return call(*args, **kwargs)
    except errors as err:
        if os.environ.get(TRACEBACK_ENV, '0') not in ('', '0') or flags.FLAGS.verbosity >= 1:
            traceback.print_exc()
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
