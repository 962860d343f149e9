"""Run an experiment plan's steps (svrens_tf/experiments.py) in one process, and its attacks
as shards in parallel processes, one per GPU.

`InProcess` runs a step as `python -m svrens_tf.cli.PROGRAM` would, but here: the program's own
flags parse the step's arguments and its own `main` runs, with one pipeline.ModelCache shared
by every step, so TF is imported once and each checkpoint loaded once for the whole plan. The
programs resume, write atomically and keep their run records as in separate processes, and
write the same bytes (tests/test_executor.py).

`run_shards` starts one worker process per GPU (CUDA_VISIBLE_DEVICES=<gpu>), worker i running
shard i of N of every attack step (`--num_shards N --shard_index i`) in one process. Batches
and their randomness do not depend on the shard, so the shards together write the images of
one run. The caller then runs the whole plan once more: its attack steps find every image
done, and the evaluations and the report follow (docs/slurm.md does the same with a job
array, through `run_attacks.sh --shard I/N`).

    python -m svrens_tf.executor PLAN.json LOG [--shard I/N]   # a plan saved by save_plan
"""
import dataclasses
import importlib
import inspect
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from absl import app, flags

class InProcess:
    """`run(step) -> exit status`: each step's program run in this process.

    Every program defines its flags on absl's global FLAGS and some share a name with another
    program's (svrens-attack's --input_dir is a folder, svrens-evaluate's a list), so they
    cannot be registered together: the flags of the program about to run replace the last
    one's, and are parsed afresh (defaults restored) for every step.
    """

    def __init__(self, models=None, deterministic=None):
        from svrens_tf import pipeline, runtime
        # before any step's first op (a download step may run some), as svrens-attack and
        # svrens-evaluate do first in their own processes; `deterministic`: see determinism()
        runtime.configure(deterministic)
        self.models = models or pipeline.ModelCache()
        self._flags = {}          # program -> its Flag objects
        self._active = None

    def _activate(self, program):
        registry = flags.FLAGS
        if self._active == program:
            return
        if self._active is not None:
            for flag in self._flags[self._active]:
                delattr(registry, flag.name)
        module_name = f'svrens_tf.cli.{program}'
        if program in self._flags:
            for flag in self._flags[program]:
                registry[flag.name] = flag
                registry.register_flag_by_module(module_name, flag)
        else:
            importlib.import_module(module_name)
            self._flags[program] = registry.get_flags_for_module(module_name)
        self._active = program

    def __call__(self, step):
        self._activate(step.program)
        module = sys.modules[f'svrens_tf.cli.{step.program}']
        argv = [module.__file__, *step.args]
        takes_models = 'models' in inspect.signature(module.main).parameters
        kwargs = {'models': self.models} if takes_models else {}  # a program that loads models
        saved_argv, sys.argv = sys.argv, argv  # run records keep the program's argv
        flags.FLAGS.unparse_flags()
        try:
            flags.FLAGS(argv)
            module.main(argv[:1], **kwargs)
        except (flags.Error, app.UsageError) as err:
            print(f'FATAL Flags parsing error: {err}', file=sys.stderr, flush=True)
            return 1
        except SystemExit as end:  # what the program's process would have exited with
            if isinstance(end.code, str):
                print(end.code, file=sys.stderr, flush=True)
                return 1
            return end.code or 0
        finally:
            sys.argv = saved_argv
        return 0


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
    """ValueError if the attack steps shard themselves already, or for --gpus with --shard."""
    if both:
        raise ValueError('--gpus and --shard exclude each other')
    for step in steps:
        if step.program == 'attack' and {'num_shards', 'shard_index'} & set(dict(step.flags)):
            raise ValueError('the plan shards its attacks itself: drop --num_shards and '
                             '--shard_index from the svrens-attack flags')


def shard_steps(steps, shard_index, num_shards):
    """The plan's attack steps, each restricted to shard `shard_index` of `num_shards`."""
    check_shardable(steps)
    return [dataclasses.replace(step, flags=step.flags + (('num_shards', num_shards),
                                                          ('shard_index', shard_index)))
            for step in steps if step.program == 'attack']


def run_attack_shard(steps, shard, log_path):
    """Shard `shard` = (I, N) of every attack step of the plan, in this process; exit status."""
    from svrens_tf import experiments
    return experiments.execute(shard_steps(steps, *shard), log_path,
                               run_step=InProcess(deterministic=determinism(steps)))


def save_plan(steps, path):
    pathlib.Path(path).write_text(json.dumps([dataclasses.asdict(s) for s in steps]) + '\n')


def load_plan(path):
    from svrens_tf import experiments
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
    from svrens_tf import experiments
    return experiments.execute(steps, argv[1],
                               run_step=InProcess(deterministic=determinism(steps)))


if __name__ == '__main__':
    sys.exit(main())
