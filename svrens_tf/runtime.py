"""The execution settings an attack's bytes depend on, fixed before TensorFlow starts work.

Sign steps turn a last-bit difference of a gradient into whole eps/T steps, so a run is only
reproducible if every float sum is ordered the same way in every process. `configure` (the
programs call it first) runs independent ops one at a time: one inter-op thread, so the
branches of an Inception block and the surrogates of an ensemble no longer race for the
intra-op threads. It is on by default on CPU, where it leaves the bytes of a run as they were
(it only removes the race) and costs little; on GPU it is on request (`--deterministic`) and
adds TensorFlow's op determinism (deterministic GPU kernels). Op determinism stays off on CPU:
it would change the bytes once, by swapping the fused cross-entropy kernel for log-softmax +
gather, without making CPU kernels any more repeatable.

`settings` reports what the bytes still depend on: the device, the intra-op thread count,
whether oneDNN kernels are in use (TF_ENABLE_ONEDNN_OPTS, read once when TensorFlow is
imported) and the two settings above. Run records keep it; `differences` names what changed.
"""
import os


def _default_threads(variable):
    """TensorFlow's default pool size: $variable if set, else the CPUs this process may use."""
    value = os.environ.get(variable, '').strip()
    return int(value) if value.isdigit() and int(value) > 0 else len(os.sched_getaffinity(0))


def configure(deterministic=None):
    """Apply the deterministic settings before TensorFlow's first op and return `settings()`.

    deterministic: None = on CPU only (no GPU visible), True/False = force; op determinism is
    turned on only where a GPU is visible.
    """
    import tensorflow as tf
    gpus = tf.config.list_physical_devices('GPU')
    if deterministic is None:
        deterministic = not gpus
    if deterministic:
        if tf.config.threading.get_inter_op_parallelism_threads() != 1:
            try:
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                raise RuntimeError('svrens_tf.runtime.configure() must run before TensorFlow '
                                   'runs its first op (thread pools are fixed then)') from None
        if gpus:
            tf.config.experimental.enable_op_determinism()
    return settings()


def settings():
    """{device, gpus, intra_op_threads, inter_op_threads, onednn, op_determinism}: what the
    bytes of a run depend on besides its inputs, flags and versions."""
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # no public getter for this
    gpus = tf.config.list_physical_devices('GPU')
    return {'device': 'gpu' if gpus else 'cpu',
            'gpus': [tf.config.experimental.get_device_details(g).get('device_name', g.name)
                     for g in gpus],
            'intra_op_threads': (tf.config.threading.get_intra_op_parallelism_threads()
                                 or _default_threads('TF_NUM_INTRAOP_THREADS')),
            'inter_op_threads': (tf.config.threading.get_inter_op_parallelism_threads()
                                 or _default_threads('TF_NUM_INTEROP_THREADS')),
            'onednn': onednn_enabled(),
            'op_determinism': tf_config.is_op_determinism_enabled()}


def onednn_enabled():
    """True if TensorFlow runs oneDNN kernels (decided by TF_ENABLE_ONEDNN_OPTS at import)."""
    from tensorflow.python.util import _pywrap_util_port  # no public getter
    return bool(_pywrap_util_port.IsMklEnabled())


def differences(recorded, current):
    """['name: A before, B now', ...] for each setting that differs between two reports."""
    return [f'{name}: {recorded.get(name)!r} before, {current.get(name)!r} now'
            for name in sorted(set(recorded) | set(current))
            if recorded.get(name) != current.get(name)]
