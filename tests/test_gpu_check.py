"""benchmarks/gpu_check.sh at its CPU smoke sizes (no GPU here): the conformance, attack and
memory sections run and the record says what they did. Its run_attacks section runs
`run_attacks.sh --tables 2 --attacks mi_fgsm --ensembles svre -- --num_iter 1 --m_svrg 1
--batch_size 2` on two images, which tests/test_pipeline.py::test_table2_end_to_end runs."""
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_cpu_smoke_run_writes_a_record_of_passing_steps(shared_dir, tmp_path):
    done = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu_check.sh'), '--sizes=smoke',
                           '--sections=conformance,attack,memory', f'--results_dir={tmp_path}',
                           f'--work_dir={tmp_path / "work"}'],
                          capture_output=True, text=True, timeout=1800,
                          env={**os.environ, 'PYTHON': sys.executable})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [record_path] = tmp_path.glob('gpu_check_cpu_smoke_*.json')
    record = json.loads(record_path.read_text())
    assert record['sizes'] == 'smoke'
    entries = record['entries']
    assert all(e['exit'] == 0 for e in entries)
    assert [e['section'] for e in entries] == ['conformance', 'attack', 'attack', 'memory']
    assert 'passed' in entries[0]['stdout_tail']
    bench = entries[1]['rows']
    assert [r['strategy'] for r in bench] == ['ens', 'svre/recompute', 'svre/cache']
    assert [r['passes'] for r in bench] == [1, 3, 3]  # K = 1, M = 1: K; K + 2M; 2K + M
    assert all(r['warm_s'] > 0 and r['peak_rss_mib'] > 0 for r in bench)
    assert entries[2]['skipped'] == 'no GPU'
    [si_ti_dim] = entries[3]['rows']
    assert si_ti_dim['strategy'] == 'svre/recompute' and si_ti_dim['passes'] == 3
    markdown = record_path.with_suffix('.md').read_text()
    assert markdown.startswith('# GPU check: CPU') and '| attack | attack_speed | 0 |' in markdown


def test_missing_reference_data_stops_before_any_step_naming_the_folder(tmp_path):
    # On a machine that gets only the checkout, the conformance tests would skip and pass.
    absent = tmp_path / 'absent'
    done = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu_check.sh'), '--sizes=smoke',
                           f'--results_dir={tmp_path}'], capture_output=True, text=True,
                          timeout=300, env={**os.environ, 'PYTHON': sys.executable,
                                            'SVRENS_SHARED_DIR': str(absent)})
    assert done.returncode != 0
    assert str(absent / 'slim_reference') in done.stderr
    assert str(absent / 'nips17') in done.stderr and 'SVRENS_SHARED_DIR' in done.stderr
    assert not list(tmp_path.glob('gpu_check_*'))
