"""The layout of the checkpoint folder svrens-download fills (by default
zoo.default_checkpoint_dir()), and the check that a checkpoint in it is the one that was verified.

Layout: `<checkpoint_dir>/<zoo name>/` holds what the release tarball held plus `manifest.json`
(the sha256 and size of every file, written once the checkpoint was checked against the
architecture's variable names and shapes). `installed_checkpoint` re-hashes the files so a
changed or truncated file is noticed, and returns their digests with the path, so that the run
record naming the checkpoint's bytes (checkpoint.sha256) need not read them again. Installing
is svrens_tf/downloads/checkpoints.py's job; this module only reads and writes the record, so
loading a model never imports downloading.
"""
import glob
import json
import os
import pathlib

from svrens_tf import files
from svrens_tf.models import checkpoint, zoo
from svrens_tf.models.checkpoint import CheckpointError

MANIFEST = 'manifest.json'


def is_checkpoint_root(folder, name):
    """True if `folder` is a checkpoint folder in svrens-download's layout rather than one
    checkpoint: it has a `<name>/` or an installed model's subfolder, or no checkpoint at all."""
    folder = os.fspath(folder)
    return os.path.isdir(folder) and (
        os.path.isdir(os.path.join(folder, name))
        or bool(glob.glob(os.path.join(glob.escape(folder), '*', MANIFEST)))
        or not checkpoint.find_checkpoints(folder))


def installed_checkpoint(name, checkpoint_dir=None):
    """(path, digests) of the verified checkpoint of zoo entry `name` in `checkpoint_dir`
    (default folder if None), re-checked by `verified_checkpoint`; CheckpointError saying what
    to run."""
    checkpoint_dir = checkpoint_dir or zoo.default_checkpoint_dir()
    folder = os.path.join(checkpoint_dir, name)
    if not os.path.isfile(os.path.join(folder, MANIFEST)):
        raise CheckpointError(f'no verified checkpoint of {name} in {folder}; '
                              f'{rerun_hint(name, checkpoint_dir)}')
    return verified_checkpoint(folder)


def verified_checkpoint(folder):
    """(path, digests): the checkpoint path recorded in `folder`/manifest.json and {absolute
    path: sha256} of every file listed there, after re-checking each one's size and sha256;
    CheckpointError naming a changed or missing file."""
    folder = os.fspath(folder)
    manifest_path = os.path.join(folder, MANIFEST)
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
        name, listed, relative = manifest['name'], manifest['files'], manifest['checkpoint']
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f'{manifest_path}: unreadable manifest ({err}); reinstall the '
                              'model with svrens-download') from None
    rerun = rerun_hint(name, os.path.dirname(os.path.abspath(folder)))
    digests = {}
    for rel, record in listed.items():
        path = os.path.join(folder, rel)
        if not os.path.isfile(path):
            raise CheckpointError(f'{path}: missing since it was verified; {rerun}')
        size = os.path.getsize(path)
        if size != record['bytes']:
            raise CheckpointError(f'{path}: {size} bytes, {record["bytes"]} when verified '
                                  f'(truncated or replaced); {rerun}')
        digest = files.sha256_file(path)
        if digest != record['sha256']:
            raise CheckpointError(f'{path}: content changed since it was verified; {rerun}')
        digests[os.path.abspath(path)] = digest
    return os.path.join(folder, relative), digests


def rerun_hint(name, checkpoint_dir):
    return f'run: svrens-download --models {name} --checkpoint_dir {checkpoint_dir}'


def write_manifest(folder, entry, relative):
    """Record the size and sha256 of every file under `folder` (a checkpoint of zoo entry
    `entry` at `relative`) in `folder`/manifest.json."""
    listed = {}
    for path in sorted(pathlib.Path(folder).rglob('*')):
        if path.is_file():
            listed[str(path.relative_to(folder))] = {'bytes': path.stat().st_size,
                                                     'sha256': files.sha256_file(path)}
    manifest = {'name': entry.name, 'arch': entry.arch, 'archive': entry.archive,
                'checkpoint': relative, 'files': listed}
    with open(os.path.join(folder, MANIFEST), 'w') as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
