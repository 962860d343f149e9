"""An experiment plan run in one process, and with its attacks sharded over two "GPU" slots,
writes the bytes of one process per step (svrens_tf/executor.py)."""
import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile

import pytest

from conftest import NIPS17_PAIR as IDS
from svrens_tf import executor, experiments
from svrens_tf.models.zoo import ZOO

TIMINGS = {'started', 'finished', 'seconds', 'model_load_s', 'classifier_seconds'}


@pytest.fixture(scope='module')
def inputs(nips17_pair, synthetic_checkpoint, tmp_path_factory):
    """(NIPS17 folder of two images, checkpoint folder holding an installed inc_v3)."""
    checkpoints = tmp_path_factory.mktemp('executor') / 'checkpoints'
    checkpoints.mkdir()
    prefix = synthetic_checkpoint('inception_v3')
    with tarfile.open(checkpoints / ZOO['inc_v3'].archive, 'w') as tar:
        for part in sorted(prefix.parent.glob(prefix.name + '.*')):
            tar.add(part, arcname=part.name)
    from svrens_tf.downloads import checkpoints as installer
    installer.install('inc_v3', str(checkpoints), progress=False)
    return nips17_pair, checkpoints


def plan(nips, checkpoints, results):
    """Attack two images one per batch with inc_v3 (svre, T = 1, M = 1), evaluate, report."""
    nips, checkpoints, attack = str(nips), str(checkpoints), str(results / 'attacks' / 'svre')
    return [
        experiments.Step('attack', (
            ('input_dir', nips), ('output_dir', attack), ('checkpoint_dir', checkpoints),
            ('models', 'inc_v3'), ('num_iter', 1), ('m_svrg', 1), ('batch_size', 1),
            ('base', 'mi_fgsm'), ('ensemble', 'svre'), ('seed', 1000))),
        experiments.Step('evaluate', (
            ('clean_dir', nips), ('input_dir', attack), ('checkpoint_dir', checkpoints),
            ('batch_size', 2), ('output_dir', str(results / 'table2' / 'seed1000')),
            ('models', 'inc_v3'))),
        experiments.Step('report', (('results_dir', str(results)),)),
    ]


# executor.main's run, with a loader that reports what it loads
COUNTING_DRIVER = """
import json, sys
from svrens_tf import executor, experiments, pipeline
loads = []
def load(name, checkpoint_dir):
    loads.append(name)
    return pipeline.load_model(name, checkpoint_dir)
code = experiments.execute(executor.load_plan(sys.argv[1]), sys.argv[2],
                           run_step=executor.InProcess(pipeline.ModelCache(load)))
print('loads: ' + json.dumps(loads))
sys.exit(code)
"""


def in_one_process(steps, log, count_loads=False):
    """(exit status, stdout) of the plan run in one fresh process: `python -m
    svrens_tf.executor`, or the same with a loader that prints the models it loads."""
    saved = log.with_suffix('.json')
    executor.save_plan(steps, saved)
    program = ['-c', COUNTING_DRIVER] if count_loads else ['-m', 'svrens_tf.executor']
    done = subprocess.run([sys.executable, *program, str(saved), str(log)], text=True,
                          stdout=subprocess.PIPE, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
    return done.returncode, done.stdout


def contents(results):
    """{relative path: bytes} of every output, and {relative path: record without timings}."""
    files, records = {}, {}
    for path in sorted(results.rglob('*')):
        name = str(path.relative_to(results))
        if path.suffix == '.log' or not path.is_file():
            continue
        if path.name.startswith(('attack_run', 'eval_run')):
            record = json.loads(path.read_text())
            for invocation in record['invocations']:
                for key in TIMINGS:
                    invocation.pop(key, None)
            records[name] = record
        else:
            files[name] = path.read_bytes()
    return files, records


@pytest.fixture(scope='module')
def runs(inputs, tmp_path_factory):
    """{'subprocesses' | 'in_process' | 'sharded': (contents(), log, stdout)} of the same plan
    run three ways into the same results folder (moved away after each), so that the paths
    inside the files agree."""
    nips, checkpoints = inputs
    root = tmp_path_factory.mktemp('runs')
    results = root / 'results'
    steps = plan(nips, checkpoints, results)
    done = {}
    for way in ('subprocesses', 'in_process', 'sharded'):
        log, stdout = root / f'{way}.log', ''
        if way == 'subprocesses':
            code = experiments.execute(steps, log)
        elif way == 'in_process':
            code, stdout = in_one_process(steps, log, count_loads=True)
        else:  # the attack only: evaluation and report read the images, compared here
            messages = []
            assert executor.run_shards(steps[:1], ['0', '1'], log, messages.append) == 0
            shard_records = sorted(p.name for p in (results / 'attacks' / 'svre').glob('*.json'))
            assert shard_records == ['attack_run.shard0of2.json', 'attack_run.shard1of2.json']
            code, stdout = in_one_process(steps[:1], log)  # the merge: a rerun, unsharded
            stdout = '\n'.join(messages) + stdout
        assert code == 0, way
        done[way] = contents(results), log.read_text(), stdout
        shutil.move(results, root / way)
    return done


def test_in_process_plan_writes_the_bytes_and_records_of_one_process_per_step(runs):
    (files, records), log, stdout = runs['in_process']
    (expected_files, expected_records), _, _ = runs['subprocesses']
    assert sorted(f'attacks/svre/{i}.png' for i in IDS) == sorted(
        name for name in files if name.startswith('attacks/'))
    assert 'report.md' in files and 'table2/seed1000/evaluation.json' in files
    assert files == expected_files
    assert records == expected_records  # same settings, flags, argv, counts
    assert log.count('+ (in process) ') == 3
    assert 'loads: ["inc_v3"]' in stdout  # the evaluation reused the attack's model


def test_two_gpu_shards_write_the_bytes_of_one_run(runs):
    (files, records), _, messages = runs['sharded']
    (expected_files, _), _, _ = runs['subprocesses']
    assert files == {n: b for n, b in expected_files.items() if n.startswith('attacks/')}
    shards = [records[f'attacks/svre/attack_run.shard{i}of2.json'] for i in range(2)]
    assert [s['invocations'][0]['attacked'] for s in shards] == [1, 1]
    merge = records['attacks/svre/attack_run.json']['invocations'][0]
    assert (merge['attacked'], merge['skipped']) == (0, 2)   # the rerun found every image done
    assert 'shard 1/2 on GPU 1: CUDA_VISIBLE_DEVICES=1' in messages


def test_plan_round_trips_and_shards_refuse_user_shard_flags(tmp_path):
    steps = plan(pathlib.Path('nips'), pathlib.Path('ckpt'), pathlib.Path('results'))
    executor.save_plan(steps, tmp_path / 'plan.json')
    loaded = executor.load_plan(tmp_path / 'plan.json')
    assert [s.args for s in loaded] == [s.args for s in steps]
    [shard] = executor.shard_steps(steps, 1, 3)
    assert shard.args[-2:] == ['--num_shards=3', '--shard_index=1']
    with pytest.raises(ValueError, match='drop --num_shards'):
        executor.shard_steps([shard], 0, 2)
    assert executor.determinism(steps) is None  # the process-wide setting follows the plan
    assert executor.determinism([dataclasses.replace(
        steps[0], flags=steps[0].flags + (('deterministic', None),))]) is True
    assert executor.parse_shard('2/4') == (2, 4)
    for bad in ('4/4', '1', 'a/2', '-1/2'):
        with pytest.raises(ValueError, match='I/N'):
            executor.parse_shard(bad)
