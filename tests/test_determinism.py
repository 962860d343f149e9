"""Byte-equal attacks across fresh processes on a full-size model (svrens_tf/runtime.py):
Inception-v3 at 299 with the seed-1234 synthetic checkpoint, 2 NIPS17 images, MI-FGSM svre,
T = 2, M = 2, one image per batch. A second process, a run killed after its first batch and
resumed, and two shards all write the PNG bytes of one straight run; the run record keeps the
runtime settings and a resume under other ones is refused."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import NIPS17_PAIR as IDS
from svrens_tf import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3',
       'PYTHONPATH': os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')]))}


def test_differences_name_each_changed_setting():
    before = {'intra_op_threads': 2, 'onednn': True, 'device': 'cpu'}
    assert runtime.differences(before, dict(before)) == []
    assert runtime.differences(before, {**before, 'onednn': False, 'intra_op_threads': 1}) == [
        'intra_op_threads: 2 before, 1 now', 'onednn: True before, False now']
    assert runtime.differences({}, {'device': 'gpu'}) == ["device: None before, 'gpu' now"]


def test_configure_reports_the_settings_it_applied():
    """In a fresh process (the settings hold for the whole process): oneDNN off as asked,
    one inter-op thread on CPU (op determinism only on GPU), the intra-op threads TF uses."""
    code = 'import json; from svrens_tf import runtime; print(json.dumps(runtime.configure()))'
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT,
                          env={**ENV, 'TF_ENABLE_ONEDNN_OPTS': '0', 'TF_NUM_INTRAOP_THREADS': '3',
                               'CUDA_VISIBLE_DEVICES': ''}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {
        'device': 'cpu', 'gpus': [], 'intra_op_threads': 3, 'inter_op_threads': 1,
        'onednn': False, 'op_determinism': False}


@pytest.fixture(scope='module')
def attack_command(nips17_pair, synthetic_checkpoint):
    """argv of the attack into a folder: inc_v3 from the folder holding its checkpoint."""
    checkpoint_dir = synthetic_checkpoint('inception_v3').parent

    def command(output_dir, *extra):
        return [sys.executable, '-m', 'svrens_tf.cli.attack', f'--input_dir={nips17_pair}',
                f'--output_dir={output_dir}', '--models=inc_v3',
                f'--checkpoint_dir={checkpoint_dir}', '--base=mi_fgsm', '--ensemble=svre',
                '--num_iter=2', '--m_svrg=2', '--batch_size=1', *extra]
    return command


def attack(command, env=None):
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                          env={**ENV, **(env or {})}, timeout=600)


def pngs(folder):
    return {i: (folder / f'{i}.png').read_bytes() for i in IDS}


@pytest.fixture(scope='module')
def straight(attack_command, tmp_path_factory):
    """One straight run: its folder."""
    folder = tmp_path_factory.mktemp('straight')
    done = attack(attack_command(folder))
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def test_the_record_keeps_the_runtime_settings(straight):
    record = json.loads((straight / 'attack_run.json').read_text())
    runtime = record['runtime']
    assert runtime['device'] == 'cpu'
    assert runtime['inter_op_threads'] == 1 and runtime['op_determinism'] is False
    assert runtime['intra_op_threads'] == len(os.sched_getaffinity(0))
    assert isinstance(runtime['onednn'], bool)


def test_a_fresh_process_writes_the_same_bytes(straight, attack_command, tmp_path):
    done = attack(attack_command(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert pngs(tmp_path) == pngs(straight)


def test_a_resumed_run_writes_the_bytes_of_a_straight_run(straight, attack_command, tmp_path):
    process = subprocess.Popen(attack_command(tmp_path), cwd=ROOT, env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = tmp_path / f'{IDS[0]}.png'
    try:
        while process.poll() is None and not first.is_file():
            time.sleep(0.02)
    finally:
        process.kill()
        process.wait()
    assert first.is_file() and not (tmp_path / f'{IDS[1]}.png').exists(), \
        'the run was not stopped between its two batches'
    done = attack(attack_command(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = json.loads((tmp_path / 'attack_run.json').read_text())['invocations'][-1]
    assert (resumed['skipped'], resumed['attacked']) == (1, 1)
    assert pngs(tmp_path) == pngs(straight)


def test_two_shards_write_the_bytes_of_one_run(straight, attack_command, tmp_path):
    for index in range(2):
        done = attack(attack_command(tmp_path, '--num_shards=2', f'--shard_index={index}'))
        assert done.returncode == 0, done.stderr[-3000:]
    assert pngs(tmp_path) == pngs(straight)


def test_a_resume_under_other_thread_counts_is_refused(straight, attack_command):
    before = (straight / 'attack_run.json').read_text()
    threads = len(os.sched_getaffinity(0)) + 1
    done = attack(attack_command(straight), env={'TF_NUM_INTRAOP_THREADS': str(threads)})
    assert done.returncode == 1
    assert f'intra_op_threads: {threads - 1} before, {threads} now' in done.stderr
    assert (straight / 'attack_run.json').read_text() == before
