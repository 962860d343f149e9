"""Robust download of one URL (http, https or file) to one file.

The bytes go to `<dest>.part` and are renamed to `dest` only once the whole body arrived (and,
when a checksum is given, matched it), so an interrupted run never leaves a file that looks
finished. A later call resumes the `.part` with an HTTP Range request where the server allows
it and restarts it where not; a transfer cut mid-body is retried a few times in the same call.
"""
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request

from svrens_tf import files

MIB = 1 << 20
CHUNK = MIB
TIMEOUT_S = 60
RETRIES = 3


class FetchError(OSError):
    """A download that could not be completed; the message is one line naming the URL."""


class _Interrupted(Exception):
    """The transfer started but stopped early: worth resuming."""


def fetch(url, dest, expected_sha256=None, progress=False):
    """Download `url` to `dest` atomically; returns `dest`.

    `expected_sha256`: reject (and delete) a body with another checksum.
    `progress`: show a progress bar on stdout (files of 1 MiB and more).
    Raises FetchError with one line: the URL and what failed.
    """
    dest = os.fspath(dest)
    part = dest + '.part'
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    for attempt in range(RETRIES + 1):
        try:
            _transfer(url, part, progress)
            break
        except _Interrupted as err:
            if attempt == RETRIES:
                raise FetchError(f'cannot download {url}: {err} (after {RETRIES + 1} attempts; '
                                 f'rerun to resume from {part})') from None
            time.sleep(0.5 * (attempt + 1))
    if expected_sha256 is not None:
        found = files.sha256_file(part)
        if found != expected_sha256:
            os.remove(part)
            raise FetchError(f'cannot download {url}: sha256 {found} differs from the '
                             f'expected {expected_sha256}')
    os.replace(part, dest)
    return dest


def _transfer(url, part, progress):
    """Append the rest of `url` to `part` (or restart it); raises _Interrupted or FetchError."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={'User-Agent': 'svrens_tf'})
    if have and url.startswith(('http:', 'https:')):
        request.add_header('Range', f'bytes={have}-')
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the .part is already as long as (or longer than) the file
            os.remove(part)
            raise _Interrupted('stale partial file discarded') from None
        if err.code >= 500:
            raise _Interrupted(f'HTTP {err.code} {err.reason}') from None
        raise FetchError(f'cannot download {url}: HTTP {err.code} {err.reason}') from None
    except urllib.error.URLError as err:
        raise FetchError(f'cannot download {url}: {_reason(err.reason)}') from None
    except (OSError, http.client.HTTPException) as err:
        raise FetchError(f'cannot download {url}: {_reason(err)}') from None
    with response:
        if response.status == 206:
            start, total = _content_range(response)
            if start != have:
                os.remove(part)
                raise _Interrupted('server resumed at the wrong offset; restarting')
        else:  # the server sent the whole body: start over
            have = 0
            length = response.headers.get('Content-Length')
            total = int(length) if length and length.isdigit() else None
        show = progress and total is not None and total >= MIB
        bar = progress_bar(total // MIB, 'MiB', done=have // MIB) if show else None
        try:
            with open(part, 'ab' if have else 'wb') as out:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    have += len(block)
                    if bar is not None and have // MIB != (have - len(block)) // MIB:
                        bar.update(have // MIB)
        except (OSError, http.client.HTTPException) as err:
            raise _Interrupted(_reason(err)) from None
    if total is not None and have != total:
        raise _Interrupted(f'connection closed after {have} of {total} bytes')


def _content_range(response):
    """(first byte, full size) of a 206 response; (None, None) if the header is unreadable."""
    match = re.match(r'bytes (\d+)-\d+/(\d+)', response.headers.get('Content-Range', ''))
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)


def _reason(err):
    if isinstance(err, socket.timeout):
        return f'no data for {TIMEOUT_S} s'
    text = str(err) or type(err).__name__
    return text.splitlines()[0]


def progress_bar(total, unit, done=0):
    """A Keras Progbar counting `unit`s: live on a terminal, one summary line otherwise."""
    from tensorflow import keras
    bar = keras.utils.Progbar(total, verbose=1 if sys.stdout.isatty() else 2,
                              unit_name=unit, interval=0.5)
    bar.update(done)
    return bar
