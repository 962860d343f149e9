"""Fetch the released weights of NRP, RS (Cohen et al.'s ResNet-50), HGD and ComDefend and
convert them once into the project's weight store (`svrens_tf/weights/store.py`).

    install('nrp', checkpoint_dir)                       # download, convert, record sha256s
    install('rs', checkpoint_dir, source='models.tar')   # offline: a file, archive or folder

`<checkpoint_dir>/<defense>/` receives `<model>.npz` + manifest per model. Each released file
is looked for in `source` (a released file, a zip/tar archive holding it, or a folder holding
either) or, without one, in that folder (placed by hand) and else downloaded there. PyTorch
files are read by the safe reader (`svrens_tf/weights/pth.py`), ComDefend's pickled arrays only
after their sha256 equals the published one. A state dict is accepted only if the TF port
builds from it (every key used, every shape right); NaN/inf is refused. No hashes are published
for the PyTorch files: the sha256 found is recorded and checked on every later load.
"""
import dataclasses
import os
import pathlib
import shutil
import tarfile
import tempfile
import zipfile

from svrens_tf.downloads import fetch
from svrens_tf.models import zoo
from svrens_tf.models.checkpoint import CheckpointError
from svrens_tf.weights import pth, store

DRIVE = 'https://drive.usercontent.google.com/download?export=download&confirm=t&id='
HGD_FOLDER = 'https://www.dropbox.com/sh/q9ssnbhpx8l515t/'
COMDEFEND_RAW = ('https://raw.githubusercontent.com/jiaxiaojunQAQ/Comdefend/'
                 '91273edffc2385dffce993cb5fed6d13718942d3/checkpoints/')


@dataclasses.dataclass(frozen=True)
class Download:
    url: str
    name: str               # saved as <checkpoint_dir>/<defense>/<name>
    page: str               # where a person gets it by hand
    sha256: str = None      # where the authors' copy is pinned


@dataclasses.dataclass(frozen=True)
class Model:
    name: str               # the store's model name
    released: tuple         # released file paths (matched as path suffixes)


@dataclasses.dataclass(frozen=True)
class Release:
    downloads: tuple
    models: tuple


def _hgd_release():
    from svrens_tf.defenses.hgd_nets import MEMBERS
    ids = {'denoise_incepv3_012.ckpt': 'AAAaP_-c01YIJYP-78-Xp2Bqa',
           'denoise_inres_014.ckpt': 'AAB8QCRgulw-C5ZD8bNMCVfka',
           'denoise_res_015.ckpt': 'AADiiGw6BSmcJ1_qi5EuHNd-a',
           'denoise_rex_001.ckpt': 'AAAabRanPPwu3Td9lPG9jdZ0a'}
    return Release(
        tuple(Download(f'{HGD_FOLDER}{ids[m.released_file]}/{m.released_file}?dl=1',
                       m.released_file, 'https://github.com/lfz/Guided-Denoise (nips_deploy)')
              for m in MEMBERS.values()),
        tuple(Model(key, (m.released_file,)) for key, m in MEMBERS.items()))


def release(defense):
    """The Release of `defense` (hgd, nrp, rs or comdefend)."""
    if defense == 'nrp':
        from svrens_tf.defenses import nrp
        return Release((Download(DRIVE + '1qWqUS9MKGLC5GxQiqqZsw7z72XCSB8Oc',
                                 'pretrained_purifiers.download',
                                 'https://github.com/Muzammal-Naseer/NRP ("Pretrained Purifiers")'),),
                       tuple(Model(m, (f,)) for m, f in nrp.RELEASED_FILES.items()))
    if defense == 'rs':
        return Release((Download(DRIVE + '1h_TpbXm5haY5f-l4--IKylmdz6tvPoR4', 'models.download',
                                 'https://github.com/locuslab/smoothing ("our trained models")'),),
                       (Model('cohen_resnet50',
                              ('imagenet/resnet50/noise_0.25/checkpoint.pth.tar',)),))
    if defense == 'hgd':
        return _hgd_release()
    if defense == 'comdefend':
        from svrens_tf.defenses import comdefend
        files = (comdefend.ENCODER_FILE, comdefend.DECODER_FILE)
        return Release(tuple(Download(COMDEFEND_RAW + f, f, 'https://github.com/jiaxiaojunQAQ/'
                                      'Comdefend (checkpoints/)', comdefend.PUBLISHED_SHA256[f])
                             for f in files),
                       (Model(comdefend.STORE_MODEL, files),))
    raise ValueError(f'no released weights for {defense!r}; choose from {", ".join(DEFENSES)}')


DEFENSES = ('hgd', 'nrp', 'rs', 'comdefend')


def convert(defense, model, paths):
    """name -> ndarray of `model` from its released file(s), checked by building the TF port."""
    if defense == 'comdefend':
        from svrens_tf.defenses import comdefend
        return comdefend.released_arrays(*paths)
    what = f'{paths[0]} ({defense} {model})'
    try:
        arrays = pth.state_dict(paths[0])
    except pth.PthError as err:
        raise CheckpointError(str(err)) from None
    try:
        if defense == 'nrp':
            from svrens_tf.defenses import nrp
            nrp.Purifier(arrays, model)
        elif defense == 'rs':
            from svrens_tf.defenses import cohen_resnet50
            cohen_resnet50.CohenResNet50(arrays)
        else:
            from svrens_tf.defenses.hgd_nets import MEMBERS
            MEMBERS[model](arrays)
    except (KeyError, ValueError) as err:
        raise CheckpointError(f'{what}: not the released network ({err})') from None
    return arrays


def _archive_member(archive, suffix):
    """The member of a zip or tar file whose path ends with `suffix`, or None."""
    def matches(name):
        return name == suffix or name.endswith('/' + suffix)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            return next((n for n in z.namelist() if matches(n)), None)
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            return next((m.name for m in t if m.isfile() and matches(m.name)), None)
    return None


def _extract(archive, member, dest):
    """Copy one archive member to `dest` (only that member: nothing else is written)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(dest, 'wb') as out:
            shutil.copyfileobj(src, out)
    else:
        with tarfile.open(archive) as t, t.extractfile(member) as src, open(dest, 'wb') as out:
            shutil.copyfileobj(src, out)
    return dest


def locate(root, suffix, scratch):
    """Path of released file `suffix` in `root` (that file, an archive holding it, or a folder
    holding either; a file of the same base name counts), extracted into `scratch` when inside
    an archive; None if absent."""
    root, name = pathlib.Path(root), pathlib.PurePath(suffix).name
    candidates = sorted(p for p in root.rglob('*') if p.is_file()) if root.is_dir() else \
        [root] if root.is_file() else []
    for match in (lambda p: p.as_posix().endswith('/' + suffix) or p == root and p.name == name,
                  lambda p: p.name == name):
        found = [p for p in candidates if match(p)]
        if found:
            return found[0]
    for candidate in candidates:
        member = _archive_member(candidate, suffix)
        if member:
            return _extract(candidate, member, pathlib.Path(scratch) / name)
    return None


def install(defense, checkpoint_dir=None, source=None, progress=True):
    """Make `<checkpoint_dir>/<defense>/` hold the converted weights of every model of the
    defense's release; keeps models whose files still match their manifest. Returns the folder.
    Raises fetch.FetchError or CheckpointError (one line, saying how to place files by hand)."""
    rel = release(defense)
    checkpoint_dir = checkpoint_dir or zoo.default_checkpoint_dir()
    folder = pathlib.Path(checkpoint_dir) / defense
    folder.mkdir(parents=True, exist_ok=True)
    pending = []
    for model in rel.models:
        try:
            store.load(folder, model.name)
            print(f'{defense}/{model.name}: verified in {folder}')
        except CheckpointError as err:
            if store.missing(folder, model.name) is None:
                print(f'{defense}/{model.name}: reconverting, {err}')
            pending.append(model)
    if not pending:
        return folder
    downloaded = []
    with tempfile.TemporaryDirectory(dir=folder, prefix='.extract-') as scratch:
        for model in pending:
            paths = [locate(source or folder, suffix, scratch) for suffix in model.released]
            fetched = []
            if None in paths and source is None:
                fetched = _download(defense, rel, folder, progress)
                downloaded += fetched
                paths = [locate(folder, suffix, scratch) for suffix in model.released]
            if None in paths:
                for path in downloaded:
                    os.remove(path)
                absent = model.released[paths.index(None)]
                what = ('the download does not hold it (a file host may have served a web page '
                        'instead)' if fetched else f'not found in {source or folder}')
                raise CheckpointError(
                    f'{defense}: {absent}: {what}; download it by hand '
                    f'({", ".join(d.page for d in rel.downloads)}) and pass its file, archive '
                    'or folder with --defense_source')
            store.save(convert(defense, model.name, paths), folder, model.name, paths)
            print(f'{defense}/{model.name}: converted {", ".join(map(str, paths))}')
    for path in downloaded:
        os.remove(path)
    return folder


def _download(defense, rel, folder, progress):
    """Fetch the release's files not yet in `folder`; returns the paths fetched."""
    fetched = []
    for item in rel.downloads:
        dest = folder / item.name
        if dest.is_file():
            continue
        print(f'{defense}: downloading {item.url}')
        try:
            fetch.fetch(item.url, dest, item.sha256, progress=progress)
        except fetch.FetchError as err:
            raise fetch.FetchError(f'{err}; to install by hand, download it from {item.page} and '
                                   f'pass it with --defense_source (or copy it into '
                                   f'{folder})') from None
        fetched.append(dest)
    return fetched
