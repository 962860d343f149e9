"""Files a run writes or checks: atomic writes (a killed run never leaves a half-written file at
its final path), the clean-up of their leftovers, the sha256 of a file, and the lock that keeps
a second run out of a folder while one is writing there.

Files and folders are created with the modes the user's umask gives (0644/0755 for umask 022),
also those that start as temporaries (which Python's tempfile makes private)."""
import contextlib
import fcntl
import hashlib
import os
import pathlib
import sys
import tempfile

TEMP_SUFFIX = '.tmp'
CHUNK = 1 << 20


def _umask():
    """The process umask, read without changing it where /proc tells it."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()    # what open() gives a new file
FOLDER_MODE = 0o777 & ~_umask()  # what os.mkdir() gives a new folder


def write_atomic(path, payload):
    """Write bytes (or str) to `path` via a hidden temporary file in the same folder + rename."""
    path = pathlib.Path(path)
    if isinstance(payload, str):
        payload = payload.encode()
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, 'wb') as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        pathlib.Path(temp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder):
    """Delete temporary files a killed run left behind (hidden, ending in .tmp)."""
    for temp in pathlib.Path(folder).glob(f'.*{TEMP_SUFFIX}'):
        temp.unlink(missing_ok=True)


def sha256_file(path):
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(CHUNK), b''):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def new_folder(path):
    """`path` made (with its parents) for the block; if the block fails, the folders it made
    are removed again while empty, so a failed run leaves no empty output folder behind."""
    path = pathlib.Path(path)
    made = [p for p in (path, *path.parents) if not p.exists()]  # deepest first
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        for folder in made:
            try:
                folder.rmdir()
            except OSError:  # not empty: keep it and what is above it
                break
        raise


class FolderBusy(OSError):
    """Another process holds a folder's lock; the message names the folder."""


@contextlib.contextmanager
def folder_lock(folder, name):
    """Hold the lock file `folder`/.`name`.lock for the block; FolderBusy at once if another
    process holds it. It is an flock: the kernel releases it when its holder exits or dies, so
    a crashed run never leaves the folder locked. The holder deletes the file when done."""
    path = _lock_path(folder, name)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            _lock(fd, folder)
        except FolderBusy:
            os.close(fd)
            raise
        if _same_file(fd, path):
            break
        os.close(fd)  # locked a file its holder deleted on release: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'{_program()} (pid {os.getpid()})\n'.encode(), 0)
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def check_unlocked(folder, name):
    """FolderBusy if another process holds `folder_lock(folder, name)` now; creates nothing
    (for a check before long work, such as loading models, that precedes taking the lock)."""
    try:
        fd = os.open(_lock_path(folder, name), os.O_RDWR)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        _lock(fd, folder)
    finally:
        os.close(fd)  # releases the probe's lock


def _lock_path(folder, name):
    return pathlib.Path(folder) / f'.{name}.lock'


def _lock(fd, folder):
    """flock `fd` exclusively, or raise FolderBusy naming the holder written in the file."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 100, 0).decode(errors='replace').strip() or 'another process'
        raise FolderBusy(f'{folder}: {holder} is writing into this folder; wait for it to '
                         'finish, or choose another output folder') from None


def _same_file(fd, path):
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _program():
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else 'python'
