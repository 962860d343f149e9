"""svrens_tf: SVR-Ens and its base transfer attacks in TensorFlow 2, on the released TF-slim checkpoints."""
__version__ = '0.1.0'
