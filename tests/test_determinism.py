"""The runtime settings the bytes of a run depend on (svrens_tf/runtime.py)."""
import json
import os
import subprocess
import sys

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
