"""NIPS17 image folders: labels csv + `<ImageId>.png`, tf.data batches, atomic PNG output, resume.

Input policy (checked for every image before anything is written):
- 8-bit RGB PNGs are read as they are; 8-bit grayscale and palette PNGs are converted to RGB
  (channels replicated / palette looked up), which loses nothing.
- PNGs with an alpha channel (gray+alpha, RGBA) and 16-bit PNGs are rejected: dropping alpha or
  bits would silently change the image the eps-ball is measured around.
- Images must be 299x299 unless `resize=True` (bilinear, antialiased, rounded to uint8); the
  eps-ball is then around the resized image, and outputs are 299x299.
"""
import csv
import dataclasses
import pathlib
import re
import struct
import tempfile

import numpy as np
import tensorflow as tf

from svrens_tf import files
from svrens_tf.models.zoo import IMAGE_SIZE

LABEL_FILES = ('dev_dataset.csv', 'val_rs.csv')
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_IMAGE_ID = re.compile(r'^[A-Za-z0-9_-][A-Za-z0-9_.-]*$')
_OTHER_IMAGE_EXTENSIONS = {'.jpg', '.jpeg', '.bmp', '.gif', '.tif', '.tiff', '.webp', '.ppm'}
_COLOR_TYPES = {0: 'grayscale', 2: 'RGB', 3: 'palette', 4: 'grayscale+alpha', 6: 'RGBA'}


class DataError(ValueError):
    """Bad input data; the message names the offending file."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A validated NIPS17-style folder: ids sorted, labels 1..1000 (slim's 1001-class indexing)."""
    image_dir: pathlib.Path
    labels_csv: pathlib.Path
    labels: dict          # ImageId -> true label
    targets: dict         # ImageId -> target label (dev_dataset.csv only, else empty)
    resize: bool = False

    @property
    def image_ids(self):
        return sorted(self.labels)

    def path(self, image_id):
        return self.image_dir / f'{image_id}.png'


def find_labels_csv(image_dir):
    """dev_dataset.csv or val_rs.csv beside the images or one folder up (the NIPS17 layout)."""
    for folder in (image_dir, image_dir.parent):
        for name in LABEL_FILES:
            if (folder / name).is_file():
                return folder / name
    raise DataError(f'{image_dir}: no labels csv ({" or ".join(LABEL_FILES)}) in it or its '
                    f'parent; pass --labels FILE')


def read_labels(csv_path):
    """(labels, targets) from dev_dataset.csv (ImageId, TrueLabel, TargetClass) or val_rs.csv."""
    csv_path = pathlib.Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f'{csv_path}: labels csv not found')
    with open(csv_path, newline='') as f:
        rows = list(csv.DictReader(f))
        header = set(rows[0]) if rows else set()
    if {'ImageId', 'TrueLabel'} <= header:
        id_of, label_key, target_key = (lambda r: r['ImageId']), 'TrueLabel', 'TargetClass'
    elif {'filename', 'label'} <= header:
        id_of, label_key, target_key = (lambda r: _strip_png(r['filename'])), 'label', None
    else:
        raise DataError(f'{csv_path}: not a labels csv (needs ImageId,TrueLabel or '
                        f'filename,label columns, and at least one row)')
    labels, targets = {}, {}
    for line, row in enumerate(rows, start=2):
        image_id = id_of(row)
        where = f'{csv_path}, line {line}'
        if not _IMAGE_ID.match(image_id or '') or image_id.startswith('..'):
            raise DataError(f'{where}: ImageId {image_id!r} is not a plain file name '
                            f'(letters, digits, _ - . only; no path separator or "..")')
        if image_id in labels:
            raise DataError(f'{where}: ImageId {image_id} listed twice')
        labels[image_id] = _parse_label(row[label_key], where)
        if target_key and row.get(target_key):
            targets[image_id] = _parse_label(row[target_key], where)
    return labels, targets


def _strip_png(filename):
    return filename[:-4] if filename and filename.endswith('.png') else filename


def _parse_label(text, where):
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise DataError(f'{where}: label {text!r} is not an integer') from None
    if not 1 <= value <= 1000:
        raise DataError(f'{where}: label {value} outside 1..1000')
    return value


def resolve_image_dir(input_dir):
    """The folder holding the PNGs: input_dir itself, or input_dir/images (NIPS17 layout)."""
    input_dir = pathlib.Path(input_dir)
    if not input_dir.is_dir():
        raise DataError(f'{input_dir}: input folder not found')
    images = input_dir / 'images'
    if images.is_dir() and not any(input_dir.glob('*.png')):
        return images
    return input_dir


def load_dataset(input_dir, labels_csv=None, resize=False, image_ids=None):
    """Validate a folder against its labels csv and every PNG in it; return a Dataset.

    `image_ids` restricts the PNG checks to those images (e.g. one shard); the listing checks
    (every listed image present, no unlisted image) always cover the whole folder.
    """
    image_dir = resolve_image_dir(input_dir)
    csv_path = pathlib.Path(labels_csv) if labels_csv else find_labels_csv(image_dir)
    labels, targets = read_labels(csv_path)
    present = set()
    for entry in sorted(image_dir.iterdir()):
        suffix = entry.suffix.lower()
        if entry.name.startswith('.') or not entry.is_file():
            continue
        if suffix in _OTHER_IMAGE_EXTENSIONS or (suffix == '.png' and entry.suffix != '.png'):
            raise DataError(f'{entry}: not a <ImageId>.png file; convert it to PNG')
        if suffix == '.png':
            if entry.stem not in labels:
                raise DataError(f'{entry}: image not listed in {csv_path}')
            present.add(entry.stem)
    missing = sorted(set(labels) - present)
    if missing:
        hint = ''
        if not present:  # only the csv was copied: say where the images come from
            from svrens_tf.downloads import nips17
            hint = f'; {nips17.how_to_get(input_dir)}'
        raise DataError(f'{image_dir / (missing[0] + ".png")}: listed in {csv_path} but missing'
                        f' ({len(missing)} missing in all){hint}')
    dataset = Dataset(image_dir, csv_path, labels, targets, resize)
    check_images(dataset, dataset.image_ids if image_ids is None else image_ids)
    return dataset


def check_images(dataset, image_ids):
    """Raise DataError for the first of `image_ids` the input policy rejects."""
    for image_id in image_ids:
        check_png(dataset.path(image_id), dataset.resize)


def png_header(path):
    """(width, height, bit_depth, color_type) from the IHDR chunk; DataError if not a PNG."""
    with open(path, 'rb') as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != PNG_SIGNATURE or head[12:16] != b'IHDR':
        raise DataError(f'{path}: not a PNG file')
    width, height, bit_depth, color_type = struct.unpack('>IIBB', head[16:26])
    return width, height, bit_depth, color_type


def check_png(path, resize=False):
    """Raise DataError unless `path` decodes to an image the input policy accepts."""
    width, height, bit_depth, color_type = png_header(path)
    if color_type in (4, 6):
        raise DataError(f'{path}: {_COLOR_TYPES[color_type]} PNG; alpha channels are rejected, '
                        f'save it as RGB')
    if bit_depth == 16:
        raise DataError(f'{path}: 16-bit PNG; only 8-bit PNGs are accepted, save it as 8-bit RGB')
    if color_type not in _COLOR_TYPES:
        raise DataError(f'{path}: corrupt PNG header (color type {color_type})')
    if (width, height) != (IMAGE_SIZE, IMAGE_SIZE) and not resize:
        raise DataError(f'{path}: {width}x{height} image, expected {IMAGE_SIZE}x{IMAGE_SIZE} '
                        f'(pass --resize to resize it)')
    try:
        decode_png(tf.io.read_file(str(path)), resize)
    except tf.errors.OpError as e:
        raise DataError(f'{path}: corrupt PNG ({e.message.splitlines()[0]})') from None


def decode_png(contents, resize=False):
    """PNG bytes -> uint8 [299, 299, 3] tensor (grayscale/palette converted to RGB)."""
    image = tf.io.decode_png(contents, channels=3, dtype=tf.uint8)
    if resize:
        image = tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE], antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return tf.ensure_shape(image, [IMAGE_SIZE, IMAGE_SIZE, 3])


def read_image(path, resize=False):
    """One image as a uint8 [299, 299, 3] numpy array."""
    return decode_png(tf.io.read_file(str(path)), resize).numpy()


def plan_batches(image_ids, batch_size, num_shards=1, shard_index=0):
    """This shard's batches: the global batches of `batch_size` in id order, round-robin.

    Batches never depend on which images are already done or on the shard count, so a resumed
    or sharded run attacks exactly the batches a straight run does.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if not 0 <= shard_index < num_shards:
        raise ValueError(f'shard_index {shard_index} outside 0..{num_shards - 1}')
    image_ids = list(image_ids)
    batches = [image_ids[i:i + batch_size] for i in range(0, len(image_ids), batch_size)]
    return batches[shard_index::num_shards]


def batches(dataset, planned, image_dirs=None):
    """tf.data over planned batches: yields (ids, {dir: uint8 [B,299,299,3]}) per batch, prefetched.

    `image_dirs` (default: the dataset's own folder) are folders holding the same `<ImageId>.png`
    names, read side by side (e.g. clean and adversarial); only the dataset folder is resized.
    """
    image_dirs = [pathlib.Path(d) for d in image_dirs or [dataset.image_dir]]
    flat_ids = [image_id for batch in planned for image_id in batch]
    if not flat_ids:
        return
    paths = tuple([str(d / f'{i}.png') for i in flat_ids] for d in image_dirs)
    resize = tuple(dataset.resize and d == dataset.image_dir for d in image_dirs)

    def load(*files):
        return tuple(decode_png(tf.io.read_file(f), r) for f, r in zip(files, resize))

    stream = (tf.data.Dataset.from_tensor_slices(paths)
              .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
              .batch(len(planned[0]))
              .prefetch(tf.data.AUTOTUNE))
    for batch, images in zip(planned, stream):
        if len(batch) != images[0].shape[0]:
            raise ValueError('only the last planned batch may be short')
        yield batch, dict(zip(image_dirs, (im.numpy() for im in images)))


def quantize(x_adv, clean, max_epsilon):
    """float [-1,1] adversarial batch -> uint8, within max_epsilon (pixels) of `clean` uint8.

    Rounding to the nearest level can land one level outside the ball; clipping to the integer
    ball afterwards makes the bound hold on every saved pixel.
    """
    bound = int(np.floor(max_epsilon + 1e-6))
    pixels = np.round((np.asarray(x_adv, np.float64) + 1.0) * 127.5)
    clean = clean.astype(np.int32)
    pixels = np.clip(pixels, np.maximum(clean - bound, 0), np.minimum(clean + bound, 255))
    return pixels.astype(np.uint8)


def within_bound(adv, clean, max_epsilon):
    return int(np.max(np.abs(adv.astype(np.int32) - clean.astype(np.int32)))) <= max_epsilon


def check_output_dir(output_dir, input_dir, dataset):
    """Refuse an output folder from which a later run would resolve another clean set: the input
    folder or its image folder, a folder holding a labels csv (its PNGs would be taken for the
    images that csv lists), or one holding an images/ folder (PNGs beside it would replace
    images/ as what the folder resolves to), or one that cannot be written (checked by making
    an unnamed temporary file in it or the nearest folder above it that exists)."""
    output_dir = pathlib.Path(output_dir).resolve()
    if output_dir in (pathlib.Path(input_dir).resolve(), dataset.image_dir.resolve()):
        raise DataError(f'{output_dir}: output folder is the input folder; choose another')
    if output_dir.exists() and not output_dir.is_dir():
        raise DataError(f'{output_dir}: output path exists and is not a folder')
    csvs = [output_dir / name for name in LABEL_FILES if (output_dir / name).is_file()]
    if csvs or output_dir == dataset.labels_csv.parent.resolve():
        raise DataError(f'{output_dir}: output folder holds the labels csv '
                        f'{(csvs or [dataset.labels_csv])[0].name}; a later run would read PNGs '
                        'written beside it as clean images; choose another')
    if (output_dir / 'images').is_dir():
        raise DataError(f'{output_dir}: output folder holds an images/ folder; PNGs written '
                        'here would replace images/ as the clean set a later run reads from '
                        'this folder; choose another')
    existing = next(p for p in (output_dir, *output_dir.parents) if p.exists())
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        raise DataError(f'{output_dir}: cannot write there ({err.strerror}: {existing})') from None
    return output_dir


def is_done(output_path, clean, max_epsilon):
    """True if `output_path` is a valid 299x299 RGB PNG within max_epsilon of `clean`."""
    try:
        width, height, bit_depth, color_type = png_header(output_path)
        if (width, height, bit_depth, color_type) != (IMAGE_SIZE, IMAGE_SIZE, 8, 2):
            return False
        return within_bound(read_image(output_path), clean, max_epsilon)
    except (OSError, DataError, tf.errors.OpError):
        return False


def write_png(path, image):
    """Save a uint8 [299,299,3] image as PNG, atomically."""
    files.write_atomic(path, tf.io.encode_png(image).numpy())
