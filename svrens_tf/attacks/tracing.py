"""How many times the engine has traced each surrogate's graph (one count per inlined copy).

The attack engine calls a surrogate only while tracing its tf.function, so `trace_count`
tells how much graph a run built: a sweep that reuses its trace adds nothing.
"""
import collections

import tensorflow as tf

_COUNTS = collections.Counter()


def count(surrogate):
    """Record one call of `surrogate` if it happens inside a trace."""
    if not tf.executing_eagerly():
        _COUNTS[id(surrogate)] += 1


def trace_count(surrogate):
    """Copies of `surrogate`'s graph traced so far in this process (keyed by object id)."""
    return _COUNTS[id(surrogate)]
