"""Registry of the ten released TF-slim ImageNet checkpoints (download.tensorflow.org/models/)."""
import dataclasses

BASE_URL = 'http://download.tensorflow.org/models/'


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    name: str        # short name used on command lines (inc_v3, ens3_adv_inc_v3, ...)
    arch: str        # architecture in models.ARCHITECTURES
    archive: str     # tarball name under BASE_URL
    member: str      # checkpoint inside the tarball, best knowledge (the loader searches anyway)
    scope: str       # top-level variable scope inside the checkpoint

    @property
    def url(self):
        return BASE_URL + self.archive


ZOO = {e.name: e for e in [
    ZooEntry('inc_v3', 'inception_v3', 'inception_v3_2016_08_28.tar.gz',
             'inception_v3.ckpt', 'InceptionV3'),
    ZooEntry('inc_v4', 'inception_v4', 'inception_v4_2016_09_09.tar.gz',
             'inception_v4.ckpt', 'InceptionV4'),
    ZooEntry('incres_v2', 'inception_resnet_v2', 'inception_resnet_v2_2016_08_30.tar.gz',
             'inception_resnet_v2_2016_08_30.ckpt', 'InceptionResnetV2'),
    ZooEntry('res_v2_101', 'resnet_v2_101', 'resnet_v2_101_2017_04_14.tar.gz',
             'resnet_v2_101.ckpt', 'resnet_v2_101'),
    ZooEntry('res_v2_152', 'resnet_v2_152', 'resnet_v2_152_2017_04_14.tar.gz',
             'resnet_v2_152.ckpt', 'resnet_v2_152'),
    ZooEntry('vgg_16', 'vgg_16', 'vgg_16_2016_08_28.tar.gz', 'vgg_16.ckpt', 'vgg_16'),
    ZooEntry('adv_inc_v3', 'inception_v3', 'adv_inception_v3_2017_08_18.tar.gz',
             'adv_inception_v3.ckpt', 'InceptionV3'),
    ZooEntry('ens3_adv_inc_v3', 'inception_v3', 'ens3_adv_inception_v3_2017_08_18.tar.gz',
             'ens3_adv_inception_v3.ckpt', 'InceptionV3'),
    ZooEntry('ens4_adv_inc_v3', 'inception_v3', 'ens4_adv_inception_v3_2017_08_18.tar.gz',
             'ens4_adv_inception_v3.ckpt', 'InceptionV3'),
    ZooEntry('ens_adv_incres_v2', 'inception_resnet_v2',
             'ens_adv_inception_resnet_v2_2017_08_18.tar.gz',
             'ens_adv_inception_resnet_v2.ckpt', 'InceptionResnetV2'),
]}
