"""HGD against the authors' PyTorch modules (../shared/torch_reference, seed-1234 weights).

Per member: the denoised image and the logits of `net(x, defense=True)` within
`compare_torch_reference.TOL` on the reference's two NIPS17 images; the summed-logit ensemble
within TOL and its labels (argmax + 1) exact. The four members are built once (module
fixture) from the generator's state dicts, checked against the reference's digests first.
Then the defense as `svrens-evaluate` builds it: converted weights on disk (Inception-v3 only,
the smallest), absent weights, and state dicts with a missing or an unused key.
"""
import numpy as np
import pytest

from benchmarks import shared_module
from svrens_tf import defenses
from svrens_tf.defenses import hgd
from svrens_tf.defenses.hgd_nets import MEMBERS
from svrens_tf.models import CheckpointError
from svrens_tf.weights import store


@pytest.fixture(scope='module')
def torch_reference(shared_dir):
    folder = shared_dir / 'torch_reference'

    class Ref:
        gen_weights = shared_module('torch_reference/gen_weights.py')
        compare = shared_module('torch_reference/compare_torch_reference.py')
        data = compare.load_reference(folder / 'hgd.reference.npz')
        images = compare.reference_images(data, shared_dir / 'nips17' / 'images')
        assert compare.check_input(data, compare.input_01(images))
    return Ref


def synthetic_state_dict(ref, member):
    """The seed-1234 state dict of `member`, checked against the reference's digest."""
    gen = ref.gen_weights
    arrays = gen.generate_state_dict(gen.load_manifest(f'hgd_{member}'), int(ref.data['ckpt_seed']))
    assert gen.arrays_digest(arrays) == str(ref.data[f'arrays_sha256_hgd_{member}'])
    return arrays


@pytest.fixture(scope='module')
def v3_state_dict(torch_reference):
    """The smallest member's state dict, kept for the tests that build it again."""
    return synthetic_state_dict(torch_reference, 'v3')


@pytest.fixture(scope='module')
def ensemble(torch_reference, v3_state_dict):
    """(the four-member defense, its per-member outputs on the reference images)."""
    defense = hgd.Hgd(weights=lambda member: v3_state_dict if member == 'v3' else
                      synthetic_state_dict(torch_reference, member))
    return defense, defense.outputs(torch_reference.images)


def nchw(images):
    return images.transpose(0, 3, 1, 2)


@pytest.mark.parametrize('member', list(MEMBERS))
def test_member_denoised_image_and_logits_match_pytorch(member, ensemble, torch_reference):
    denoised, logits = ensemble[1][member]
    report = torch_reference.compare.compare(
        torch_reference.data, {f'{member}_denoised': nchw(denoised), f'{member}_logits': logits})
    assert report['ok'], report


def test_ensemble_logits_and_labels_match_pytorch(ensemble, torch_reference):
    defense, outputs = ensemble
    assert list(defense.members) == ['res152', 'inres', 'v3', 'resnext101']
    total = hgd.ensemble_logits(logits for _, logits in outputs.values())
    labels = defenses.base.labels_from_scores(total)
    report = torch_reference.compare.compare(
        torch_reference.data, {'ensemble_logits': total, 'labels': labels})
    assert report['ok'], report


def test_registry_builds_hgd_from_converted_weights(torch_reference, v3_state_dict, tmp_path):
    source = tmp_path / 'denoise_incepv3_012.ckpt'
    source.write_bytes(b'stand-in for the released file')
    store.save(v3_state_dict, tmp_path / 'hgd', 'v3', source)
    def no_zoo_model(zoo_name, checkpoint_dir):
        raise AssertionError(f'HGD loads no zoo model, asked for {zoo_name}')
    # as svrens-evaluate builds every defense: with a zoo loader, which HGD does not take
    defense = defenses.build('hgd', checkpoint_dir=tmp_path, load_model=no_zoo_model,
                             members=('v3',))
    labels = defense(torch_reference.images[1:])
    assert labels.tolist() == [torch_reference.data['v3_logits'][1].argmax() + 1]


def test_absent_weights_name_the_folder_and_the_install_command(tmp_path):
    install = f'svrens-download --defense hgd --checkpoint_dir {tmp_path}'
    with pytest.raises(CheckpointError) as err:
        defenses.build('hgd', checkpoint_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path / 'hgd') in message and message.endswith(install)
    for member in MEMBERS:
        assert f'{member}.manifest.json' in message
    assert install in defenses.missing_weights('hgd', tmp_path, members='inres,v3')


def test_members_are_a_subset_in_the_summing_order():
    assert hgd.chosen_members('v3, res152') == hgd.chosen_members(('v3', 'res152')) == [
        'res152', 'v3']
    assert hgd.Hgd.stored_weights(defenses.settings('hgd')) == [
        ('hgd', m) for m in ('res152', 'inres', 'v3', 'resnext101')]
    for members in (('v4',), (), 'v3,'):
        with pytest.raises(ValueError, match='subset of res152, inres, v3, resnext101'):
            hgd.Hgd(weights=dict, members=members)


def test_missing_and_unused_keys_are_named(v3_state_dict):
    missing = dict(v3_state_dict)
    del missing['net.Mixed_6c.branch2.3.bn.running_var']
    with pytest.raises(KeyError, match=r'net\.Mixed_6c\.branch2\.3\.bn\.running_var'):
        MEMBERS['v3'](missing)
    extra = dict(v3_state_dict, **{'net.AuxLogits.fc.weight': np.zeros((1000, 768), np.float32)})
    with pytest.raises(ValueError, match=r'1 state-dict keys .*net\.AuxLogits\.fc\.weight'):
        MEMBERS['v3'](extra)
