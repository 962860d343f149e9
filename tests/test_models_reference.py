"""The five slim architectures against TF-slim itself (../shared/slim_reference).

Variable names and shapes must equal the slim checkpoint's manifest exactly; with the seed-1234
synthetic checkpoint loaded through `models.load`, logits, aux logits, loss and the input
gradient of `mean(sparse_softmax_cross_entropy(labels, logits))` must match the outputs of
the slim graphs within `compare_reference.TOL`. One model build and one forward + backward at
batch 2 per architecture.
"""
import pytest
import tensorflow as tf

from svrens_tf import models

ARCHS = ['inception_v3', 'inception_v4', 'inception_resnet_v2', 'resnet_v2_101', 'resnet_v2_152']
HAS_AUX = {'inception_v3', 'inception_v4', 'inception_resnet_v2'}


def names_and_shapes(model):
    return {v.name.split(':')[0]: tuple(v.shape) for v in model.variables}


def manifest_names_and_shapes(manifest):
    return {name: tuple(shape) for name, shape, _ in manifest['variables']}


def loss_and_input_grad(model, x, labels):
    """Outputs, reference loss and d loss / d x, in one traced function (as the attacks run)."""
    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = model(x)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, out.logits))
        return out, loss, tape.gradient(loss, x)
    return run(tf.constant(x))


@pytest.fixture(scope='module', autouse=True)
def full_float32_precision():
    """The tolerances are float32's: TF32 convs and matmuls (Ampere+ GPUs) are turned off."""
    enabled = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    yield
    tf.config.experimental.enable_tensor_float_32_execution(enabled)


@pytest.fixture(scope='module', params=ARCHS)
def arch(request):
    return request.param


@pytest.fixture(scope='module')
def loaded(arch, slim_reference, synthetic_checkpoint):
    return models.load(arch, str(synthetic_checkpoint(arch)))


def test_variables_equal_the_slim_manifest(arch, slim_reference):
    model = models.build(arch)
    assert names_and_shapes(model) == manifest_names_and_shapes(slim_reference.manifest(arch))
    assert len(model.variables) == len(model.variables_by_name)


def test_outputs_and_input_gradient_match_slim(arch, loaded, slim_reference):
    ref = slim_reference.reference(arch)
    weights = {name: var.numpy() for name, var in loaded.variables_by_name.items()}
    assert slim_reference.gen_ckpt.arrays_digest(weights) == str(ref['arrays_sha256']), \
        'generator or loader changed: the loaded weights are not the reference weights'

    x, labels = slim_reference.compare_reference.reference_input(ref)
    out, loss, grad = loss_and_input_grad(loaded, x, labels)
    aux = out.aux_logits.numpy() if arch in HAS_AUX else None
    assert (out.aux_logits is None) == (arch not in HAS_AUX)
    report = slim_reference.compare_reference.compare(
        ref, logits=out.logits.numpy(), aux_logits=aux,
        predictions=tf.nn.softmax(out.logits).numpy(), loss=loss.numpy(), grad=grad.numpy())
    assert report['ok'], report


def test_scope_is_a_parameter(slim_reference):
    """Adversarially trained copies live under another top-level scope."""
    model = models.build('inception_v3', scope='Ens3AdvInceptionV3')
    expected = {'Ens3AdvInceptionV3/' + name.split('/', 1)[1]: shape for name, shape
                in manifest_names_and_shapes(slim_reference.manifest('inception_v3')).items()}
    assert names_and_shapes(model) == expected


def test_resnet_v2_50_is_resnet_v2_101_with_six_block3_units(slim_reference):
    """No slim reference for ResNet-v2-50: derive its variables from the 101 manifest."""
    def kept(name):
        parts = name.split('/')
        return not (parts[1] == 'block3' and int(parts[2].split('_')[1]) > 6)
    expected = {'resnet_v2_50/' + name.split('/', 1)[1]: shape for name, shape
                in manifest_names_and_shapes(slim_reference.manifest('resnet_v2_101')).items()
                if kept(name)}
    assert names_and_shapes(models.build('resnet_v2_50')) == expected
