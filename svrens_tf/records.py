"""Run records: the JSON an attack or evaluation keeps in its output folder (settings, flags,
versions, seed, one entry per invocation), and the environment a result depends on."""
import datetime
import json
import pathlib
import platform
import subprocess
import sys
import time

import numpy as np

import svrens_tf
from svrens_tf import data, files, runtime


def environment():
    """Versions and devices a result depends on."""
    import tensorflow as tf
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True,
                                cwd=pathlib.Path(svrens_tf.__file__).parent,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {'svrens_tf': svrens_tf.__version__, 'git_commit': commit,
            'tensorflow': tf.__version__, 'numpy': np.__version__,
            'python': sys.version.split()[0], 'platform': platform.platform(),
            'devices': [d.name for d in tf.config.list_logical_devices()]}


# settings key of an attack record: {surrogate: sha256 of its checkpoint (None: a model its
# loader made without one)}; known once the models are loaded (pipeline.attack_folder)
CHECKPOINTS = 'checkpoint_sha256'


def _now(timestamp=None):
    moment = datetime.datetime.fromtimestamp(time.time() if timestamp is None else timestamp,
                                             datetime.timezone.utc)
    return moment.isoformat(timespec='seconds')


def _plain(value):
    return json.loads(json.dumps(value))


class RunRecord:
    """The JSON a run keeps in its output folder: settings, flags, versions, seed, and one
    entry per invocation (argv, counts, timings), saved atomically after every change.

    `settings` decide the outputs (a folder refuses a run with other settings); `flags` is a
    plain {name: value} of the program's options, kept for the reader.
    """

    def __init__(self, path, settings, flags):
        self.path = pathlib.Path(path)
        self.settings = _plain(settings)
        self.flags = _plain(flags)
        self.environment = environment()
        self.runtime = runtime.settings()
        self.invocations = []
        if self.path.is_file():
            self.invocations = read(self.path).get('invocations', [])

    def reload(self):
        """Re-read the invocations saved in the file; True if another run changed them."""
        saved = read(self.path).get('invocations', []) if self.path.is_file() else []
        changed = saved != self.invocations
        self.invocations = saved
        return changed

    def check_folder_settings(self, paths, added_fields=None):
        """DataError if a record in the folder was written with other settings (all but the
        checkpoints' sha256s, which check_folder_checkpoints compares once they are known).

        added_fields: {setting: {field: value}}: fields of a dict-valued setting that an
        older record may lack, read as these values (a field added since, whose default keeps
        what older code did, e.g. {'config': attacks.config.DEFAULTS})."""
        for path in paths:
            theirs = dict(read(path).get('settings') or {})
            for name, fields in (added_fields or {}).items():
                if isinstance(theirs.get(name), dict):
                    theirs[name] = {**_plain(fields), **theirs[name]}
            changed = [name for name in changed_settings(theirs, self.settings)
                       if name != CHECKPOINTS]
            if changed:
                raise data.DataError(f'{path}: this folder holds a run with other settings '
                                     f'({", ".join(changed)} differ); use another --output_dir')

    def check_folder_checkpoints(self, paths, read_from):
        """DataError if a record in the folder names another checkpoint sha256 for a model of
        this run (settings[CHECKPOINTS]), naming each such model: the images there were made
        with other weights. `read_from`: {model: checkpoint path read now}, for the message."""
        ours = self.settings.get(CHECKPOINTS) or {}
        for path in paths:
            theirs = (read(path).get('settings') or {}).get(CHECKPOINTS) or {}
            changed = [m for m in ours if m in theirs and theirs[m] != ours[m]]
            if changed:
                raise data.DataError(
                    f'{path}: this folder was attacked with another checkpoint of '
                    + '; '.join(f'{m} (sha256 {theirs[m]}; now {ours[m]}, read from '
                                f'{read_from.get(m)})' for m in changed)
                    + '; attack with the recorded checkpoint or use another --output_dir')

    def start(self, started_at=None, **fields):
        """Append and save a new invocation entry (begun at `started_at`, a time.time(), or
        now); returns it for the caller to fill in."""
        entry = {'started': _now(started_at), 'argv': sys.argv, **fields}
        self.invocations.append(entry)
        self.save()
        return entry

    def finish(self, started_at):
        self.invocations[-1].update(finished=_now(), seconds=round(time.time() - started_at, 3))
        self.save()

    def check_folder_runtime(self, paths):
        """DataError if a record in the folder was written under other runtime settings
        (svrens_tf/runtime.py), naming each difference: resumed images would not match."""
        for path in paths:
            theirs = read(path).get('runtime')
            changed = runtime.differences(theirs, self.runtime) if theirs is not None else []
            if changed:
                raise data.DataError(f'{path}: this folder was attacked under other runtime '
                                     f'settings ({"; ".join(changed)}); run with the recorded '
                                     'ones or use another --output_dir')

    def save(self):
        record = {'settings': self.settings, 'flags': self.flags, 'environment': self.environment,
                  'runtime': self.runtime, 'invocations': self.invocations}
        files.write_atomic(self.path, json.dumps(record, indent=1, sort_keys=True) + '\n')


def changed_settings(theirs, ours):
    """Sorted names of the settings that differ between two settings dicts (None = empty)."""
    theirs, ours = theirs or {}, ours or {}
    return sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))


def folder_checkpoints(paths):
    """The checkpoint sha256s (settings[CHECKPOINTS]) the first of these records that has them
    names, or None."""
    for path in paths:
        recorded = (read(path).get('settings') or {}).get(CHECKPOINTS)
        if recorded is not None:
            return recorded
    return None


def read(path, what='run record'):
    """A run record (or other JSON object a run wrote: `what`) as a dict; DataError naming the
    file if it is not a readable JSON object."""
    try:
        value = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as err:
        raise data.DataError(f'{path}: unreadable {what} ({err})') from None
    if not isinstance(value, dict):
        raise data.DataError(f'{path}: unreadable {what} (not a JSON object)')
    return value


def attack_settings(folder):
    """Settings and seed an attack run recorded in `folder` (attack_run*.json), or None."""
    for path in sorted(pathlib.Path(folder).glob('attack_run*.json')):
        return read(path).get('settings')
    return None
