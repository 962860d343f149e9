"""The slim vgg_16 against TF-slim itself (../shared/slim_reference/vgg_16.*).

The zoo model takes x in [-1,1] and returns 1001-way logits (a background logit in front of
slim's 1000), so the reference (pixels in [0,255], 1000 classes, labels as 1000-way indices) is
fed as x/127.5 - 1 with labels + 1, and the gradient is scaled back by 1/127.5 (chain rule).
"""
import numpy as np
import pytest
import tensorflow as tf

from svrens_tf import models
from svrens_tf.models import zoo
from test_models_reference import loss_and_input_grad, manifest_names_and_shapes, \
    names_and_shapes


@pytest.fixture(scope='module')
def reference(slim_reference):
    return slim_reference.reference('vgg_16')


@pytest.fixture(scope='module')
def loaded(slim_reference, reference):
    """The seed-1234 weights assigned by slim name (writing and restoring the 528 MB
    checkpoint would double the test's cost; restoring by name is the other models' test)."""
    model = models.build('vgg_16')
    arrays = slim_reference.gen_ckpt.generate_arrays(slim_reference.manifest('vgg_16'),
                                                     int(reference['ckpt_seed']))
    for name, var in model.variables_by_name.items():
        var.assign(arrays.pop(name))
    assert not arrays
    return model


def test_variables_equal_the_slim_manifest(slim_reference):
    model = models.build('vgg_16')
    assert names_and_shapes(model) == manifest_names_and_shapes(slim_reference.manifest('vgg_16'))


def test_outputs_and_input_gradient_match_slim(loaded, reference, slim_reference):
    compare = slim_reference.compare_reference
    weights = {name: var.numpy() for name, var in loaded.variables_by_name.items()}
    assert slim_reference.gen_ckpt.arrays_digest(weights) == str(reference['arrays_sha256'])
    pixels, labels = compare.reference_input(reference)
    assert pixels.shape == (2, 224, 224, 3) and pixels.max() > 200   # pixels, not [-1,1]
    x = pixels / np.float32(127.5) - np.float32(1.0)
    enabled = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        out, loss, grad = loss_and_input_grad(loaded, x, labels + 1)
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(enabled)
    logits = out.logits.numpy()
    assert logits.shape == (2, 1001) and out.aux_logits is None
    assert np.all(logits[:, 0] < logits[:, 1:].min(axis=1) - 1000)    # background never wins
    report = compare.compare(
        reference, logits=logits[:, 1:], predictions=tf.nn.softmax(logits).numpy()[:, 1:],
        loss=loss.numpy(), grad=grad.numpy() / 127.5)
    assert report['ok'], report


def test_zoo_entry_and_input_size():
    entry = zoo.ZOO['vgg_16']
    assert (entry.arch, entry.archive) == ('vgg_16', 'vgg_16_2016_08_28.tar.gz')
    raw = models.ARCHITECTURES['vgg_16'](num_classes=1000).build()
    assert raw.scope == 'vgg_16'
    assert raw(tf.zeros([1, 224, 224, 3])).logits.shape == (1, 1000)
    with pytest.raises(ValueError):
        models.ARCHITECTURES['vgg_16'](num_classes=10)
