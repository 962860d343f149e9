"""Files a run writes or checks: atomic writes (a killed run never leaves a half-written file at
its final path), the clean-up of their leftovers, and the sha256 of a file."""
import hashlib
import os
import pathlib
import tempfile

TEMP_SUFFIX = '.tmp'
CHUNK = 1 << 20


def write_atomic(path, payload):
    """Write bytes (or str) to `path` via a hidden temporary file in the same folder + rename."""
    path = pathlib.Path(path)
    if isinstance(payload, str):
        payload = payload.encode()
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix=TEMP_SUFFIX)
    try:
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
