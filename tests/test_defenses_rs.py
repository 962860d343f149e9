"""Randomized smoothing: Cohen et al.'s PREDICT on base classifiers whose noisy behaviour is known,
and their ResNet-50 against the original PyTorch module (../shared/torch_reference)."""
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

import torch_reference
from svrens_tf.defenses import cohen_resnet50, rs
from svrens_tf.models.checkpoint import CheckpointError


def threshold_classifier(x):
    """Label 1 where the first pixel's red value is > 0 in [-1,1] space, else label 2."""
    positive = x[:, 0, 0, 0] > 0.0
    logits = tf.where(positive[:, None], tf.one_hot(1, 1001), tf.one_hot(2, 1001))
    return logits * 5.0


def constant_classifier(x):
    return tf.one_hot(tf.fill([tf.shape(x)[0]], 42), 1001)


def images_with_first_pixel(values, side=299):
    images = np.full((len(values), side, side, 3), 128, np.uint8)
    images[:, 0, 0, 0] = values
    return images


def test_noise_is_added_in_unit_pixel_space_with_std_sigma():
    defense = rs.RandomizedSmoothing(sigma=0.25, n=400, batch_size=150,
                                     classifier=threshold_classifier, seed=1)
    counts = defense.counts(images_with_first_pixel([200], side=4))[0]
    assert counts.sum() == 400 and counts[1] + counts[2] == 400
    p = scipy.stats.norm.cdf((200 / 255 - 0.5) / 0.25)
    assert abs(counts[1] - 400 * p) < 5 * np.sqrt(400 * p * (1 - p))


def test_clear_majorities_are_predicted_and_a_coin_flip_abstains():
    defense = rs.RandomizedSmoothing(classifier=threshold_classifier, seed=0)
    labels = defense(images_with_first_pixel([255, 0, 128]))
    np.testing.assert_array_equal(labels, [1, 2, rs.ABSTAIN])
    assert defense.abstentions == 1
    defense(images_with_first_pixel([128]))
    assert defense.abstentions == 2


def test_decision_follows_the_binomial_test_at_alpha():
    defense = rs.RandomizedSmoothing(alpha=0.001, classifier=constant_classifier)
    counts = np.zeros(1001, np.int64)
    counts[[5, 9]] = [11, 0]            # two-sided p = 2 / 2**11 < 0.001
    assert defense.decide(counts) == 5
    counts[[5, 9]] = [10, 0]            # p = 2 / 2**10 > 0.001
    assert defense.decide(counts) == rs.ABSTAIN
    counts[[5, 9]] = [70, 30]
    assert defense.decide(counts) == 5
    counts[[5, 9]] = [60, 40]
    assert defense.decide(counts) == rs.ABSTAIN


def test_a_noise_blind_classifier_is_never_abstained_on_and_seeds_repeat():
    defense = rs.RandomizedSmoothing(n=12, classifier=constant_classifier, seed=0)
    np.testing.assert_array_equal(defense(images_with_first_pixel([0, 255])), [42, 42])
    assert defense.abstentions == 0
    image = images_with_first_pixel([128], side=4)
    first, again, other = (
        rs.RandomizedSmoothing(n=50, classifier=threshold_classifier, seed=seed).counts(image)
        for seed in (7, 7, 8))
    np.testing.assert_array_equal(first, again)
    assert np.any(first != other)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match='alpha'):
        rs.RandomizedSmoothing(alpha=0.0, classifier=constant_classifier)


@pytest.fixture(scope='module')
def cohen_dir(shared_dir, tmp_path_factory):
    return torch_reference.install(tmp_path_factory.mktemp('weights'), 'rs', rs.COHEN)


def test_cohen_resnet50_matches_the_pytorch_reference(shared_dir):
    ref = torch_reference.reference('cohen_resnet50')
    compare = torch_reference.compare()
    crops = cohen_resnet50.preprocess(torch_reference.reference_images('cohen_resnet50'))
    model = cohen_resnet50.CohenResNet50(torch_reference.state_dict(rs.COHEN))
    x = ref['x_u8'].astype(np.float32) / np.float32(255)
    assert compare.check_input(ref, x.transpose(0, 3, 1, 2))
    report = compare.compare(ref, {'x_u8': crops, 'logits': model(x).numpy()})
    assert report['ok'], report


def test_cohen_resnet50_refuses_a_state_dict_it_does_not_use_fully(shared_dir):
    arrays = dict(torch_reference.state_dict(rs.COHEN))
    arrays['1.module.extra.weight'] = arrays['1.module.fc.bias']
    with pytest.raises(ValueError, match='1.module.extra.weight'):
        cohen_resnet50.CohenResNet50(arrays)
    del arrays['1.module.extra.weight'], arrays['1.module.layer2.0.bn2.running_var']
    with pytest.raises(KeyError, match='layer2.0.bn2.running_var'):
        cohen_resnet50.CohenResNet50(arrays)


def test_default_base_classifier_is_cohens_with_their_preprocessing(cohen_dir):
    """sigma 0: every noisy copy is the clean crop, so the label is the reference's argmax + 1."""
    ref = torch_reference.reference('cohen_resnet50')
    defense = rs.RandomizedSmoothing(sigma=0.0, n=11, batch_size=11, checkpoint_dir=cohen_dir)
    labels = defense(torch_reference.reference_images('cohen_resnet50'))
    np.testing.assert_array_equal(labels, ref['logits'].argmax(1) + 1)


def test_missing_cohen_weights_name_the_install_command(tmp_path):
    with pytest.raises(CheckpointError, match='cohen_resnet50'):
        rs.RandomizedSmoothing(checkpoint_dir=tmp_path)
