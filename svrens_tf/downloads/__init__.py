"""Everything svrens_tf fetches from the network, each checked before it is kept.

- fetch.py: one URL to one file, atomically, resuming an interrupted transfer;
- nips17.py: the NIPS 2017 DEV set, every PNG against a sha256 list;
- checkpoints.py: the released slim checkpoints, checked against their architecture and
  recorded in the manifest of svrens_tf/models/manifest.py.

`install` is svrens-download's one call. Imports go one way: this package uses
`svrens_tf.models`; the models never import it, so loading a model does not pull in download
code.
"""


def install(models=(), dataset=None, defenses=(), *, checkpoint_dir=None, base_url=None,
            dataset_url=None, defense_source=None):
    """Install the checkpoints of zoo names `models` (checkpoints.install, from `base_url`),
    then the NIPS17 DEV set into `dataset` if given (nips17.download_dataset, from
    `dataset_url`), then the converted weights of `defenses` (defense_weights.install, from
    `defense_source` offline). Raises fetch.FetchError or CheckpointError, one line each."""
    from svrens_tf.downloads import checkpoints, defense_weights, nips17  # TensorFlow: on use
    for name in models:
        checkpoints.install(name, checkpoint_dir, base_url)
    if dataset:
        nips17.download_dataset(dataset, dataset_url)
    for name in defenses:
        defense_weights.install(name, checkpoint_dir, defense_source)
