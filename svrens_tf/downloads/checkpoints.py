"""Download, verify and install the released slim checkpoints (zoo.ZOO) into a checkpoint folder.

The layout and its manifest are svrens_tf/models/manifest.py's. The folder of a model appears
by one rename of a finished staging folder, so a half-downloaded or half-extracted checkpoint
is never at that path. No hashes are published for the tarballs: the check against the
architecture is what accepts a download.
"""
import glob
import os
import shutil
import tarfile
import tempfile
import zlib

from svrens_tf import files, models
from svrens_tf.downloads import fetch
from svrens_tf.models import checkpoint, manifest, zoo
from svrens_tf.models.checkpoint import CheckpointError

BASE_URL_ENV = 'SVRENS_MODEL_BASE_URL'


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


def install(name, checkpoint_dir=None, base_url=None, progress=True):
    """Make `<checkpoint_dir>/<name>/` hold the verified checkpoint of zoo entry `name`.

    Keeps an installation whose files still match their manifest. Otherwise uses the tarball
    found in `checkpoint_dir` (placed by hand) or downloads it, extracts it, checks it against
    the architecture and records its files' sha256. Returns the checkpoint path.
    Raises fetch.FetchError (one line, with how to place the file by hand) or CheckpointError.
    """
    entry = zoo_entry(name)
    checkpoint_dir = checkpoint_dir or zoo.default_checkpoint_dir()
    os.makedirs(checkpoint_dir, exist_ok=True)
    try:
        path, _ = manifest.installed_checkpoint(name, checkpoint_dir)
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
    os.chmod(staging, files.FOLDER_MODE)  # not mkdtemp's 0700: it becomes the installed folder
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
        manifest.write_manifest(staging, entry, relative)
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
