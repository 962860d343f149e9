"""Run an experiment plan's steps (svrens_tf/experiments.py) in one process, and its attacks
as shards in parallel processes, one per GPU. `run_experiments(options, ...)` is run_attacks.sh's
one call: plan, then print or run and log.

`InProcess` (svrens_tf/cli/in_process.py) runs a step as `python -m svrens_tf.cli.PROGRAM`
would, but in this process, with one pipeline.ModelCache shared by every step, so TF is
imported once and each checkpoint loaded once for the whole plan. The programs resume, write
atomically and keep their run records as in separate processes, and write the same bytes
(tests/test_executor.py).

`run_shards` starts one worker process per GPU (CUDA_VISIBLE_DEVICES=<gpu>), worker i running
shard i of N of every attack step (`--num_shards N --shard_index i`) in one process. Batches
and their randomness do not depend on the shard, so the shards together write the images of
one run. The caller then runs the whole plan once more: its attack steps find every image
done, and the evaluations and the report follow (docs/slurm.md does the same with a job
array, through `run_attacks.sh --shard I/N`).

    python -m svrens_tf.executor PLAN.json LOG [--shard I/N]   # a plan saved by save_plan
"""
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from svrens_tf import experiments
from svrens_tf.cli.in_process import InProcess


def determinism(steps):
    """True if an attack step asks for --deterministic, else None (runtime.configure's
    default): thread pools are fixed for the whole process, so the plan decides up front."""
    asked = any(step.program == 'attack' and name == 'deterministic' and
                str(value).lower() in ('none', 'true', '1')
                for step in steps for name, value in step.flags)
    return True if asked else None


def parse_shard(text):
    """(index, count) from 'I/N' with 0 <= I < N; ValueError otherwise."""
    index, sep, count = text.partition('/')
    if not (sep and index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise ValueError(f'--shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4')
    return int(index), int(count)


def check_shardable(steps, both=False):
    """experiments.PlanError if the attack steps shard themselves already, or for --gpus with
    --shard."""
    if both:
        raise experiments.PlanError('--gpus and --shard exclude each other')
    for step in steps:
        if step.program == 'attack' and {'num_shards', 'shard_index'} & set(dict(step.flags)):
            raise experiments.PlanError('the plan shards its attacks itself: drop --num_shards '
                                        'and --shard_index from the svrens-attack flags')


def shard_steps(steps, shard_index, num_shards):
    """The plan's attack steps, each restricted to shard `shard_index` of `num_shards`."""
    check_shardable(steps)
    return [dataclasses.replace(step, flags=step.flags + (('num_shards', num_shards),
                                                          ('shard_index', shard_index)))
            for step in steps if step.program == 'attack']


def run_attack_shard(steps, shard, log_path):
    """Shard `shard` = (I, N) of every attack step of the plan, in this process; exit status."""
    return experiments.execute(shard_steps(steps, *shard), log_path,
                               run_step=InProcess(deterministic=determinism(steps)))


def run_plan(steps, log_path, subprocesses=False, gpus=(), shard=None):
    """Run the plan: in this process (or one process per step with `subprocesses`), its
    attacks first in shards on `gpus` when given, or only shard `shard` = (I, N) of every
    attack; returns the exit status. Progress goes to the log at `log_path`."""
    log_path = pathlib.Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if shard:
        index, count = shard
        return run_attack_shard(
            steps, shard, log_path.with_name(f'{log_path.stem}.shard{index}of{count}.log'))
    run_step = None if subprocesses else InProcess(deterministic=determinism(steps))
    if gpus:
        downloads = [s for s in steps if s.program == 'download']
        steps = [s for s in steps if s.program != 'download']
        returncode = (experiments.execute(downloads, log_path, run_step=run_step) or
                      run_shards(steps, gpus, log_path,
                                 lambda message: experiments.log(log_path, message)))
        if returncode:
            return returncode
    return experiments.execute(steps, log_path, run_step=run_step)


def run_experiments(options, dry_run=False, subprocesses=False, gpus=None, shard=None):
    """run_attacks.sh: the plan of `options` (experiments.Options) printed (`dry_run`) or run as
    run_plan runs it, logged to RESULTS/run_attacks.log with a first line naming the options
    and a last one naming the report (a shard keeps its own log, without either); returns the
    exit status. experiments.PlanError, before anything is fetched or written, for options that
    a step would refuse or a plan that cannot be sharded."""
    steps = experiments.build_plan(options)
    if gpus or shard:
        check_shardable(steps, gpus and shard)
    if dry_run:
        sys.stdout.write(experiments.format_plan(steps))
        return 0
    results = pathlib.Path(options.results_dir)
    log_path = results / 'run_attacks.log'
    if not shard:
        results.mkdir(parents=True, exist_ok=True)
        experiments.log(log_path, f'run_attacks.sh tables={options.tables} '
                                  f'figures={options.figures} attacks={",".join(options.attacks)} '
                                  f'ensembles={",".join(options.ensembles)} seeds={options.seeds} '
                                  f'attack flags: {" ".join(options.attack_flags)}')
    returncode = run_plan(steps, log_path, subprocesses, gpus, shard)
    if returncode == 0 and not shard:
        experiments.log(log_path, f'report: {results / "report.md"}')
    return returncode


def save_plan(steps, path):
    pathlib.Path(path).write_text(json.dumps([dataclasses.asdict(s) for s in steps]) + '\n')


def load_plan(path):
    return [experiments.Step(**{**entry, 'flags': tuple(map(tuple, entry['flags']))})
            for entry in json.loads(pathlib.Path(path).read_text())]


def run_shards(steps, gpus, log_path, log):
    """Shard i of every attack step on GPU gpus[i], all shards in parallel, one process each;
    returns the first non-zero exit status, or 0 once every shard is done. `log(message)`."""
    log_path = pathlib.Path(log_path)
    with tempfile.TemporaryDirectory() as folder:
        plan = pathlib.Path(folder) / 'plan.json'
        save_plan(steps, plan)
        workers = []
        for index, gpu in enumerate(gpus):
            shard = f'{index}/{len(gpus)}'
            argv = [sys.executable, '-m', 'svrens_tf.executor', str(plan),
                    str(log_path.with_name(f'{log_path.stem}.shard{index}of{len(gpus)}.log')),
                    '--shard', shard]
            log(f'shard {shard} on GPU {gpu}: CUDA_VISIBLE_DEVICES={gpu} {" ".join(argv)}')
            workers.append(subprocess.Popen(argv, env={**os.environ,
                                                       'CUDA_VISIBLE_DEVICES': str(gpu)}))
        codes = [worker.wait() for worker in workers]
    failed = [(gpu, code) for gpu, code in zip(gpus, codes) if code]
    for gpu, code in failed:
        log(f'the shard on GPU {gpu} failed (exit {code}); rerun to resume')
    return failed[0][1] if failed else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != '--shard'):
        sys.exit('usage: python -m svrens_tf.executor PLAN.json LOG [--shard I/N]')
    steps = load_plan(argv[0])
    if len(argv) == 4:
        return run_attack_shard(steps, parse_shard(argv[3]), argv[1])
    return experiments.execute(steps, argv[1],
                               run_step=InProcess(deterministic=determinism(steps)))


if __name__ == '__main__':
    sys.exit(main())
