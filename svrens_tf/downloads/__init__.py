"""Everything svrens_tf fetches from the network, each checked before it is kept.

- fetch.py: one URL to one file, atomically, resuming an interrupted transfer;
- nips17.py: the NIPS 2017 DEV set, every PNG against a sha256 list;
- checkpoints.py: the released slim checkpoints, checked against their architecture and
  recorded in the manifest of svrens_tf/models/manifest.py.

Imports go one way: this package uses `svrens_tf.models`; the models never import it, so
loading a model does not pull in download code.
"""
