"""CIFAR-10 proxy benchmark: data pipeline, trained zoo, and the transfer command's quick mode."""
import io
import json
import os
import pathlib
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from benchmarks.cifar10 import data, equal_passes, models, transfer
from svrens_tf import attacks

ROOT = pathlib.Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / 'benchmarks' / 'cifar10' / 'weights'


def test_augment_crops_a_window_of_the_padded_image_and_sometimes_flips():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 256, (64, 8, 8, 1), dtype=np.uint8)
    out = data.augment(x, rng, pad=2)
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    seen = set()
    for i in range(len(x)):
        matches = [(dy, dx, flip) for dy in range(5) for dx in range(5) for flip in (0, 1)
                   if np.array_equal(out[i], padded[i, dy:dy + 8, dx:dx + 8][:, ::-1 if flip else 1])]
        assert matches, f'image {i} is not a (flipped) window of its padded original'
        seen.update(matches)
    assert {m[2] for m in seen} == {0, 1}
    assert len({m[:2] for m in seen}) > 10


def test_to_model_range_maps_pixels_to_minus_one_one():
    x = np.array([0, 255, 127], np.uint8)
    np.testing.assert_allclose(data.to_model_range(x), [-1.0, 1.0, 127 / 127.5 - 1.0])


def test_every_zoo_model_maps_a_batch_to_ten_logits():
    x = np.zeros((2, 32, 32, 3), np.float32)
    for name in models.BUILDERS:
        assert tuple(models.build(name)(x).shape) == (2, models.NUM_CLASSES), name


def test_experiments_hold_out_each_pool_model_then_attack_all():
    plan = transfer.experiments(['a', 'b', 'c'], ['z'])
    assert plan[:3] == [('hold-out a', ['b', 'c'], ['a']), ('hold-out b', ['a', 'c'], ['b']),
                        ('hold-out c', ['a', 'b'], ['c'])]
    assert plan[3] == ('ensemble', ['a', 'b', 'c'], ['a', 'b', 'c', 'z'])


@pytest.mark.parametrize('preset', ['mi_fgsm', 'ti_dim'])
@pytest.mark.parametrize('num_surrogates', [2, 3, 4])
def test_equal_pass_configs_spend_the_svre_budget_exactly(preset, num_surrogates):
    fields = dict(base=preset, max_epsilon=4.0, num_iter=10, m_svrg=4 * num_surrogates)
    svre = attacks.AttackConfig(**fields)
    budget = 10 * attacks.passes_per_outer_step(svre, num_surrogates)
    for ensemble, estimator in [('ens', 'svrg')] + [('svre', e) for e in transfer.ESTIMATOR_FIELDS]:
        method = attacks.AttackConfig(**fields, ensemble=ensemble,
                                      **transfer.ESTIMATOR_FIELDS[estimator])
        assert attacks.authors_passes(method, num_surrogates) == budget
        cfg = attacks.at_passes(method, budget, num_surrogates)
        assert cfg.num_iter * attacks.passes_per_outer_step(cfg, num_surrogates) == budget
        assert cfg.alpha == pytest.approx(4.0 / cfg.num_iter) and cfg.beta == cfg.alpha
        assert (ensemble, estimator) != ('svre', 'svrg') or cfg == svre
        assert ensemble == 'svre' or cfg.num_iter == budget // num_surrogates
        assert ensemble == 'ens' or cfg.inner_steps >= 1
        if estimator == 'svrg_cache':   # under DI the cache's saved passes buy inner steps
            assert cfg.outer_grad == 'cache' and cfg.num_iter == 10
            assert cfg.inner_steps == (7 if preset == 'ti_dim' else 4) * num_surrogates
        if estimator == 'svrg_shared':  # 2 passes per inner step: the authors' T, M under DI
            assert cfg.outer_grad == 'shared'
            assert preset == 'mi_fgsm' or (cfg.num_iter, cfg.inner_steps) == (
                10, 4 * num_surrogates)
    with pytest.raises(ValueError, match='exactly 7 passes'):
        attacks.at_passes(attacks.AttackConfig(**fields, ensemble='ens'), 7, 2)


def test_tables_pair_each_method_with_svre_by_seed():
    plan = transfer.experiments(['a', 'b'], ['z'])
    settings = dict(num_iter=10, num_images=4, batch_size=2)

    def record(experiment, ensemble, estimator, seed, success):
        return dict(experiment=experiment, preset='mi_fgsm', ensemble=ensemble,
                    estimator=estimator, seed=seed, num_iter=10, m_svrg=8, seconds=1.0,
                    gradient_passes=240, passes_per_image=120.0, success=success)
    records = []
    for seed, base in ((1000, 50.0), (1001, 60.0)):
        for ensemble, estimator, gain in (('svre', 'svrg', 0.0), ('svre', 'saga', seed - 998)):
            records += [record('hold-out a', ensemble, estimator, seed, {'a': base + gain}),
                        record('hold-out b', ensemble, estimator, seed, {'b': base}),
                        record('ensemble', ensemble, estimator, seed,
                               {'a': 99.0, 'b': 98.0, 'z': base - gain})]
    records.append(record('hold-out a', 'svre', 'saga', 1002, {'a': 0.0}))  # seed incomplete
    text = transfer.markdown(records, plan, {'a': 0.8, 'b': 0.8, 'z': 0.8}, '', settings)
    table1, table2 = text.split('## Table 1')[1].split('## Table 2')
    # saga gains 2 then 3 points on hold-out a (black-box average: 1 then 1.5)
    assert ('| svre_saga-mi_fgsm | 57.5 ± 7.8 | 55.0 ± 7.1 | 56.2 ± 7.4 |  | 10 | 8 | 120 | '
            '2.0 ± 0.0 | 2 |') in table1
    # records without per-image outcomes have no standard error over the images
    assert '| Δ vs svre-mi_fgsm | 2.5 ± 0.7 | 0.0 ± 0.0 | 1.2 ± 0.4 | - |  |  |  |  | 2 |' \
        in table1
    assert '| Δ vs svre-mi_fgsm | 0.0 ± 0.0 | 0.0 ± 0.0 | -2.5 ± 0.7 | -2.5 ± 0.7 | - |' in table2


def test_paired_difference_has_its_standard_error_over_the_images():
    """Each image's black-box difference to svre, averaged over the seeds; its std / sqrt(n)."""
    plan = transfer.experiments(['a', 'b'], ['z'])
    settings = dict(num_iter=10, num_images=4, batch_size=4)
    bits = {('svrg', 1000): '0011', ('svrg', 1001): '0101',
            ('saga', 1000): '1011', ('saga', 1001): '1111'}
    records = []
    for (estimator, seed), z in bits.items():
        for experiment, target, fooled in (('hold-out a', 'a', z), ('hold-out b', 'b', '0000'),
                                           ('ensemble', 'z', z)):
            images = {target: fooled} if experiment != 'ensemble' else {
                'a': '1111', 'b': '1111', 'z': z}
            if (estimator, seed, experiment) == ('saga', 1001, 'hold-out b'):
                images = {}   # a record from before per-image outcomes
            records.append(dict(
                experiment=experiment, preset='mi_fgsm', ensemble='svre', estimator=estimator,
                seed=seed, num_iter=10, m_svrg=8, seconds=1.0, gradient_passes=120,
                passes_per_image=120.0, fooled_images=images,
                success={t: 25.0 * o.count('1') for t, o in
                         {'a': '1111', 'b': '1111', 'z': z, target: fooled}.items()}))
    text = transfer.markdown(records, plan, {'a': 0.8, 'b': 0.8, 'z': 0.8}, '', settings)
    table1, table2 = text.split('## Table 1')[1].split('## Table 2')
    difference = np.mean([[1, 0, 0, 0], [1, 0, 1, 0]], 0)   # saga - svrg on z, per seed
    se = 100 * np.std(difference, ddof=1) / 2
    assert f'| 0.0 ± 0.0 | 0.0 ± 0.0 | 37.5 ± 17.7 | 37.5 ± 17.7 | {se:.1f} |' in table2
    # Table 1: seed 1001 lacks hold-out b's outcomes; seed 1000 averages the two hold-outs
    se1 = 100 * np.std(np.array([1, 0, 0, 0]) / 2, ddof=1) / 2
    assert f'| 37.5 ± 17.7 | 0.0 ± 0.0 | 18.8 ± 8.8 | {se1:.1f} (1 of 2 seeds) |' in table1


@pytest.fixture(scope='module')
def test_split(shared_dir):
    return data.load(shared_dir / 'cifar10' / 'cifar10-jpeg.tar.gz', splits=('test',))['test']


def test_test_split_is_balanced_and_in_class_order(test_split):
    x, y = test_split
    assert x.shape == (10000, 32, 32, 3) and x.dtype == np.uint8
    assert np.all(np.bincount(y) == 1000) and np.all(np.diff(y) >= 0)


def test_committed_weights_reach_their_recorded_accuracy(test_split):
    """Catches weights that load into the wrong layers (e.g. across Keras backends)."""
    x, y = test_split
    pick = np.random.default_rng(0).permutation(len(y))[:1000]
    for name in models.BUILDERS:
        model = models.load(name, WEIGHTS)
        accuracy = np.mean(transfer.predict(model, data.to_model_range(x[pick])) == y[pick])
        recorded = json.loads((WEIGHTS / f'{name}.json').read_text())['test_accuracy']
        assert accuracy > recorded - 0.05, (name, accuracy, recorded)


def run_quick(output_dir, *flags, check=True):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    done = subprocess.run([sys.executable, '-m', 'benchmarks.cifar10.transfer', '--quick',
                           f'--output_dir={output_dir}', *flags], cwd=ROOT, env=env,
                          check=check, capture_output=True, text=True)
    return done if not check else json.loads((output_dir / 'transfer.json').read_text())


def test_quick_mode_runs_both_tables_and_attacks_succeed_white_box(shared_dir, tmp_path):
    # --tables 2 attacks only the ensemble's cells; the full run then adds the hold-outs.
    first = run_quick(tmp_path, '--tables=2')['records']
    assert {r['experiment'] for r in first} == {'ensemble'} and len(first) == 2 * 2
    result = run_quick(tmp_path)
    records = result['records']
    assert len(records) == 3 * 2 * 2   # (2 hold-outs + ensemble) x 2 presets x {ens, svre}
    assert [r for r in records if r['experiment'] == 'ensemble'] == first
    by_key = {(r['experiment'], r['preset'], r['ensemble']): r for r in records}
    for preset in ('mi_fgsm', 'ti_dim'):
        ens, svre = by_key['ensemble', preset, 'ens'], by_key['ensemble', preset, 'svre']
        for target in ('separable', 'vgg'):   # white-box; clean images are all correct
            assert ens['success'][target] >= 60.0, (preset, target, ens['success'])
            assert svre['success'][target] >= 60.0, (preset, target, svre['success'])
        # batches of 10 images; 10 outer steps; K = 2 and M = 4K = 8
        assert ens['gradient_passes'] == 10 * 2
    assert by_key['ensemble', 'mi_fgsm', 'svre']['gradient_passes'] == 10 * (2 + 2 + 8)
    assert by_key['ensemble', 'ti_dim', 'svre']['gradient_passes'] == 10 * (2 + 8 + 8)
    assert result['gradient_passes'] == sum(r['gradient_passes'] for r in records)
    for r in records:   # the per-image outcomes of the 10 images add up to the success rates
        assert {t: 10.0 * bits.count('1') for t, bits in r['fooled_images'].items()} == \
            r['success'] and {len(bits) for bits in r['fooled_images'].values()} == {10}
    table = (tmp_path / 'transfer.md').read_text()
    assert '| ens-mi_fgsm |' in table and '| svre-ti_dim |' in table and 'vgg*' in table

    # A second run into the same folder with the same settings attacks nothing new: it keeps
    # the records (a stopped run resumes; presets run one at a time add up).
    again = run_quick(tmp_path, '--presets=mi_fgsm')
    assert again['records'] == records
    assert (tmp_path / 'transfer.md').read_text().split('## Zoo')[1] == table.split('## Zoo')[1]
    # Results made with other settings are never overwritten.
    refused = run_quick(tmp_path, '--num_iter=2', check=False)
    assert refused.returncode != 0 and 'num_iter' in refused.stderr
    assert json.loads((tmp_path / 'transfer.json').read_text())['records'] == records


def write_jpeg_tarball(path, per_class, rng):
    """A tiny CIFAR-10 JPEG tarball (`<split>/<class>/NNNN.jpg`) of random images."""
    with tarfile.open(path, 'w:gz') as tar:
        for split in ('train', 'test'):
            for name in data.CLASSES:
                for i in range(per_class):
                    buffer = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                        buffer, format='JPEG')
                    member = tarfile.TarInfo(f'{split}/{name}/{i:04d}.jpg')
                    member.size = buffer.tell()
                    buffer.seek(0)
                    tar.addfile(member, buffer)


def test_train_writes_weights_that_reproduce_the_recorded_accuracy(tmp_path):
    source = tmp_path / 'tiny-jpeg.tar.gz'
    write_jpeg_tarball(source, per_class=8, rng=np.random.default_rng(0))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    out = subprocess.run([sys.executable, '-m', 'benchmarks.cifar10.train', f'--source={source}',
                          f'--weights_dir={tmp_path}', '--models=vgg', '--epochs=2',
                          '--batch_size=16'], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    assert 'vgg epoch 2/2' in out
    record = json.loads((tmp_path / 'vgg.json').read_text())
    assert record['epochs'] == 2 and record['train_images_per_epoch'] == 80
    x, y = data.load(source, splits=('test',))['test']
    model = models.load('vgg', tmp_path)
    assert np.mean(transfer.predict(model, data.to_model_range(x)) == y) == record['test_accuracy']


def write_equal_pass_run(folder, fooled, equal_passes=True):
    """A transfer.json of pool (a, b) and outside model z on 100 images, where
    fooled[(ensemble, estimator, seed)] = (images fooled on every hold-out, images fooled on z):
    the first that many images of each."""
    records = []
    for (ensemble, estimator, seed), (holdout, outside) in fooled.items():
        bits = {n: '1' * n + '0' * (100 - n) for n in (holdout, outside, 100)}
        for experiment, images in (('hold-out a', {'a': bits[holdout]}),
                                   ('hold-out b', {'b': bits[holdout]}),
                                   ('ensemble', {'a': bits[100], 'b': bits[100],
                                                 'z': bits[outside]})):
            records.append(dict(
                experiment=experiment, preset='mi_fgsm', ensemble=ensemble, estimator=estimator,
                seed=seed, num_iter=10, m_svrg=8, seconds=2.0, gradient_passes=1200,
                passes_per_image=120.0, fooled_images=images,
                success={t: float(o.count('1')) for t, o in images.items()}))
    settings = dict(pool=['a', 'b'], outside=['z'], num_images=100, batch_size=100,
                    max_epsilon=4.0, num_iter=10, m_svrg=None, ti_kernel_size=3)
    if equal_passes:
        settings['equal_passes'] = True
    folder.mkdir()
    (folder / 'transfer.json').write_text(json.dumps(dict(settings=settings, records=records)))
    return folder


def test_equal_pass_verdict_applies_the_adoption_rule_per_cell(tmp_path):
    """Δ >= 1 beyond 2 SEs (seeds' and images') with >= 3 seeds, in every cell it ran."""
    seeds = (1000, 1001, 1002)
    fooled = {('svre', 'svrg', s): (50, 50) for s in seeds}
    fooled.update({('svre', 'saga', s): (60 + i, 50) for i, s in enumerate(seeds)})   # T1 only
    fooled.update({('svre', 'sarah', s): (55, 55) for s in seeds})       # both tables, +5
    fooled.update({('svre', 'svrg_is', s): (60, 60) for s in seeds[:2]})  # 2 seeds only
    fooled.update({('ens', 'svrg', s): (70, 70) for s in seeds})          # the baseline
    first = write_equal_pass_run(tmp_path / 'one', fooled)
    differences = equal_passes.verdict_tables(equal_passes.cells(first)).split('\n\n')[0]
    rows = {line.split(' | ')[0][2:]: line.split(' | ')[1:] for line in differences.splitlines()}
    # saga: +10, +11, +12 on the hold-outs; each image's gain averaged over the seeds
    gain = np.mean([np.r_[np.ones(n), np.zeros(100 - n)] for n in (10, 11, 12)], 0)
    se = 100 * np.std(gain, ddof=1) / 10
    assert rows['saga'][0] == f'11.0 ± 1.0 [{se:.1f}] (3) ✓'
    assert rows['saga'][1] == '0.0 ± 0.0 [0.0] (3)' and rows['saga'][2] == \
        '1 of 2 cells: not adopted |'
    se5 = 100 * np.std(np.r_[np.ones(5), np.zeros(95)], ddof=1) / 10   # 5.0 > 2 x 2.2
    assert rows['sarah'][:2] == [f'5.0 ± 0.0 [{se5:.1f}] (3) ✓'] * 2
    assert rows['sarah'][2] == '2 of 2 cells: adopted |'
    assert rows['svrg_is'][0] == '10.0 ± 0.0 [3.0] (2)'   # fewer seeds than the protocol's 3
    assert rows['ens'][0] == '20.0 ± 0.0 [4.0] (3)' and rows['ens'][2] == 'baseline |'
    assert rows['SVR-Ens black-box avg'][:2] == ['50.0 ± 0.0', '50.0 ± 0.0']
    # A second folder adds columns, and the verdict counts them.
    fooled.update({('svre', 'sarah', s): (50, 50) for s in seeds})
    second = write_equal_pass_run(tmp_path / 'two', fooled)
    columns = equal_passes.cells(first) + equal_passes.cells(second)
    assert [title for title, _ in columns] == ['mi_fgsm eps 4 T1', 'mi_fgsm eps 4 T2'] * 2
    sarah = [line for line in equal_passes.verdict_tables(columns).splitlines()
             if line.startswith('| sarah |')]
    assert len(sarah) == 2 and sarah[0].endswith('| 2 of 4 cells: not adopted |')
    # The threshold: at least 1 point, however steady the difference.
    assert equal_passes.meets_rule(dict(delta=[1.0, 1.0, 1.0], image_se=0.1))
    assert not equal_passes.meets_rule(dict(delta=[0.9, 0.9, 0.9], image_se=0.1))
    assert not equal_passes.meets_rule(dict(delta=[1.0, 1.5, 2.0], image_se=0.8))   # images
    assert not equal_passes.meets_rule(dict(delta=[0.0, 1.5, 3.0], image_se=0.1))   # seeds
    with pytest.raises(Exception, match='nowhere/transfer.json: no such file'):
        equal_passes.cells(tmp_path / 'nowhere')
    (tmp_path / 'cut').mkdir()
    (tmp_path / 'cut' / 'transfer.json').write_text('{"settings": {')
    with pytest.raises(Exception, match='cut/transfer.json: not JSON'):
        equal_passes.cells(tmp_path / 'cut')
    with pytest.raises(Exception, match='not an --equal_passes run'):
        equal_passes.cells(write_equal_pass_run(tmp_path / 'three', fooled, equal_passes=False))
