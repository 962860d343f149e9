"""svrens-download against a local HTTP server: install, resume, corrupt input, tamper, offline,
and the NIPS17 DEV set."""
import hashlib
import http.server
import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading

import numpy as np
import pytest

from svrens_tf import models
from svrens_tf.downloads import checkpoints, fetch, nips17
from svrens_tf.models import manifest, zoo
from svrens_tf.models.checkpoint import CheckpointError
from test_checkpoint_loading import Tiny, tiny_arrays, write_v1

ARCHIVE = 'tiny_2017_01_01.tar.gz'


class FileServer:
    """HTTP server on 127.0.0.1 over an in-memory {path: bytes}, honouring `Range: bytes=N-`.

    `cuts[path] = n` makes the next n GETs of `path` announce the full length, send half of it
    and close the connection (an interrupted transfer). `requests` records (path, Range header).
    """

    def __init__(self):
        self.files, self.cuts, self.requests = {}, {}, []
        self.honour_range = True
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get('Range')))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                match = re.match(r'bytes=(\d+)-$', self.headers.get('Range') or '')
                if match and server.honour_range:
                    start = int(match.group(1))
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header('Content-Range', f'bytes {start}-{len(body) - 1}/{len(body)}')
                else:
                    self.send_response(200)
                self.send_header('Content-Length', str(len(body) - start))
                self.end_headers()
                if server.cuts.get(self.path, 0) > 0:
                    server.cuts[self.path] -= 1
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    return  # HTTP/1.0: the connection closes mid-body
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}/'
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = FileServer()
    yield srv
    srv.close()


@pytest.fixture
def tiny_zoo(monkeypatch):
    """Zoo entry 'tiny_zoo' (architecture Tiny) whose tarball is ARCHIVE."""
    monkeypatch.setitem(models.ARCHITECTURES, 'tiny', Tiny)
    monkeypatch.setitem(zoo.ZOO, 'tiny_zoo',
                        zoo.ZooEntry('tiny_zoo', 'tiny', ARCHIVE))
    return tiny_arrays()


def tarball(members):
    """gzip tarball bytes holding {member name: bytes}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def checkpoint_tarball(arrays, tmp_path):
    """The release layout: one V1 checkpoint file in a folder, as bytes of a .tar.gz."""
    path = write_v1(arrays, tmp_path / 'src' / 'tiny.ckpt')
    return tarball({'tiny_2017/tiny.ckpt': path.read_bytes(), 'tiny_2017/README': b'tiny\n'})


def assert_nothing_installed(checkpoint_dir):
    assert not (checkpoint_dir / 'tiny_zoo').exists()
    assert not [p for p in os.listdir(checkpoint_dir) if 'staging' in p or p == ARCHIVE]


def test_install_fetches_verifies_records_and_loads(tiny_zoo, server, tmp_path, monkeypatch):
    server.files['/' + ARCHIVE] = checkpoint_tarball(tiny_zoo, tmp_path)
    checkpoint_dir = tmp_path / 'checkpoints'
    path = checkpoints.install('tiny_zoo', checkpoint_dir, base_url=server.url, progress=False)
    assert path == str(checkpoint_dir / 'tiny_zoo' / 'tiny_2017' / 'tiny.ckpt')
    assert os.listdir(checkpoint_dir) == ['tiny_zoo']  # tarball and staging folder gone
    manifest = json.loads((checkpoint_dir / 'tiny_zoo' / 'manifest.json').read_text())
    assert set(manifest['files']) == {'tiny_2017/tiny.ckpt', 'tiny_2017/README'}
    for rel, record in manifest['files'].items():
        data = (checkpoint_dir / 'tiny_zoo' / rel).read_bytes()
        assert record == {'bytes': len(data), 'sha256': hashlib.sha256(data).hexdigest()}

    assert checkpoints.install('tiny_zoo', checkpoint_dir, base_url=server.url) == path
    assert len(server.requests) == 1  # a verified installation is kept

    monkeypatch.setenv('SVRENS_CHECKPOINT_DIR', str(checkpoint_dir))
    for model in (models.load('tiny_zoo'), models.load('tiny_zoo', checkpoint_dir)):
        np.testing.assert_array_equal(model.variables_by_name['Tiny/Logits/weights'].numpy(),
                                      tiny_zoo['Tiny/Logits/weights'])


@pytest.mark.parametrize('honour_range', [True, False])
def test_transfer_cut_mid_file_is_resumed_in_the_same_call(tiny_zoo, server, tmp_path,
                                                           honour_range):
    body = checkpoint_tarball(tiny_zoo, tmp_path)
    server.files['/' + ARCHIVE] = body
    server.cuts['/' + ARCHIVE] = 2
    server.honour_range = honour_range
    path = checkpoints.install('tiny_zoo', tmp_path / 'ck', base_url=server.url, progress=True)
    assert os.path.isfile(path)
    ranges = [r for _, r in server.requests]
    assert len(ranges) == 3 and ranges[0] is None
    if honour_range:
        half = len(body) // 2
        assert ranges[1:] == [f'bytes={half}-', f'bytes={half + (len(body) - half) // 2}-']


def test_interrupted_run_leaves_only_a_part_file_and_the_next_run_resumes(
        tiny_zoo, server, tmp_path, monkeypatch):
    body = checkpoint_tarball(tiny_zoo, tmp_path)
    server.files['/' + ARCHIVE] = body
    server.cuts['/' + ARCHIVE] = 1
    checkpoint_dir = tmp_path / 'ck'
    monkeypatch.setattr(fetch, 'RETRIES', 0)
    with pytest.raises(fetch.FetchError, match='connection closed after'):
        checkpoints.install('tiny_zoo', checkpoint_dir, base_url=server.url, progress=False)
    assert os.listdir(checkpoint_dir) == [ARCHIVE + '.part']
    with pytest.raises(CheckpointError, match='no verified checkpoint of tiny_zoo'):
        manifest.installed_checkpoint('tiny_zoo', checkpoint_dir)

    checkpoints.install('tiny_zoo', checkpoint_dir, base_url=server.url, progress=False)
    assert server.requests[-1] == ('/' + ARCHIVE, f'bytes={len(body) // 2}-')
    path, digests = manifest.installed_checkpoint('tiny_zoo', checkpoint_dir)
    folder = checkpoint_dir / 'tiny_zoo' / 'tiny_2017'
    assert os.path.isfile(path) and digests == {  # every listed file, as hashed by the check
        os.path.abspath(folder / name): hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ('tiny.ckpt', 'README')}


@pytest.mark.parametrize('problem', ['not_gzip', 'truncated_gzip', 'no_checkpoint',
                                     'escaping_member', 'wrong_shapes'])
def test_bad_archive_is_rejected_and_nothing_is_installed(tiny_zoo, server, tmp_path, problem):
    good = checkpoint_tarball(tiny_zoo, tmp_path)
    if problem == 'not_gzip':
        body, expected = b'<html>mirror error page</html>', 'corrupt or truncated archive'
    elif problem == 'truncated_gzip':
        body, expected = good[:len(good) // 2], 'corrupt or truncated archive'
    elif problem == 'no_checkpoint':
        body, expected = tarball({'README': b'x'}), 'expected one checkpoint inside, found 0'
    elif problem == 'escaping_member':
        body = tarball({'tiny.ckpt': b'x', '../evil.txt': b'x'})
        expected = 'member ../evil.txt would land outside the folder'
    else:
        arrays = dict(tiny_zoo, **{'Tiny/Logits/biases': np.zeros([10], np.float32)})
        body = checkpoint_tarball(arrays, tmp_path / 'wrong')
        expected = r'shape mismatch for Tiny/Logits/biases: model expects \(1001,\)'
    server.files['/' + ARCHIVE] = body
    checkpoint_dir = tmp_path / 'ck'
    with pytest.raises(CheckpointError, match=expected):
        checkpoints.install('tiny_zoo', checkpoint_dir, base_url=server.url, progress=False)
    assert_nothing_installed(checkpoint_dir)
    assert not (tmp_path / 'evil.txt').exists()


def test_changed_or_truncated_file_is_noticed_and_reinstalled(tiny_zoo, server, tmp_path):
    server.files['/' + ARCHIVE] = checkpoint_tarball(tiny_zoo, tmp_path)
    checkpoint_dir = tmp_path / 'ck'
    path = checkpoints.install('tiny_zoo', checkpoint_dir, base_url=server.url, progress=False)
    original = open(path, 'rb').read()

    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0xFF
    open(path, 'wb').write(bytes(changed))
    for name, where in [('tiny_zoo', checkpoint_dir), ('tiny', checkpoint_dir / 'tiny_zoo')]:
        with pytest.raises(CheckpointError, match='tiny.ckpt: content changed since it was '
                                                  'verified; run: svrens-download --models '
                                                  f'tiny_zoo --checkpoint_dir {checkpoint_dir}'):
            models.load(name, where)

    open(path, 'wb').write(original[:-10])
    with pytest.raises(CheckpointError, match=f'{len(original) - 10} bytes, {len(original)} when'):
        manifest.installed_checkpoint('tiny_zoo', checkpoint_dir)

    checkpoints.install('tiny_zoo', checkpoint_dir, base_url=server.url, progress=False)
    assert len(server.requests) == 2
    assert open(path, 'rb').read() == original


def test_hand_placed_tarball_is_used_without_network(tiny_zoo, tmp_path):
    checkpoint_dir = tmp_path / 'ck'
    checkpoint_dir.mkdir()
    (checkpoint_dir / ARCHIVE).write_bytes(checkpoint_tarball(tiny_zoo, tmp_path))
    path = checkpoints.install('tiny_zoo', checkpoint_dir, base_url='http://127.0.0.1:9/',
                            progress=False)
    assert path == manifest.installed_checkpoint('tiny_zoo', checkpoint_dir)[0]


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    return f'http://127.0.0.1:{port}/'


def test_offline_gives_one_line_with_url_reason_and_manual_step(tmp_path):
    base = closed_port_url()
    result = subprocess.run(
        [sys.executable, '-m', 'svrens_tf.cli.download', '--models', 'inc_v3',
         '--checkpoint_dir', str(tmp_path), '--base_url', base],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if 'svrens-download' in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f'svrens-download: cannot download '
                               f'{base}inception_v3_2016_08_28.tar.gz: ')
    assert 'refused' in lines[0]
    assert f'copy inception_v3_2016_08_28.tar.gz into {tmp_path} and rerun' in lines[0]
    assert os.listdir(tmp_path) == []


def test_missing_url_is_a_clear_http_error(tmp_path, server):
    with pytest.raises(fetch.FetchError, match=rf'cannot download {server.url}nope: HTTP 404'):
        fetch.fetch(server.url + 'nope', tmp_path / 'nope')
    assert os.listdir(tmp_path) == []


def test_file_url_and_checksum(tmp_path):
    source = tmp_path / 'source.bin'
    source.write_bytes(b'abc')
    url = source.as_uri()
    digest = hashlib.sha256(b'abc').hexdigest()
    assert open(fetch.fetch(url, tmp_path / 'copy', expected_sha256=digest), 'rb').read() == b'abc'
    with pytest.raises(fetch.FetchError, match='differs from the expected'):
        fetch.fetch(url, tmp_path / 'bad', expected_sha256='0' * 64)
    assert sorted(os.listdir(tmp_path)) == ['copy', 'source.bin']


@pytest.fixture
def dev_set(tmp_path, monkeypatch, server):
    """Three fake DEV images and their csv on the server; the checksum list points at them."""
    images = {f'{i:016x}.png': f'png {i}'.encode() for i in range(3)}
    sums = tmp_path / 'sums.txt'
    sums.write_text(''.join(f'{hashlib.sha256(d).hexdigest()}  {n}\n' for n, d in images.items()))
    monkeypatch.setattr(nips17, 'SHA256SUMS', sums)
    for name, data in images.items():
        server.files['/dataset/images/' + name] = data
    server.files['/dataset/dev_dataset.csv'] = (
        'ImageId,URL,TrueLabel,TargetClass\n'
        + ''.join(f'{n[:-4]},x,{i + 1},{i + 2}\n' for i, n in enumerate(images))).encode()
    return images, server.url + 'dataset/'


def test_dataset_download_verifies_and_resumes(dev_set, server, tmp_path):
    images, base = dev_set
    out = tmp_path / 'nips17'
    assert nips17.download_dataset(out, base, progress=False) == 4
    assert sorted(os.listdir(out)) == sorted([*images, 'dev_dataset.csv'])
    for name, data in images.items():
        assert (out / name).read_bytes() == data
    count = len(server.requests)
    (out / next(iter(images))).unlink()
    assert nips17.download_dataset(out, base, progress=True) == 1
    assert len(server.requests) == count + 1


def test_dataset_image_with_wrong_checksum_is_rejected(dev_set, server, tmp_path):
    images, base = dev_set
    bad = sorted(images)[1]
    server.files['/dataset/images/' + bad] = b'tampered'
    out = tmp_path / 'nips17'
    with pytest.raises(fetch.FetchError, match=rf'1 of 3 images not fetched, first: .*{bad}: '
                                               'sha256 .* differs'):
        nips17.download_dataset(out, base, progress=False)
    assert sorted(os.listdir(out)) == sorted({*images, 'dev_dataset.csv'} - {bad})


def test_dataset_csv_not_listing_the_images_is_rejected(dev_set, server, tmp_path):
    _, base = dev_set
    server.files['/dataset/dev_dataset.csv'] = b'ImageId,TrueLabel\nffffffffffffffff,3\n'
    out = tmp_path / 'nips17'
    with pytest.raises(fetch.FetchError, match='dev_dataset.csv: rejected, .* lists 1 images, '
                                               '0 of the 3'):
        nips17.download_dataset(out, base, progress=False)
    assert not [n for n in os.listdir(out) if 'csv' in n]


def test_packaged_checksums_are_the_reference_list(shared_dir):
    packaged = nips17.image_checksums()
    assert packaged == nips17.image_checksums(shared_dir / 'nips17' / 'SHA256SUMS')
    assert len(packaged) == 1000


def test_unreachable_dataset_source_gives_up_early_and_says_the_three_ways(
        tmp_path, server, capsys):
    out = tmp_path / 'nips17'  # the packaged list: 1000 images, none on the server
    with pytest.raises(fetch.FetchError) as err:
        nips17.download_dataset(out, server.url + 'dataset/', progress=True)
    message = str(err.value)
    assert message.startswith(f'gave up after the first {nips17.GIVE_UP_AFTER} images failed, '
                              f'e.g. cannot download {server.url}dataset/images/')
    for way in (f'svrens-download --dataset {out} (online)',
                f'svrens-download --dataset {out} --dataset_url file:///path/to/copy/',
                '--dataset_dir (run_attacks.sh) / --input_dir of an existing copy'):
        assert way in message
    assert len(server.requests) < nips17.GIVE_UP_AFTER + 2 * nips17.WORKERS
    assert '/1000' not in capsys.readouterr().out  # no progress that looks like success
    assert list(out.iterdir()) == []
