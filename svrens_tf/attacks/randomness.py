"""Seeds of an attack: one [2] key per batch, folded into a key per gradient evaluation.

Every random draw is a stateless op keyed by `derive(batch_key, ...)`, so the same inputs
and seed replay bit for bit, and the ens pass of svre draws exactly what ens draws.
"""
import zlib

import numpy as np
import tensorflow as tf

# Roles of the draws within outer step t; STAGE keys the extra draws of a stage
# (stages/__init__.py), e.g. one direction per variance-tuning neighbour.
ENSEMBLE, INNER, ANCHOR, SCHEDULE, STAGE = range(5)


def batch_key(seed, x, y):
    """[seed, crc32 of the batch]: distinct batches draw differently under one seed."""
    digest = zlib.crc32(np.ascontiguousarray(x, np.float32).tobytes())
    digest = zlib.crc32(np.ascontiguousarray(y, np.int64).tobytes(), digest)
    return tf.constant([seed & 0x7FFFFFFF, digest & 0x7FFFFFFF], tf.int32)


def derive(key, *data):
    """The key folded with each of `data` in turn (ints or scalar int32 tensors)."""
    for item in data:
        key = tf.random.experimental.stateless_fold_in(key, item)
    return key


def model_schedule(key, num_iter, inner_steps, num_models):
    """[num_iter, inner_steps] model indices, uniform with replacement (one per inner step)."""
    return tf.random.stateless_uniform([num_iter, inner_steps], derive(key, SCHEDULE),
                                       0, num_models, dtype=tf.int32)
