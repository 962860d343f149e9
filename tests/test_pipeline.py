"""run_attacks.sh end to end on synthetic slim checkpoints: checkpoints installed on first use,
Table 2 attacks and evaluation, report; and the messages when checkpoints or data are missing."""
import json
import os
import pathlib
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from conftest import NIPS17_PAIR as IDS
from svrens_tf import data
from svrens_tf.models.zoo import ZOO

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / 'run_attacks.sh'
TABLE2_MODELS = ['inc_v3', 'inc_v4', 'incres_v2', 'res_v2_101', 'ens3_adv_inc_v3',
                 'ens4_adv_inc_v3', 'ens_adv_incres_v2']
UNREACHABLE = 'http://127.0.0.1:9/'


def script(*args, env=None):
    return subprocess.run(['bash', str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, 'PYTHON': sys.executable, 'TF_CPP_MIN_LOG_LEVEL': '3',
                               **(env or {})}, timeout=1500)


@pytest.fixture(scope='module')
def release_tarballs(synthetic_checkpoint, tmp_path_factory):
    """A checkpoint folder holding, under each release tarball's name, a synthetic checkpoint of
    that model's architecture (uncompressed tar: the installer reads either)."""
    folder = tmp_path_factory.mktemp('checkpoints')
    for name in TABLE2_MODELS:
        entry = ZOO[name]
        prefix = synthetic_checkpoint(entry.arch)
        with tarfile.open(folder / entry.archive, 'w') as tar:
            for part in sorted(prefix.parent.glob(prefix.name + '.*')):
                tar.add(part, arcname=part.name)
    return folder


def test_table2_end_to_end(nips17_pair, release_tarballs, tmp_path):
    results = tmp_path / 'results'
    done = script('--tables', 2, '--attacks', 'mi_fgsm', '--ensembles', 'svre', '--seeds', 1,
                  '--dataset_dir', nips17_pair, '--checkpoint_dir', release_tarballs,
                  '--results_dir', results, '--eval_batch_size', 2,
                  '--', '--num_iter', 1, '--m_svrg', 1, '--batch_size', 2)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in TABLE2_MODELS:
        assert (release_tarballs / name).is_dir()

    folders = [results / 'attacks' / 'all4' / 'svre_mi_fgsm' / 'seed1000']
    for folder in folders:
        assert sorted(p.name for p in folder.glob('*.png')) == sorted(f'{i}.png' for i in IDS)
        for image_id in IDS:
            adv = data.read_image(folder / f'{image_id}.png').astype(int)
            clean = data.read_image(nips17_pair / 'images' / f'{image_id}.png').astype(int)
            assert 0 < np.abs(adv - clean).max() <= 16
        record = json.loads((folder / 'attack_run.json').read_text())
        config = record['settings']['config']
        assert (config['num_iter'], config['m_svrg'], config['seed']) == (1, 1, 1000)
        assert record['settings']['models'] == TABLE2_MODELS[:4]
        assert record['invocations'][0]['attacked'] == 2
        assert (record['flags']['num_iter'], record['flags']['batch_size']) == (1, 2)  # all flags

    evaluation = json.loads((results / 'table2' / 'seed1000' / 'evaluation.json').read_text())
    assert sorted(evaluation['folders']) == sorted(map(str, folders))
    for entry in evaluation['folders'].values():
        assert sorted(entry['results']) == sorted(TABLE2_MODELS)
        assert 0 < entry['max_perturbation'] <= 16
        for result in entry['results'].values():
            assert result['success_rate'] in (0.0, 50.0, 100.0)
            assert np.isfinite(result['avg_loss'])
    markdown = (results / 'table2' / 'seed1000' / 'evaluation.md').read_text()
    assert '| folder | max |delta| | ' + ' | '.join(TABLE2_MODELS) + ' |' in markdown
    report = (results / 'report.md').read_text()
    table2 = report.split('## Table 2')[1].split('##')[0]
    assert '| attack | ' + ' | '.join(TABLE2_MODELS) + ' |' in table2
    assert '| SVRE-MI-FGSM |' in table2 and 'Ens-MI-FGSM' not in table2
    assert (results / 'run_attacks.log').read_text().count('svrens_tf.cli.attack') == 1
    # Figure 1 comes with Table 2's runs; its PNG needs the optional matplotlib
    assert '## Figure 1' in report
    assert (results / 'figures' / 'figure1_loss.png').is_file() == ('figures/' in report)


def test_missing_dataset_says_how_to_fetch_it(tmp_path):
    done = script('--tables', 2, '--dataset_dir', tmp_path / 'nips', '--results_dir',
                  tmp_path / 'results', env={'SVRENS_DATASET_BASE_URL': UNREACHABLE})
    assert done.returncode == 1
    assert f'svrens-download --dataset {tmp_path / "nips"}' in done.stdout
    assert not list((tmp_path / 'results').glob('*/'))


def test_missing_checkpoints_say_how_to_install_them(nips17_pair, tmp_path):
    checkpoints = tmp_path / 'checkpoints'
    done = script('--tables', 1, '--dataset_dir', nips17_pair, '--checkpoint_dir', checkpoints,
                  '--results_dir', tmp_path / 'results',
                  env={'SVRENS_MODEL_BASE_URL': UNREACHABLE})
    assert done.returncode == 1
    assert f'could not install checkpoints inc_v3,inc_v4,incres_v2,res_v2_101 into ' \
           f'{checkpoints}' in done.stdout
    assert 'inception_v3_2016_08_28.tar.gz' in done.stderr
