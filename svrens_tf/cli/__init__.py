"""Command-line programs (absl apps), one module per console script declared in setup.py."""
from absl import flags


def flag_values(module_name):
    """{flag name: value} of the flags a program module defines, for its run record."""
    return {f.name: f.value for f in flags.FLAGS.get_flags_for_module(module_name)}
