"""HGD (Liao et al. 2018): the NIPS17 winner's four denoiser + classifier members, in TF2.

Each member (`hgd_nets`: ResNet-152, Inception-ResNet-v2, Inception-v3, ResNeXt-101 64x4d)
normalises the image in [0,1] its own way, denoises it with its own U-Net and classifies the
denoised image; the defense sums the four members' logits and answers argmax + 1, as
lfz/Guided-Denoise `nips_deploy/defense.py` does. The weights are the released PyTorch
checkpoints converted once into the project's weight format (`svrens_tf/weights/store.py`) by
`svrens-download --defense hgd` (`svrens_tf/downloads/defense_weights.py`):
`<checkpoint_dir>/hgd/<member>.npz` + manifest, the released state-dict keys and layouts.
"""
import tensorflow as tf

from svrens_tf.defenses import base
from svrens_tf.defenses.hgd_nets import MEMBERS
from svrens_tf.models import CheckpointError
from svrens_tf.weights import store


def converted_weights(folder, checkpoint_dir, members):
    """A loader member -> state dict reading the converted files in `folder` (default
    `<checkpoint_dir>/hgd`). Checks first that all `members` are installed, else one
    CheckpointError naming the folder, each absent file and the install command."""
    folder = base.weights_folder(Hgd.name, folder, checkpoint_dir)
    install = base.install_command(Hgd.name, checkpoint_dir)
    problems = [p for p in (store.missing(folder, m) for m in members) if p]
    if problems:
        raise CheckpointError(f'HGD weights are not installed in {folder}: '
                              f'{"; ".join(problems)}; install with: {install}')
    return lambda member: store.load(folder, member, install)


def chosen_members(members):
    """`members` (names, or one comma-separated string as `hgd.members=v3,res152` gives) in
    `MEMBERS` order; anything else is one ValueError."""
    if isinstance(members, str):
        members = [m.strip() for m in members.split(',')]
    unknown = [m for m in members if m not in MEMBERS]
    if unknown or not members:
        raise ValueError(f'hgd members must be a non-empty subset of {", ".join(MEMBERS)}; '
                         f'got {members!r}')
    return [m for m in MEMBERS if m in members]


def ensemble_logits(member_logits):
    """Sum of the members' logits [B,1000], in `MEMBERS` order (defense.py's)."""
    total = None
    for logits in member_logits:
        total = logits if total is None else total + logits
    return total


class Hgd(base.Defense):
    """HGD's ensemble; `members` chooses a subset of `hgd_nets.MEMBERS` (default all four).

    `weights`: the folder of the converted weights (default `<checkpoint_dir>/hgd`), or a
    callable member -> state dict (name -> ndarray), called once per member as it is built, so
    one state dict at a time is in memory besides the converted members.
    """

    name = 'hgd'

    @classmethod
    def stored_weights(cls, settings):
        return [(cls.name, m) for m in chosen_members(settings['members'])]

    def __init__(self, weights=None, members=tuple(MEMBERS), checkpoint_dir=None):
        members = chosen_members(members)
        load = weights if callable(weights) else converted_weights(weights, checkpoint_dir,
                                                                     members)
        super().__init__(())
        self.members = {m: MEMBERS[m](load(m)) for m in members}

    def outputs(self, images):
        """uint8 [B,299,299,3] -> {member: (denoised [B,299,299,3], logits [B,1000])}, numpy."""
        x = tf.cast(tf.convert_to_tensor(base.check_images(images)), tf.float32) / 255.0
        return {name: tuple(t.numpy() for t in member(x)) for name, member in self.members.items()}

    def logits(self, images):
        """The ensemble's summed logits [B,1000]."""
        return ensemble_logits(logits for _, logits in self.outputs(images).values())

    def predict(self, images):
        return base.labels_from_scores(self.logits(images))


