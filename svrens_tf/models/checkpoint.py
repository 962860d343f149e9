"""Restore a TF-slim checkpoint into a SlimModel by variable name.

`tf.train.load_checkpoint` reads both the old single-file V1 format (the 2016 Inception
releases) and the V2 index + data bundle. The checkpoint's top-level scope may differ from the
model's (the attack codebases' renamed copies use `Ens3AdvInceptionV3`, ...): names are matched
below the scope, so a renamed copy loads into the same model. Entries that are not model
weights (global_step, optimizer slots, moving-average shadows) are ignored.
"""
import hashlib
import os
import re

import numpy as np
import tensorflow as tf

from svrens_tf import files

# Slot and shadow variables that training writes beside a weight, e.g.
# `InceptionV3/Logits/Conv2d_1c_1x1/weights/RMSProp_1` or `.../ExponentialMovingAverage`.
_AUXILIARY = re.compile(r'^(ExponentialMovingAverage|Momentum|RMSProp|Adam|Adagrad|Adadelta|'
                        r'Ftrl|AdamW|Nadam|Adamax)(_\d+)?$')
_TABLE_MAGIC = bytes.fromhex('57fb808b247547db')  # footer of every TF table file (V1, V2 index)
_STATE_FILE = 'checkpoint'


class CheckpointError(ValueError):
    """A checkpoint that cannot be restored; the message names the file or variable."""


def resolve(path):
    """A path as given by a user -> the V2 prefix or V1 file that load_checkpoint reads.

    Accepts a V2 prefix, a V2 `.index`/`.data-*` file, a V1 file, or a directory holding exactly
    one checkpoint (its `checkpoint` state file decides when present).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        found = find_checkpoints(path)
        if not found:
            raise CheckpointError(f'{path}: no checkpoint in this directory')
        if len(found) > 1:
            raise CheckpointError(f'{path}: several checkpoints, pass one of: '
                                  + ', '.join(found))
        return found[0]
    match = re.match(r'(.*)\.(index|data-\d{5}-of-\d{5})$', path)
    if match and os.path.isfile(match.group(1) + '.index'):
        return match.group(1)
    if os.path.isfile(path + '.index') or os.path.isfile(path):
        return path
    raise CheckpointError(f'{path}: no such checkpoint (neither a file nor a prefix with .index)')


def find_checkpoints(directory):
    """Sorted checkpoints anywhere under `directory`: V2 prefixes and V1 single files."""
    found = []
    for folder, _, names in os.walk(directory):
        for name in names:
            full = os.path.join(folder, name)
            if name.endswith('.index'):
                found.append(full[:-len('.index')])
            elif not re.search(r'\.data-\d{5}-of-\d{5}$', name) and _is_table_file(full):
                found.append(full)
    return sorted(found)


def checkpoint_files(path):
    """The files a resolved checkpoint (`resolve`) consists of, sorted: a V1 file itself, or a
    V2 prefix's .data-* shards and .index."""
    path = os.fspath(path)
    if not os.path.isfile(path + '.index'):
        return [path]
    folder, prefix = os.path.split(path)
    shards = [os.path.join(folder, name) for name in os.listdir(folder or '.')
              if re.fullmatch(re.escape(prefix) + r'\.data-\d{5}-of-\d{5}', name)]
    return sorted(shards) + [path + '.index']


def sha256(path, digests=None):
    """Hex sha256 identifying the bytes of a resolved checkpoint, independent of its file names:
    the sha256 of the lines of its files' sha256s (checkpoint_files order). For a V2 prefix P:
    `sha256sum P.data-* P.index | cut -c1-64 | sha256sum`. `digests`: {absolute path: sha256}
    already taken of some of the files (manifest.verified_checkpoint's), not read again."""
    digests = digests or {}
    lines = ''.join((digests.get(os.path.abspath(f)) or files.sha256_file(f)) + '\n'
                    for f in checkpoint_files(path))
    return hashlib.sha256(lines.encode()).hexdigest()


def _is_table_file(path):
    """True if `path` ends with the TF table footer (a V1 checkpoint, once .index is excluded)."""
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            if f.tell() < len(_TABLE_MAGIC):
                return False
            f.seek(-len(_TABLE_MAGIC), os.SEEK_END)
            return f.read() == _TABLE_MAGIC
    except OSError:
        return False


def open_reader(path):
    """(reader, resolved path) for a checkpoint path; CheckpointError if unreadable."""
    resolved = resolve(path)
    try:
        return tf.train.load_checkpoint(resolved), resolved
    except tf.errors.NotFoundError as err:
        raise CheckpointError(f'{resolved}: no such checkpoint ({_first_line(err)})') from None
    except (tf.errors.OpError, ValueError) as err:
        raise CheckpointError(f'{resolved}: not a readable checkpoint, corrupt or truncated '
                              f'({_first_line(err)})') from None


def match(model, path):
    """Map each model variable to its checkpoint entry, checking names, shapes and dtypes.

    Returns (reader, resolved path, {model variable name: checkpoint key}). Raises
    CheckpointError naming every missing or misshaped variable and every unused checkpoint
    variable of the matched scope.
    """
    reader, resolved = open_reader(path)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    variables = model.variables_by_name
    if not variables:
        raise CheckpointError(f'{type(model).__name__} has no variables: build() it first')
    model_scope = model.scope
    scope = _checkpoint_scope(resolved, shapes, model_scope, variables)
    mapping, problems = {}, []
    for name, var in sorted(variables.items()):
        key = scope + name[len(model_scope):]
        if key not in shapes:
            problems.append(f'missing variable {key}')
        elif tuple(shapes[key]) != tuple(var.shape):
            problems.append(f'shape mismatch for {key}: model expects {tuple(var.shape)}, '
                            f'checkpoint has {tuple(shapes[key])}')
        elif dtypes[key] != var.dtype:
            problems.append(f'dtype mismatch for {key}: model expects {var.dtype.name}, '
                            f'checkpoint has {dtypes[key].name}')
        else:
            mapping[name] = key
    used = {scope + name[len(model_scope):] for name in variables}
    unused = sorted(k for k in shapes
                    if k.startswith(scope + '/') and k not in used and not _is_auxiliary(k))
    if unused:
        problems.append(f'{len(unused)} unused checkpoint variables: ' + ', '.join(unused))
    if problems:
        renamed = f' (checkpoint scope {scope} mapped onto {model_scope})' \
            if scope != model_scope else ''
        raise CheckpointError(f'{resolved} does not fit {type(model).__name__}{renamed}: '
                              + '; '.join(problems))
    return reader, resolved, mapping


def restore(model, path):
    """Assign every variable of `model` (built) from the checkpoint at `path`; returns the path read."""
    reader, resolved, mapping = match(model, path)
    variables = model.variables_by_name
    for name, key in mapping.items():
        try:
            value = reader.get_tensor(key)
        except (tf.errors.OpError, IndexError, ValueError) as err:
            raise CheckpointError(f'{resolved}: cannot read {key}, the data file is corrupt or '
                                  f'truncated ({_first_line(err)})') from None
        check_finite(value, resolved, key)
        variables[name].assign(value)
    return resolved


def check_finite(value, path, name):
    """Raise CheckpointError naming `path` and variable `name` if `value` holds NaN or inf.

    A weight file with a NaN loads without complaint and makes every prediction the same
    label; every loader of weights (checkpoints, defense weight files) calls this.
    """
    value = np.asarray(value)
    if value.dtype.kind not in 'fc':
        return
    bad = np.count_nonzero(~np.isfinite(value))
    if bad:
        raise CheckpointError(f'{path}: variable {name} holds {bad} NaN/inf value(s) of '
                              f'{value.size}; the file is corrupt, fetch it again')


def _checkpoint_scope(path, shapes, model_scope, variables):
    """The checkpoint's top-level scope holding this model: its own, or the best-matching one."""
    scopes = {k.split('/', 1)[0] for k in shapes if '/' in k}
    if model_scope in scopes:
        return model_scope
    suffixes = {name[len(model_scope):] for name in variables}
    overlap = {s: sum(1 for k in shapes if k.startswith(s + '/') and k[len(s):] in suffixes)
               for s in scopes}
    best = max(overlap.values(), default=0)
    if best == 0:
        raise CheckpointError(f'{path}: no variable of {model_scope} found under any of its '
                              f'scopes ({", ".join(sorted(scopes)) or "none"})')
    winners = sorted(s for s, n in overlap.items() if n == best)
    if len(winners) > 1:
        raise CheckpointError(f'{path}: scopes {", ".join(winners)} all fit {model_scope}; '
                              'keep one model per checkpoint')
    return winners[0]


def _is_auxiliary(key):
    return any(_AUXILIARY.match(part) for part in key.split('/'))


def _first_line(err):
    text = getattr(err, 'message', None) or str(err)
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__
