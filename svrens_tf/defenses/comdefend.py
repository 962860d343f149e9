"""ComDefend (Jia et al. 2019): the authors' released ImageNet ComCNN/RecCNN in TF2, then a classifier.

The released files (`enc20_0.0001.npy`, `dec20_0.0001.npy`) are zip archives holding a pickled
object array of 18 float32 arrays (kernel HWIO 3x3, bias, alternating). Pickle can run code, so
a released file is read only when its sha256 equals the published one (or the one the caller
pins), and then by an unpickler that resolves nothing but numpy's array reconstruction and
`_codecs.encode`. `convert_to_npz` writes the weights once as a plain npz, read with
`allow_pickle=False`.

Inference as the authors run it: RGB -> BGR in [0,1], encoder on `x - 0.5`, binary code
`code > 0` (sigmoid threshold 0.5), decoder + sigmoid, each 32x32 patch of a 224x224 image on
its own, output stored as uint8 (truncated). The transfer-attack codebases resize 299 -> 224,
purify, resize back to 299 and classify with ResNet-101 (`res_v2_101`).
"""
import io
import pathlib
import pickle
import zipfile

import numpy as np
import tensorflow as tf

from svrens_tf import files
from svrens_tf.defenses import base
from svrens_tf.models.checkpoint import CheckpointError, check_finite
from svrens_tf.weights import store

ENCODER_FILE = 'enc20_0.0001.npy'
DECODER_FILE = 'dec20_0.0001.npy'
PUBLISHED_SHA256 = {
    ENCODER_FILE: '14ad4726c517982d2c74b809bf1fd623f8abbe887d15e8b24f3a5dee2bb504d5',
    DECODER_FILE: 'd2df77581e5913c126a30c943acb29bbada6beb942a189652c4f726d7a98ecf7',
}
NPZ_FILE = 'comdefend.npz'
STORE_MODEL = 'comdefend'   # svrens-download --defense comdefend: <checkpoint_dir>/comdefend/
ENCODER_CHANNELS = (3, 16, 32, 64, 128, 256, 128, 64, 32, 12)
DECODER_CHANNELS = (12, 32, 64, 128, 256, 128, 64, 32, 16, 3)
PURIFY_SIZE = 224
PATCH_SIZE = 32

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_ALLOWED_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy._core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    ('_codecs', 'encode'): __import__('_codecs').encode,
}


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Resolves numpy's array reconstruction globals and `_codecs.encode`; refuses the rest."""

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f'refusing {module}.{name}: a ComDefend weight file holds only numpy arrays'
            ) from None


def _expected_shapes(channels):
    shapes = []
    for cin, cout in zip(channels[:-1], channels[1:]):
        shapes += [(3, 3, cin, cout), (cout,)]
    return shapes


def _check_arrays(arrays, channels, what):
    """The arrays of one network, refused unless shaped for `channels`, float32 and finite."""
    arrays = [np.asarray(a) for a in arrays]
    shapes = [a.shape for a in arrays]
    if shapes != _expected_shapes(channels) or any(a.dtype != np.float32 for a in arrays):
        raise CheckpointError(f'{what}: expected float32 kernels/biases for channels '
                              f'{channels}, got shapes {shapes}')
    part = 'encoder' if channels == ENCODER_CHANNELS else 'decoder'
    for i, array in enumerate(arrays):
        check_finite(array, what, f'{part}/{i}')
    return arrays


def read_released(path, sha256, channels):
    """The float32 arrays of one released `.npy`, refused unless its sha256 is `sha256`."""
    actual = files.sha256_file(path)
    if actual != sha256:
        raise CheckpointError(f'{path}: sha256 {actual} is not the expected {sha256}; '
                              'refusing to unpickle it')
    try:
        with zipfile.ZipFile(path) as archive:
            payload = io.BytesIO(archive.read('w.npy'))
        read_header = _HEADER_READERS[np.lib.format.read_magic(payload)]
        _, _, dtype = read_header(payload)
        if dtype != np.dtype(object):
            raise ValueError(f'dtype {dtype}')
        arrays = _ArrayOnlyUnpickler(payload, encoding='latin1').load()
    except (zipfile.BadZipFile, KeyError, ValueError, pickle.UnpicklingError, EOFError) as e:
        raise CheckpointError(f'{path}: not a ComDefend weight file ({e})') from e
    return _check_arrays(list(arrays), channels, path)


def read_released_pair(folder, sha256=PUBLISHED_SHA256):
    """(encoder arrays, decoder arrays) from the released files in `folder`."""
    folder = pathlib.Path(folder)
    return (read_released(folder / ENCODER_FILE, sha256[ENCODER_FILE], ENCODER_CHANNELS),
            read_released(folder / DECODER_FILE, sha256[DECODER_FILE], DECODER_CHANNELS))


def read_npz(path):
    """(encoder arrays, decoder arrays) from a file written by `convert_to_npz`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return _split({name: data[name] for name in data.files}, path)
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f'{path}: not a ComDefend npz written by convert_to_npz, or '
                              f'truncated ({e})') from None


def released_arrays(encoder_path, decoder_path):
    """{'encoder/<i>', 'decoder/<i>': array} from the released pair (sha256-pinned)."""
    encoder = read_released(encoder_path, PUBLISHED_SHA256[ENCODER_FILE], ENCODER_CHANNELS)
    decoder = read_released(decoder_path, PUBLISHED_SHA256[DECODER_FILE], DECODER_CHANNELS)
    arrays = {f'encoder/{i}': a for i, a in enumerate(encoder)}
    arrays.update({f'decoder/{i}': a for i, a in enumerate(decoder)})
    return arrays


def _split(arrays, path):
    encoder = [arrays[f'encoder/{i}'] for i in range(2 * (len(ENCODER_CHANNELS) - 1))]
    decoder = [arrays[f'decoder/{i}'] for i in range(2 * (len(DECODER_CHANNELS) - 1))]
    return (_check_arrays(encoder, ENCODER_CHANNELS, path),
            _check_arrays(decoder, DECODER_CHANNELS, path))


def convert_to_npz(folder, out_path):
    """Verify and read the released pair in `folder` once; write them as a plain npz (atomic)."""
    folder = pathlib.Path(folder)
    arrays = released_arrays(folder / ENCODER_FILE, folder / DECODER_FILE)
    out_path = pathlib.Path(out_path)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    files.write_atomic(out_path, buffer.getvalue())
    return out_path


def has_weights(path):
    """Whether `read_weights(path)` finds weights there (nothing is read)."""
    path = pathlib.Path(path)
    return (path.is_file() or (path / NPZ_FILE).is_file()
            or all((path / f).is_file() for f in (ENCODER_FILE, DECODER_FILE)))


def read_weights(path):
    """Weights from a folder svrens-download filled (the store's npz, sha256 checked against its
    manifest), a converted npz, or a folder holding the npz or the released pair."""
    path = pathlib.Path(path)
    if path.is_file():
        return read_npz(path)
    if store.missing(path, STORE_MODEL) is None:
        return _split(store.load(path, STORE_MODEL), store.npz_path(path, STORE_MODEL))
    if (path / NPZ_FILE).is_file():
        return read_npz(path / NPZ_FILE)
    if (path / ENCODER_FILE).is_file() and (path / DECODER_FILE).is_file():
        return read_released_pair(path)
    raise CheckpointError(f'no ComDefend weights at {path}: expected {NPZ_FILE} or '
                          f'{ENCODER_FILE} + {DECODER_FILE}; install with: '
                          f'{base.install_command("comdefend")}')


def _conv_stack(x, arrays):
    """3x3 SAME convs with bias, ELU after all but the last."""
    layers = len(arrays) // 2
    for i in range(layers):
        x = tf.nn.conv2d(x, arrays[2 * i], 1, 'SAME') + arrays[2 * i + 1]
        if i < layers - 1:
            x = tf.nn.elu(x)
    return x


def to_patches(x, patch):
    """[B,H,W,C] -> [B*(H/p)*(W/p),p,p,C], row-major patch order."""
    _, h, w, c = x.shape
    x = tf.reshape(x, [-1, h // patch, patch, w // patch, patch, c])
    return tf.reshape(tf.transpose(x, [0, 1, 3, 2, 4, 5]), [-1, patch, patch, c])


def from_patches(x, h, w):
    """Inverse of `to_patches`."""
    patch, c = x.shape[1], x.shape[3]
    x = tf.reshape(x, [-1, h // patch, w // patch, patch, patch, c])
    return tf.reshape(tf.transpose(x, [0, 1, 3, 2, 4, 5]), [-1, h, w, c])


class Purifier(tf.Module):
    """ComCNN -> binary code -> RecCNN on RGB images in [0,1]; patch-wise like the authors."""

    def __init__(self, encoder, decoder, patch_size=PATCH_SIZE):
        super().__init__(name='comdefend')
        self.encoder = [tf.constant(a) for a in encoder]
        self.decoder = [tf.constant(a) for a in decoder]
        self.patch_size = patch_size

    @tf.function
    def __call__(self, images_unit):
        """float32 RGB [B,H,W,3] in [0,1] -> reconstruction in [0,1]."""
        _, h, w, _ = images_unit.shape
        x = tf.clip_by_value(images_unit, 0.0, 1.0)[..., ::-1]
        if self.patch_size:
            x = to_patches(x, self.patch_size)
        code = _conv_stack(x - 0.5, self.encoder)
        y = tf.sigmoid(_conv_stack(tf.cast(code > 0.0, tf.float32), self.decoder))
        if self.patch_size:
            y = from_patches(y, h, w)
        return y[..., ::-1]


def purify_uint8(purifier, images_uint8):
    """uint8 [B,H,W,3] -> uint8 reconstruction, truncated as the authors store it."""
    y = purifier(tf.convert_to_tensor(images_uint8, tf.float32) / 255.0)
    return tf.cast(y * 255.0, tf.uint8).numpy()


class ComDefend(base.TransformDefense):
    """299 -> 224, ComDefend purification, -> 299, then the classifier (ResNet-v2-101 in VT).

    `weights`: a converted npz or a folder holding it or the released pair; by default
    `<checkpoint_dir>/comdefend`. `patch_size=None` purifies the whole image at once.
    """

    name = 'comdefend'

    @classmethod
    def missing_weights(cls, settings, checkpoint_dir):
        folder = base.weights_folder(cls.name, settings['weights'], checkpoint_dir)
        if has_weights(folder):
            return None
        return (f'no ComDefend weights in {folder}; install with: '
                f'{base.install_command(cls.name, checkpoint_dir)}')

    def __init__(self, weights=None, classifier='res_v2_101', size=PURIFY_SIZE,
                 patch_size=PATCH_SIZE, checkpoint_dir=None, load_model=base.load_zoo_model):
        weights = base.weights_folder(self.name, weights, checkpoint_dir)
        if patch_size and size % patch_size:
            raise ValueError(f'patch_size {patch_size} must divide size {size}')
        self.purifier = Purifier(*read_weights(weights), patch_size=patch_size)
        self.size = size
        super().__init__(classifier, checkpoint_dir, load_model)

    def transform(self, images):
        purified = purify_uint8(self.purifier, base.resize_uint8(images, self.size))
        return base.resize_uint8(purified, base.IMAGE_SHAPE[0]).astype(np.float32) / 255.0
