"""The registry contract the evaluate program relies on, and NIPS-r3's weighted ensemble."""
import numpy as np
import pytest
import tensorflow as tf

from svrens_tf import defenses


def one_hot_model(label, scale, with_aux=True):
    """Stand-in zoo model: logits scale * one_hot(label) over 1001 classes, any input size."""
    def model(x):
        logits = scale * tf.one_hot(tf.fill([tf.shape(x)[0]], label), 1001)
        return (logits, logits) if with_aux else logits
    return model


class Loader:
    """load_model stand-in recording what a defense asked for."""

    def __init__(self, models):
        self.models, self.requests = models, []

    def __call__(self, zoo_name, checkpoint_dir):
        self.requests.append((zoo_name, checkpoint_dir))
        return self.models[zoo_name]


def test_names_are_the_contract():
    assert defenses.NAMES == ('bit_red', 'jpeg', 'fd', 'rp', 'nips_r3', 'rs', 'comdefend', 'nrp',
                              'hgd')


@pytest.mark.parametrize('name, options, zoo_name', [
    ('bit_red', {}, 'ens3_adv_inc_v3'),
    ('jpeg', {'quality': 75}, 'ens3_adv_inc_v3'),
    ('fd', {}, 'ens3_adv_inc_v3'),
    ('rp', {'passes': 2}, 'ens_adv_incres_v2'),
    ('rs', {'n': 12, 'classifier': 'ens3_adv_inc_v3'}, 'ens3_adv_inc_v3'),
])
def test_build_loads_the_default_classifier_and_answers_labels(name, options, zoo_name):
    loader = Loader({zoo_name: one_hot_model(321, 10.0)})
    defense = defenses.build(name, checkpoint_dir='ckpts', load_model=loader, **options)
    assert defense.name == name and defense.classifiers == (zoo_name,)
    assert loader.requests == [(zoo_name, 'ckpts')]
    labels = defense(np.zeros((2, 299, 299, 3), np.uint8))
    assert labels.dtype == np.int64 and labels.tolist() == [321, 321]
    with pytest.raises(ValueError, match='uint8 images'):
        defense(np.zeros((2, 299, 299, 3), np.float32))
    with pytest.raises(ValueError, match=r'\[2, 224, 224, 3\]'):
        defense(np.zeros((2, 224, 224, 3), np.uint8))


def test_unknown_names_and_options_are_one_clear_error():
    with pytest.raises(ValueError, match='unknown defense'):
        defenses.build('not_a_defense')
    with pytest.raises(ValueError, match='no option qualty'):
        defenses.build('jpeg', qualty=75)
    with pytest.raises(ValueError, match='classifier'):
        defenses.build('jpeg', classifier=3)


def test_a_user_classifier_with_1000_outputs_is_understood():
    model = lambda x: tf.one_hot(tf.fill([tf.shape(x)[0]], 0), 1000)  # noqa: E731
    defense = defenses.build('bit_red', classifier=model)
    assert defense.classifiers == () and defense(np.zeros((1, 299, 299, 3), np.uint8)) == [1]


def nips_r3_label(inc_scale, vgg_scale=0.0):
    models = {'ens_adv_incres_v2': one_hot_model(5, 1.0),
              'adv_inc_v3': one_hot_model(7, inc_scale),
              'vgg_16': one_hot_model(11, vgg_scale, with_aux=False),
              'res_v2_152': one_hot_model(9, 20.0, with_aux=False)}
    loader = Loader(models)
    defense = defenses.build('nips_r3', checkpoint_dir='c', seed=0, load_model=loader)
    assert sorted(loader.requests) == sorted((m, 'c') for m in models)
    return defense(np.full((1, 299, 299, 3), 90, np.uint8))[0]


def test_nips_r3_weighs_its_members_as_the_submission():
    # Scores: IncRes (0.7 + 0.1) * 1.8 = 1.44; Inc-v3 (0.2 + 0.1) * 1.8 * s; ResNet 0.05 * 20 = 1;
    # VGG-16 0.1 * v.
    assert nips_r3_label(2.6) == 5
    assert nips_r3_label(2.7) == 7
    assert nips_r3_label(2.6, vgg_scale=14.0) == 5
    assert nips_r3_label(2.6, vgg_scale=14.5) == 11


def test_nips_r3_transforms_follow_the_seed(rng):
    from svrens_tf.defenses import nips_r3
    image = rng.randint(0, 256, size=(299, 299, 3)).astype(np.uint8)
    first, again, other = (nips_r3.member_inputs(image, np.random.RandomState(seed))
                           for seed in (1, 1, 2))
    shapes = [(299, 299, 3), (299, 299, 3), (299, 299, 3), (224, 224, 3)]
    assert [x.shape for x in first] == shapes
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert np.any(first[0] != other[0]) and np.any(first[1] != other[1])
    np.testing.assert_array_equal(first[2], other[2])
    signed = image / 255.0 * 2 - 1
    assert set(np.unique(first[0])) <= set(np.unique(signed)) | {0.0}


def test_parse_options_reads_literals_and_rejects_unknown():
    specs = ['jpeg.quality=75', 'rp.flip=False', 'jpeg.dct_method=INTEGER_ACCURATE']
    parsed = defenses.parse_options(specs, ['jpeg', 'rp'])
    assert parsed == {'jpeg': {'quality': 75, 'dct_method': 'INTEGER_ACCURATE'},
                      'rp': {'flip': False}}
    for bad in ('jpeg.qualty=75', 'fd.size=304', 'jpeg=75'):
        with pytest.raises(ValueError, match='DEFENSE.OPTION=VALUE|has no option'):
            defenses.parse_options([bad], ['jpeg', 'rp'])


def test_evaluate_refuses_absent_defense_weights_before_any_work(shared_dir, tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    image_id = '000b7d55b6184b08'
    lines = (shared_dir / 'nips17' / 'dev_dataset.csv').read_text().splitlines()
    for folder in ('clean', 'adv'):
        (tmp_path / folder).mkdir()
        shutil.copy(shared_dir / 'nips17' / 'images' / f'{image_id}.png', tmp_path / folder)
        (tmp_path / folder / 'dev_dataset.csv').write_text('\n'.join(
            [lines[0]] + [line for line in lines if line.startswith(image_id)]) + '\n')
    checkpoints = tmp_path / 'checkpoints'
    result = subprocess.run(
        [sys.executable, '-m', 'svrens_tf.cli.evaluate', f'--clean_dir={tmp_path / "clean"}',
         f'--input_dir={tmp_path / "adv"}', f'--output_dir={tmp_path / "out"}',
         f'--checkpoint_dir={checkpoints}', '--models=', '--defenses=jpeg,nrp,hgd'],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
    assert result.returncode == 1, result.stderr
    for name in ('nrp', 'hgd'):
        assert f'install with: svrens-download --defense {name} --checkpoint_dir {checkpoints}' \
            in result.stderr
    assert 'jpeg:' not in result.stdout and 'Traceback' not in result.stderr
    assert not (tmp_path / 'out').exists()
