"""The project's own format for converted defense weights: a plain npz plus a manifest.

    store.save(arrays, folder, 'nrp', 'NRP.pth')          # once, by the converter
    arrays = store.load(folder, 'nrp')                      # every run: sha256 checked first

`<folder>/<model>.npz` holds name -> array (the released file's own tensor names and layouts,
no pickle: read with `allow_pickle=False`); `<model>.manifest.json` records the npz's sha256
and size, the tensor count, and the released files' names and sha256. Both are written
atomically, the manifest last, so a model is installed exactly when its manifest exists. A
NaN/inf weight is refused when converting and again when loading, naming file and variable.
"""
import io
import json
import pathlib

import numpy as np

from svrens_tf import files
from svrens_tf.models.checkpoint import CheckpointError, check_finite

FORMAT = 'svrens-weights-v1'


def npz_path(folder, model):
    return pathlib.Path(folder) / f'{model}.npz'


def manifest_path(folder, model):
    return pathlib.Path(folder) / f'{model}.manifest.json'


def save(arrays, folder, model, sources):
    """Write `arrays` (name -> ndarray) as `<folder>/<model>.npz` + its manifest.

    `sources`: the released file (or files) they were read from; name and sha256 of each are
    recorded. Refuses NaN/inf naming the (first) source and the variable. Returns the npz path."""
    sources = [sources] if isinstance(sources, (str, pathlib.PurePath)) else list(sources)
    for name, value in arrays.items():
        check_finite(value, sources[0], name)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = npz_path(folder, model)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    files.write_atomic(path, buffer.getvalue())
    manifest = {'format': FORMAT, 'model': model, 'file': path.name,
                'sha256': files.sha256_file(path), 'bytes': path.stat().st_size,
                'tensors': len(arrays),
                'sources': {pathlib.Path(s).name: files.sha256_file(s) for s in sources}}
    files.write_atomic(manifest_path(folder, model),
                       json.dumps(manifest, indent=1, sort_keys=True))
    return path


def missing(folder, model):
    """None when `<folder>/<model>` is installed (manifest and npz present), else what is missing."""
    if not manifest_path(folder, model).is_file():
        return f'no converted weights of {model} in {folder} ({manifest_path(folder, model).name})'
    if not npz_path(folder, model).is_file():
        return f'{npz_path(folder, model)} is missing'
    return None


def load(folder, model, install=None):
    """name -> ndarray of an installed model, after checking the npz against its manifest.
    CheckpointError naming the file for a missing, changed, truncated or non-finite file;
    `install` (the command that installs it) ends the message of a missing one."""
    problem = missing(folder, model)
    if problem:
        raise CheckpointError(problem + (f'; install with: {install}' if install else ''))
    path = npz_path(folder, model)
    try:
        manifest = json.loads(manifest_path(folder, model).read_text())
        expected = manifest['sha256']
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f'{manifest_path(folder, model)}: unreadable manifest ({err}); '
                              'convert the weights again') from None
    if files.sha256_file(path) != expected:
        raise CheckpointError(f'{path}: sha256 differs from the one recorded at conversion '
                              f'({expected}); the file changed or is truncated, convert again')
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as err:
        raise CheckpointError(f'{path}: unreadable ({err})') from None
    for name, value in arrays.items():
        check_finite(value, path, name)
    return arrays
