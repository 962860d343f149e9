"""External defenses (HGD, NRP, Cohen's RS code, ...) through the NIPS17 defense protocol.

A NIPS17 defense is a program run as `<command> INPUT_DIR OUTPUT_FILE` that classifies every
`<ImageId>.png` in INPUT_DIR and writes one `ImageId,label` row per image (label in 1..1000;
the competition's sample defenses write the file name, `<ImageId>.png`, which is accepted too).
The command is an argument list, run without a shell, in its own process group so a timeout
kills everything it started.
"""
import csv
import os
import pathlib
import signal
import subprocess
import tempfile

import imageio.v3 as iio
import numpy as np

from svrens_tf.defenses import base

OUTPUT_NAME = 'predictions.csv'
STDERR_TAIL = 2000


class DefenseError(RuntimeError):
    """An external defense crashed, timed out, or wrote unusable predictions."""


def read_predictions(path, image_ids):
    """ImageId -> label from a defense's CSV; every id of `image_ids` exactly once, nothing else.

    Anything that is not UTF-8 text rows (binary output, NUL bytes) is one DefenseError.
    """
    try:
        with open(path, newline='', encoding='utf-8') as f:
            return _parse_predictions(path, csv.reader(f), set(image_ids))
    except UnicodeDecodeError as err:
        raise DefenseError(f'{path}: binary output, not "ImageId,label" text rows '
                           f'(byte {err.start} is not UTF-8)') from None
    except csv.Error as err:
        raise DefenseError(f'{path}: not "ImageId,label" text rows ({err})') from None


def _parse_predictions(path, rows, expected):
    labels = {}
    for line, row in enumerate(rows, start=1):
        if not row or (line == 1 and row[0].strip().lower() == 'imageid'):
            continue
        if len(row) != 2:
            raise DefenseError(f'{path}:{line}: expected "ImageId,label", got {row!r}')
        image_id = row[0].strip()
        image_id = image_id[:-4] if image_id.lower().endswith('.png') else image_id
        try:
            label = int(row[1])
        except ValueError:
            raise DefenseError(f'{path}:{line}: label {row[1]!r} is not an integer') from None
        if not 1 <= label <= 1000:
            raise DefenseError(f'{path}:{line}: label {label} is outside 1..1000')
        if image_id not in expected:
            raise DefenseError(f'{path}:{line}: unknown ImageId {image_id!r}')
        if image_id in labels:
            raise DefenseError(f'{path}:{line}: ImageId {image_id!r} appears twice')
        labels[image_id] = label
    missing = sorted(expected - labels.keys())
    if missing:
        raise DefenseError(f'{path}: no prediction for {len(missing)} of {len(expected)} '
                           f'images, e.g. {missing[:5]}')
    return labels


def run_defense(command, input_dir, timeout_s):
    """Run `command + [input_dir, output_file]`; return ImageId -> label for every PNG there."""
    if isinstance(command, (str, bytes)) or not command:
        raise ValueError('command must be a non-empty argument list, e.g. '
                         '["bash", "run_defense.sh"], never a shell string')
    input_dir = pathlib.Path(input_dir)
    image_ids = [p.stem for p in sorted(input_dir.glob('*.png'))]
    if not image_ids:
        raise ValueError(f'no PNG images in {input_dir}')
    with tempfile.TemporaryDirectory() as scratch:
        output = pathlib.Path(scratch) / OUTPUT_NAME
        try:
            process = subprocess.Popen([*map(str, command), str(input_dir), str(output)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       start_new_session=True)
        except OSError as e:
            raise DefenseError(f'cannot start {command[0]!r}: {e}') from e
        try:
            _, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise DefenseError(f'{command} timed out after {timeout_s} s on {input_dir}') from None
        if process.returncode != 0:
            tail = stderr.decode(errors='replace')[-STDERR_TAIL:]
            raise DefenseError(f'{command} exited with status {process.returncode}; '
                               f'stderr ends:\n{tail}')
        if not output.is_file():
            raise DefenseError(f'{command} exited cleanly but wrote no {output.name}')
        try:
            return read_predictions(output, image_ids)
        except DefenseError as err:
            raise DefenseError(f'{command} on {input_dir}: {err}') from None


class ExternalDefense(base.Defense):
    """An external NIPS17 defense as a callable on uint8 batches (PNGs written to a scratch folder)."""

    name = 'external'

    def __init__(self, command, timeout_s):
        super().__init__(())
        self.command, self.timeout_s = list(command), timeout_s

    def predict(self, images):
        with tempfile.TemporaryDirectory() as folder:
            ids = [f'{i:06d}' for i in range(len(images))]
            for image_id, image in zip(ids, images):
                iio.imwrite(os.path.join(folder, image_id + '.png'), image)
            labels = run_defense(self.command, folder, self.timeout_s)
        return np.array([labels[i] for i in ids], np.int64)
