"""Registry of the ten released TF-slim ImageNet checkpoints (download.tensorflow.org/models/),
the image size they take, the model lists of the paper's experiments, and the folder
svrens-download installs them into."""
import dataclasses
import os
import pathlib

BASE_URL = 'http://download.tensorflow.org/models/'
IMAGE_SIZE = 299  # side of the square RGB images (NIPS17) the models and defenses take
CHECKPOINT_DIR_ENV = 'SVRENS_CHECKPOINT_DIR'


def default_checkpoint_dir():
    """$SVRENS_CHECKPOINT_DIR, else `checkpoints/` at the repository root."""
    return os.environ.get(CHECKPOINT_DIR_ENV) or str(
        pathlib.Path(__file__).resolve().parents[2] / 'checkpoints')


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    name: str        # short name used on command lines (inc_v3, ens3_adv_inc_v3, ...)
    arch: str        # architecture in models.ARCHITECTURES
    archive: str     # tarball name under BASE_URL (the installer finds the checkpoint inside)


ZOO = {e.name: e for e in [
    ZooEntry('inc_v3', 'inception_v3', 'inception_v3_2016_08_28.tar.gz'),
    ZooEntry('inc_v4', 'inception_v4', 'inception_v4_2016_09_09.tar.gz'),
    ZooEntry('incres_v2', 'inception_resnet_v2', 'inception_resnet_v2_2016_08_30.tar.gz'),
    ZooEntry('res_v2_101', 'resnet_v2_101', 'resnet_v2_101_2017_04_14.tar.gz'),
    ZooEntry('res_v2_152', 'resnet_v2_152', 'resnet_v2_152_2017_04_14.tar.gz'),
    ZooEntry('vgg_16', 'vgg_16', 'vgg_16_2016_08_28.tar.gz'),
    ZooEntry('adv_inc_v3', 'inception_v3', 'adv_inception_v3_2017_08_18.tar.gz'),
    ZooEntry('ens3_adv_inc_v3', 'inception_v3', 'ens3_adv_inception_v3_2017_08_18.tar.gz'),
    ZooEntry('ens4_adv_inc_v3', 'inception_v3', 'ens4_adv_inception_v3_2017_08_18.tar.gz'),
    ZooEntry('ens_adv_incres_v2', 'inception_resnet_v2',
             'ens_adv_inception_resnet_v2_2017_08_18.tar.gz'),
]}

SURROGATES = ('inc_v3', 'inc_v4', 'incres_v2', 'res_v2_101')  # the paper's normal models
ADV_TRAINED = ('ens3_adv_inc_v3', 'ens4_adv_inc_v3', 'ens_adv_incres_v2')  # its defended ones
CLASSIFIERS = SURROGATES + ADV_TRAINED  # what svrens-evaluate tests on by default


def check_names(names, flag='--models'):
    """ValueError naming the names in `names` that are not zoo names, listing the valid ones."""
    unknown = [name for name in names if name not in ZOO]
    if unknown:
        raise ValueError(f'{flag}: unknown model{"s" * (len(unknown) > 1)} '
                         f'{", ".join(unknown)}; zoo names: {", ".join(ZOO)}')
