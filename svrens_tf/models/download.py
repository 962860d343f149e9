"""Download, verify and install the released slim checkpoints (zoo.ZOO) into a checkpoint folder.

Layout: `<checkpoint_dir>/<zoo name>/` holds what the release tarball held plus `manifest.json`
(the sha256 and size of every file, written once the checkpoint was checked against the
architecture's variable names and shapes). The folder appears by one rename of a finished
staging folder, so a half-downloaded or half-extracted checkpoint is never at that path, and
`installed_checkpoint` re-hashes the files so a changed or truncated file is noticed.
No hashes are published for the tarballs: the check against the architecture is what
accepts a download.
"""
import glob
import json
import os
import pathlib
import shutil
import tarfile
import tempfile
import zlib

from svrens_tf import fetch, models
from svrens_tf.models import checkpoint, zoo
from svrens_tf.models.checkpoint import CheckpointError

MANIFEST = 'manifest.json'
CHECKPOINT_DIR_ENV = 'SVRENS_CHECKPOINT_DIR'
BASE_URL_ENV = 'SVRENS_MODEL_BASE_URL'


def default_checkpoint_dir():
    """$SVRENS_CHECKPOINT_DIR, else `checkpoints/` at the repository root."""
    return os.environ.get(CHECKPOINT_DIR_ENV) or str(
        pathlib.Path(__file__).resolve().parents[2] / 'checkpoints')


def archive_url(name, base_url=None):
    """Where the tarball of zoo entry `name` is fetched: `base_url`, $SVRENS_MODEL_BASE_URL or
    the official download.tensorflow.org folder, followed by the archive name."""
    base = base_url or os.environ.get(BASE_URL_ENV) or zoo.BASE_URL
    return base.rstrip('/') + '/' + zoo_entry(name).archive


def zoo_entry(name):
    try:
        return zoo.ZOO[name]
    except KeyError:
        raise ValueError(f'unknown checkpoint {name!r}; known: {", ".join(zoo.ZOO)}') from None


def is_checkpoint_root(folder, name):
    """True if `folder` is a checkpoint folder in svrens-download's layout rather than one
    checkpoint: it has a `<name>/` or an installed model's subfolder, or no checkpoint at all."""
    folder = os.fspath(folder)
    return os.path.isdir(folder) and (
        os.path.isdir(os.path.join(folder, name))
        or bool(glob.glob(os.path.join(glob.escape(folder), '*', MANIFEST)))
        or not checkpoint.find_checkpoints(folder))


def installed_checkpoint(name, checkpoint_dir=None):
    """Path of the verified checkpoint of zoo entry `name` in `checkpoint_dir` (default
    folder if None), re-checked by `verified_checkpoint`; CheckpointError saying what to run."""
    checkpoint_dir = checkpoint_dir or default_checkpoint_dir()
    folder = os.path.join(checkpoint_dir, name)
    if not os.path.isfile(os.path.join(folder, MANIFEST)):
        raise CheckpointError(f'no verified checkpoint of {name} in {folder}; '
                              f'{_rerun(name, checkpoint_dir)}')
    return verified_checkpoint(folder)


def verified_checkpoint(folder):
    """The checkpoint path recorded in `folder`/manifest.json, after re-checking the size and
    sha256 of every file listed there; CheckpointError naming a changed or missing file."""
    folder = os.fspath(folder)
    manifest_path = os.path.join(folder, MANIFEST)
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
        name, files, relative = manifest['name'], manifest['files'], manifest['checkpoint']
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f'{manifest_path}: unreadable manifest ({err}); reinstall the '
                              'model with svrens-download') from None
    rerun = _rerun(name, os.path.dirname(os.path.abspath(folder)))
    for rel, record in files.items():
        path = os.path.join(folder, rel)
        if not os.path.isfile(path):
            raise CheckpointError(f'{path}: missing since it was verified; {rerun}')
        size = os.path.getsize(path)
        if size != record['bytes']:
            raise CheckpointError(f'{path}: {size} bytes, {record["bytes"]} when verified '
                                  f'(truncated or replaced); {rerun}')
        if fetch.sha256_file(path) != record['sha256']:
            raise CheckpointError(f'{path}: content changed since it was verified; {rerun}')
    return os.path.join(folder, relative)


def _rerun(name, checkpoint_dir):
    return f'run: svrens-download --models {name} --checkpoint_dir {checkpoint_dir}'


def install(name, checkpoint_dir=None, base_url=None, progress=True):
    """Make `<checkpoint_dir>/<name>/` hold the verified checkpoint of zoo entry `name`.

    Keeps an installation whose files still match their manifest. Otherwise uses the tarball
    found in `checkpoint_dir` (placed by hand) or downloads it, extracts it, checks it against
    the architecture and records its files' sha256. Returns the checkpoint path.
    Raises fetch.FetchError (one line, with how to place the file by hand) or CheckpointError.
    """
    entry = zoo_entry(name)
    checkpoint_dir = checkpoint_dir or default_checkpoint_dir()
    os.makedirs(checkpoint_dir, exist_ok=True)
    try:
        path = installed_checkpoint(name, checkpoint_dir)
        print(f'{name}: verified checkpoint in {os.path.dirname(path)}')
        return path
    except CheckpointError as err:
        if os.path.isdir(os.path.join(checkpoint_dir, name)):
            print(f'{name}: reinstalling, {err}')
    archive = os.path.join(checkpoint_dir, entry.archive)
    if os.path.isfile(archive):
        print(f'{name}: using {archive}')
    else:
        url = archive_url(name, base_url)
        print(f'{name}: downloading {url}')
        try:
            fetch.fetch(url, archive, progress=progress)
        except fetch.FetchError as err:
            raise fetch.FetchError(f'{err}; to install by hand, copy {entry.archive} into '
                                   f'{checkpoint_dir} and rerun (or pass --base_url of a '
                                   'mirror)') from None
    try:
        path = _install_archive(entry, archive, checkpoint_dir)
    except CheckpointError as err:
        os.remove(archive)
        raise CheckpointError(f'{err}; the archive was deleted, rerun to fetch it again') from None
    os.remove(archive)
    print(f'{name}: installed {path}')
    return path


def _install_archive(entry, archive, checkpoint_dir):
    """Extract, verify and record `archive` into a staging folder, then rename it into place."""
    for stale in glob.glob(os.path.join(checkpoint_dir, f'.{entry.name}.staging-*')):
        shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted run
    staging = tempfile.mkdtemp(prefix=f'.{entry.name}.staging-', dir=checkpoint_dir)
    os.chmod(staging, 0o755)  # mkdtemp's 0700 would become the installed folder's mode
    target = os.path.join(checkpoint_dir, entry.name)
    try:
        extract(archive, staging)
        found = checkpoint.find_checkpoints(staging)
        if len(found) != 1:
            listed = ', '.join(os.path.relpath(p, staging) for p in found)
            raise CheckpointError(f'expected one checkpoint inside, found {len(found)}'
                                  + (f': {listed}' if found else ''))
        relative = os.path.relpath(found[0], staging)
        checkpoint.match(models.build(entry.arch), found[0])
        _write_manifest(staging, entry, relative)
        if os.path.exists(target):
            os.replace(target, staging + '.old')
        os.replace(staging, target)
    except CheckpointError as err:
        reason = str(err).replace(staging + os.sep, '')
        raise CheckpointError(f'{archive} ({entry.name}): {reason}') from None
    finally:
        for leftover in (staging, staging + '.old'):
            shutil.rmtree(leftover, ignore_errors=True)
    return os.path.join(target, relative)


def extract(archive, folder):
    """Extract a (compressed) tarball into `folder`, refusing links, special files and any
    member that would land outside `folder`. CheckpointError for a corrupt archive."""
    root = os.path.realpath(folder)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                if not (member.isfile() or member.isdir()):
                    raise CheckpointError(f'member {member.name} is a link or special file; '
                                          'refusing to extract')
                dest = os.path.realpath(os.path.join(root, member.name))
                if os.path.commonpath([root, dest]) != root:
                    raise CheckpointError(f'member {member.name} would land outside the '
                                          'folder; refusing to extract')
            tar.extractall(root, members=members, filter='data')
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise CheckpointError(f'corrupt or truncated archive ({err})') from None


def _write_manifest(folder, entry, relative):
    files = {}
    for path in sorted(pathlib.Path(folder).rglob('*')):
        if path.is_file():
            files[str(path.relative_to(folder))] = {'bytes': path.stat().st_size,
                                                    'sha256': fetch.sha256_file(path)}
    manifest = {'name': entry.name, 'arch': entry.arch, 'archive': entry.archive,
                'checkpoint': relative, 'files': files}
    with open(os.path.join(folder, MANIFEST), 'w') as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
