"""Post-processing stage 'ti': TI smoothing of directions (identity when ti_kernel_size is 0)."""
from svrens_tf.attacks import smoothing


def post_process(d, cfg):
    if not cfg.ti_kernel_size:
        return d
    return smoothing.smooth(d, smoothing.gaussian_kernel(cfg.ti_kernel_size, cfg.ti_nsig))
