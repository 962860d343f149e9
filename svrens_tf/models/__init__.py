"""The slim ImageNet classifiers: build an architecture, or load a checkpoint into it by name.

    m = models.load('ens3_adv_inc_v3')                   # zoo name: the verified download
    m = models.load('inception_v3', 'path/model.ckpt')   # arch or zoo name + V1 file, V2 prefix
                                                         # or a directory holding one checkpoint
    out = m(x)                                           # ModelOutput(logits, aux_logits)
"""
import importlib
import os

from svrens_tf.models.zoo import ZOO

# architecture -> (module of svrens_tf.models, class): imported on first use, so that the zoo's
# names and model lists (zoo.py) can be read without loading TensorFlow (experiments, report)
_ARCHITECTURES = {
    'inception_v3': ('inception_v3', 'InceptionV3'),
    'inception_v4': ('inception_v4', 'InceptionV4'),
    'inception_resnet_v2': ('inception_resnet_v2', 'InceptionResnetV2'),
    'resnet_v2_50': ('resnet_v2', 'ResnetV2_50'),
    'resnet_v2_101': ('resnet_v2', 'ResnetV2_101'),
    'resnet_v2_152': ('resnet_v2', 'ResnetV2_152'),
    'vgg_16': ('vgg_16', 'Vgg16'),
}
_FROM_MODULES = {'CheckpointError': 'checkpoint', 'ModelOutput': 'layers'}


def __getattr__(name):
    """ARCHITECTURES ({architecture: class}), CheckpointError and ModelOutput, imported (with
    TensorFlow) when first asked for."""
    if name == 'ARCHITECTURES':
        value = {arch: getattr(importlib.import_module(f'{__name__}.{module}'), cls)
                 for arch, (module, cls) in _ARCHITECTURES.items()}
    elif name in _FROM_MODULES:
        value = getattr(importlib.import_module(f'{__name__}.{_FROM_MODULES[name]}'), name)
    else:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    globals()[name] = value
    return value


def _architectures():
    return globals().get('ARCHITECTURES') or __getattr__('ARCHITECTURES')


def build(arch, scope=None, num_classes=1001):
    """A model of architecture `arch` with every variable created (zeros); `scope` defaults
    to the slim one (InceptionV3, resnet_v2_101, ...)."""
    try:
        cls = _architectures()[arch]
    except KeyError:
        raise ValueError(f'unknown architecture {arch!r}; known: '
                         f'{", ".join(_architectures())}') from None
    return cls(scope=scope, num_classes=num_classes).build()


def load(name, checkpoint=None, scope=None):
    """Build `name` (architecture or zoo name) and restore its weights by variable name.

    `checkpoint`: V1 file, V2 prefix, or a directory holding one checkpoint. For a zoo name it
    may be omitted (the verified download in the default checkpoint folder) or be the
    checkpoint folder that svrens-download fills (`<name>/` inside). Folders written by
    svrens-download are re-hashed against their manifest first. The checkpoint's own scope may
    differ from `scope` (renamed copies such as Ens3AdvInceptionV3 load too). The model's
    `checkpoint_path` is the V1 file or V2 prefix read, its `checkpoint_digests` the sha256 of
    each file the manifest check hashed ({absolute path: sha256}; {} without a manifest), for
    checkpoint.sha256. Raises CheckpointError naming the file or variable at fault.
    """
    from svrens_tf.models import manifest
    from svrens_tf.models.checkpoint import restore
    architectures = _architectures()
    digests = {}
    if name in ZOO:
        arch = ZOO[name].arch
        if checkpoint is None or manifest.is_checkpoint_root(checkpoint, name):
            checkpoint, digests = manifest.installed_checkpoint(name, checkpoint)
    elif name in architectures:
        arch = name
        if checkpoint is None:
            raise ValueError(f'{name} is an architecture: give a checkpoint, or use a zoo name '
                             f'({", ".join(n for n, e in ZOO.items() if e.arch == name)})')
    else:
        raise ValueError(f'unknown model {name!r}; architectures: {", ".join(architectures)}; '
                         f'zoo: {", ".join(ZOO)}')
    if os.path.isfile(os.path.join(checkpoint, manifest.MANIFEST)):  # svrens-download wrote it
        checkpoint, digests = manifest.verified_checkpoint(checkpoint)
    model = build(arch, scope)
    model.checkpoint_path = restore(model, checkpoint)  # run records name the files read
    model.checkpoint_digests = digests
    return model


__all__ = ['ARCHITECTURES', 'CheckpointError', 'ModelOutput', 'ZOO', 'build', 'load']
