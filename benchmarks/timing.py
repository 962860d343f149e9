"""What the speed benchmarks (model_speed, defense_speed) share: one fresh process per row, so
that peak memory is the row's own; a first call timed apart from the warm calls (tracing and
graph optimisation); warm wall and process-CPU seconds (CPU time is less sensitive to other
load on the machine); and a markdown table whose rows end with the load average."""
import multiprocessing
import os
import platform
import resource
import time


def run_isolated(measure, *args):
    """measure(*args) in a fresh (spawned) process; returns its result."""
    with multiprocessing.get_context('spawn').Pool(1) as pool:
        return pool.apply(measure, args)


def timed(first, warm, count):
    """(first-call s, warm wall s, warm CPU s): `first()` once, then each call in `warm`, the
    warm totals divided by `count` (steps, images)."""
    start = time.perf_counter()
    first()
    first_s = time.perf_counter() - start
    start, cpu_start = time.perf_counter(), time.process_time()
    for call in warm:
        call()
    return (first_s, (time.perf_counter() - start) / count,
            (time.process_time() - cpu_start) / count)


def device_and_peak_mib():
    """('GPU' or 'CPU', peak memory in MiB): TF's peak allocation on GPU, else the process's
    maximum RSS."""
    import tensorflow as tf
    if tf.config.list_physical_devices('GPU'):
        return 'GPU', tf.config.experimental.get_memory_info('GPU:0')['peak'] / 2 ** 20
    return 'CPU', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def machine():
    """'TF_ENABLE_ONEDNN_OPTS=...; N CPUs (arch)' for the line above a table."""
    onednn = os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset (TF default: on for x86 CPUs)')
    return f'TF_ENABLE_ONEDNN_OPTS={onednn}; {os.cpu_count()} CPUs ({platform.machine()})'


def print_header(columns):
    print('| ' + ' | '.join(columns + ['load average']) + ' |')
    print('|' + '---|' * (len(columns) + 1), flush=True)


def print_row(cells):
    """One table row, the current 1-minute load average appended."""
    print('| ' + ' | '.join(cells + [f'{os.getloadavg()[0]:.1f}']) + ' |', flush=True)
