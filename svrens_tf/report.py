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


def to_json(value):
    return json.dumps(value, indent=1, sort_keys=True) + '\n'


def to_csv(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator='\n').writerows(rows)
    return buffer.getvalue()


def markdown_table(header, rows):
    lines = ['| ' + ' | '.join(map(str, header)) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(map(str, row)) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'


def attack_settings(folder):
    """Settings and seed an attack run recorded in `folder` (attack_run*.json), or None."""
    for path in sorted(pathlib.Path(folder).glob('attack_run*.json')):
        return json.loads(path.read_text())['settings']
    return None


def _percent(value):
    return '-' if value is None else f'{value:.1f}'


EVALUATION_COLUMNS = ['success_rate', 'success_rate_clean_correct', 'avg_loss', 'clean_accuracy',
                      'abstained', 'num_images', 'num_clean_correct']


def evaluation_csv(evaluation):
    """One row per (folder, classifier) of an evaluation (svrens-evaluate's evaluation.json)."""
    rows = [['folder', 'classifier'] + EVALUATION_COLUMNS]
    for folder, entry in evaluation['folders'].items():
        for name, result in entry['results'].items():
            rows.append([folder, name] + ['' if result[c] is None else result[c]
                                          for c in EVALUATION_COLUMNS])
    return to_csv(rows)


def evaluation_markdown(evaluation):
    """Success rates (paper's way, then over clean-correct images) and losses, folder x classifier."""
    folders = evaluation['folders']
    names = list(evaluation['clean'])
    parts = [f'# Evaluation of {len(folders)} folder(s) on {evaluation["num_images"]} images of '
             f'{evaluation["clean_dir"]}\n']
    for title, key, show in [
            ('Success rate (%): prediction != true label, over all images (the paper\'s)',
             'success_rate', _percent),
            ('Success rate (%) over the images the classifier gets right when clean',
             'success_rate_clean_correct', _percent),
            ('Average cross-entropy of the adversarial images', 'avg_loss',
             lambda v: '-' if v is None else f'{v:.3f}')]:
        rows = [[folder, entry['max_perturbation']] + [show(entry['results'][n][key])
                                                       for n in names]
                for folder, entry in folders.items()]
        parts.append(f'\n## {title}\n\n' + markdown_table(['folder', 'max |delta|'] + names, rows))
    clean = [['clean accuracy (%)'] + [_percent(evaluation['clean'][n]['accuracy'])
                                       for n in names]]
    parts.append('\n## Clean images\n\n' + markdown_table([''] + names, clean))
    return ''.join(parts)
