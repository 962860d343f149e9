"""Run records, evaluation tables (JSON, CSV, markdown) and the paper comparison report."""
import csv
import datetime
import io
import json
import pathlib
import platform
import subprocess
import sys
import time

import numpy as np
from absl import flags

import svrens_tf
from svrens_tf import data

PAPER_TABLES = pathlib.Path(__file__).resolve().parent / 'resources' / 'paper_tables.json'


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


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def _plain(value):
    return json.loads(json.dumps(value))


class RunRecord:
    """The JSON a run keeps in its output folder: settings, flags, versions, seed, and one
    entry per invocation (argv, counts, timings), saved atomically after every change."""

    def __init__(self, path, settings, flags_module):
        self.path = pathlib.Path(path)
        self.settings = _plain(settings)
        self.flags = _plain({f.name: f.value
                             for f in flags.FLAGS.get_flags_for_module(flags_module)})
        self.environment = environment()
        self.invocations = []
        if self.path.is_file():
            self.invocations = self._read(self.path).get('invocations', [])

    @staticmethod
    def _read(path):
        try:
            return json.loads(pathlib.Path(path).read_text())
        except (OSError, ValueError) as err:
            raise data.DataError(f'{path}: unreadable run record ({err})') from None

    def check_folder_settings(self, paths):
        """DataError if a record in the folder was written with other settings."""
        for path in paths:
            theirs = self._read(path).get('settings')
            if theirs != self.settings:
                changed = sorted(k for k in set(theirs or {}) | set(self.settings)
                                 if (theirs or {}).get(k) != self.settings.get(k))
                raise data.DataError(f'{path}: this folder holds a run with other settings '
                                     f'({", ".join(changed)} differ); use another --output_dir')

    def start(self, **fields):
        """Append and save a new invocation entry; returns it for the caller to fill in."""
        entry = {'started': _now(), 'argv': sys.argv, **fields}
        self.invocations.append(entry)
        self.save()
        return entry

    def finish(self, started_at):
        self.invocations[-1].update(finished=_now(), seconds=round(time.time() - started_at, 3))
        self.save()

    def save(self):
        record = {'settings': self.settings, 'flags': self.flags, 'environment': self.environment,
                  'invocations': self.invocations}
        data.write_atomic(self.path, json.dumps(record, indent=1, sort_keys=True) + '\n')
