"""The steps of an experiment as plain functions of paths, model names and settings: attack a
folder, evaluate folders, write the report. The programs in svrens_tf/cli/ parse flags and call
one of these; nothing here reads flags.

Models come through a loader `(zoo name, checkpoint_dir) -> model`. Each call makes its own
ModelCache unless given one: pass the same cache to several steps to load every checkpoint once
in one process.
"""
import dataclasses
import os
import pathlib
import shutil
import time

import numpy as np
import tensorflow as tf

from svrens_tf import attacks, data, evaluate, files, records, report, tables

ATTACK_RECORD = 'attack_run'
EVALUATION_RECORD = 'eval_run.json'
EVALUATION_LOCK = 'eval_run'


def load_model(name, checkpoint_dir):
    """The default loader: zoo model `name` from `checkpoint_dir` (svrens_tf.models.load),
    batch norm folded into the kernels (one copy of the weights under an input gradient)."""
    from svrens_tf import models
    return models.load(name, checkpoint_dir).fold_batch_norm()


class ModelCache:
    """A loader that loads each (name, checkpoint_dir) once and keeps it, and takes the sha256
    of the checkpoint each model was read from once (`checkpoint`)."""

    def __init__(self, load=None):
        self._load = load
        self._models = {}
        self._checkpoints = {}

    def __call__(self, name, checkpoint_dir):
        key = (name, checkpoint_dir)
        if key not in self._models:
            self._models[key] = (self._load or load_model)(name, checkpoint_dir)
        return self._models[key]

    def checkpoint(self, name, checkpoint_dir):
        """{'path', 'sha256'} of the checkpoint model `name` was loaded from (its
        `checkpoint_path`, as models.load sets it; sha256: models.checkpoint.sha256, from the
        digests its manifest check took where there was one), or None for a model its loader
        made without one."""
        key = (name, checkpoint_dir)
        if key not in self._checkpoints:
            model = self(name, checkpoint_dir)
            path = getattr(model, 'checkpoint_path', None)
            if path is not None:
                from svrens_tf.models import checkpoint
                path = {'path': str(path), 'sha256': checkpoint.sha256(
                    path, getattr(model, 'checkpoint_digests', None))}
            self._checkpoints[key] = path
        return self._checkpoints[key]


def default_batch_size(cfg):
    """10 images per attack batch, 4 with SI copies (as in the authors' scripts)."""
    return 4 if cfg.si_copies > 1 else 10


def attack_folder(input_dir, output_dir, cfg, surrogates, *, labels=None, resize=False,
                  checkpoint_dir=None, batch_size=None, num_shards=1, shard_index=0,
                  flags=None, models=None):
    """Write the adversarial `<ImageId>.png` of this shard of `input_dir` into `output_dir`.

    `cfg`: an attacks.AttackConfig; `surrogates`: zoo names; `models`: a loader (ModelCache).
    Images already done (valid PNG within cfg.max_epsilon) are skipped, whole batches are
    recomputed otherwise; `output_dir`/attack_run*.json records the run (`flags`: the options
    to keep in it, a plain dict), with each surrogate's checkpoint path and sha256. DataError
    for bad input, before anything is written, also for a folder attacked with other settings
    or other checkpoint bytes.
    """
    started = time.time()
    batch_size = batch_size or default_batch_size(cfg)
    models = models or ModelCache()
    image_dir = data.resolve_image_dir(input_dir)
    dataset = data.load_dataset(image_dir, labels, resize, image_ids=[])
    planned = data.plan_batches(dataset.image_ids, batch_size, num_shards, shard_index)
    data.check_images(dataset, [i for batch in planned for i in batch])
    if cfg.targeted and set(dataset.targets) != set(dataset.labels):
        raise data.DataError(f'{dataset.labels_csv}: --targeted needs a TargetClass for every '
                             'image (dev_dataset.csv)')
    output_dir = data.check_output_dir(output_dir, input_dir, dataset)
    settings = {'config': dataclasses.asdict(cfg), 'models': list(surrogates),
                'batch_size': batch_size, 'resize': resize,
                'labels_csv': dataset.labels_csv.name}
    shard = f'.shard{shard_index}of{num_shards}' if num_shards > 1 else ''
    record = records.RunRecord(output_dir / f'{ATTACK_RECORD}{shard}.json', settings,
                               flags or {})
    record.check_folder_settings(output_dir.glob(f'{ATTACK_RECORD}*.json'),
                                 added_fields={'config': attacks.config.DEFAULTS})
    record.check_folder_runtime(output_dir.glob(f'{ATTACK_RECORD}*.json'))
    files.check_unlocked(output_dir, record.path.stem)  # before minutes of model loading

    def pending_batches():
        return [batch for batch in planned if not all(
            (output_dir / f'{i}.png').is_file() and data.is_done(
                output_dir / f'{i}.png', data.read_image(dataset.path(i), dataset.resize),
                cfg.max_epsilon) for i in batch)]

    pending = pending_batches()
    loaded = time.time()
    ensemble = [models(name, checkpoint_dir) for name in surrogates] if pending else []
    with files.new_folder(output_dir), files.folder_lock(output_dir, record.path.stem):
        if record.reload():  # a run of this shard finished while the models loaded
            pending = pending_batches()
            ensemble = ensemble or [models(name, checkpoint_dir) for name in surrogates]
        read_from = _check_checkpoints(record, output_dir.glob(f'{ATTACK_RECORD}*.json'),
                                       {name: models.checkpoint(name, checkpoint_dir)
                                        for name in surrogates} if ensemble else None)
        num_pending = sum(map(len, pending))
        num_planned = sum(map(len, planned))
        files.remove_stale_temporaries(output_dir)
        run = record.start(images=num_planned, skipped=num_planned - num_pending, seed=cfg.seed,
                           attacked=0, gradient_passes=0, checkpoints=read_from,
                           model_load_s=round(time.time() - loaded, 3))
        print(f'{num_pending} images to attack in {len(pending)} batches '
              f'({run["skipped"]} already done) -> {output_dir}')
        targets = dataset.targets if cfg.targeted else dataset.labels
        progress = tf.keras.utils.Progbar(num_pending, unit_name='image')
        for ids, images in data.batches(dataset, pending):
            clean = images[dataset.image_dir]
            result = attacks.attack(ensemble, clean / 127.5 - 1.0, [targets[i] for i in ids],
                                    cfg)
            adversarial = data.quantize(result.x_adv.numpy(), clean, cfg.max_epsilon)
            for image_id, image in zip(ids, adversarial):
                data.write_png(output_dir / f'{image_id}.png', image)
            run['attacked'] += len(ids)
            run['gradient_passes'] += result.gradient_passes
            record.save()
            progress.add(len(ids))
        record.finish(started)
    return output_dir


def _check_checkpoints(record, folder_records, loaded):
    """Record the sha256 of each surrogate's checkpoint in the run's settings and refuse a
    folder attacked with other checkpoint bytes (records.RunRecord.check_folder_checkpoints);
    returns {surrogate: checkpoint path read}. `loaded`: {surrogate: ModelCache.checkpoint},
    or None when no model was loaded (nothing to attack): the settings then keep the sha256s
    the folder's records name, those of the images there."""
    folder_records = sorted(folder_records)
    if loaded is None:
        recorded = records.folder_checkpoints(folder_records)
        if recorded is not None:
            record.settings[records.CHECKPOINTS] = recorded
        return {}
    record.settings[records.CHECKPOINTS] = {n: c and c['sha256'] for n, c in loaded.items()}
    read_from = {n: c and c['path'] for n, c in loaded.items()}
    record.check_folder_checkpoints(folder_records, read_from)
    return read_from


def evaluate_folders(clean_dir, input_dirs, output_dir, classifiers, *, defenses=(),
                     defense_options=None, external=None, labels=None, resize=False,
                     checkpoint_dir=None, batch_size=10, seed=0, external_timeout_s=7200,
                     flags=None, models=None):
    """Evaluate the adversarial folders `input_dirs` (made from `clean_dir`) on zoo models
    `classifiers`, in-process `defenses` (names, with `defense_options` {name: {option: value}})
    and `external` NIPS17 defense programs ({name: argv}); write evaluation.json/.csv/.md,
    predictions.csv and eval_run.json into `output_dir`, each atomically. Returns the
    evaluation dict. `models`: a loader (ModelCache) shared with the defenses.

    Every classifier's prerequisites (checkpoints, weights, programs, a writable output folder)
    are checked, by loading, before the first one runs; each one's predictions are saved as it
    finishes (evaluate.Progress), and a rerun with the same settings keeps them."""
    from svrens_tf import defenses as defense_registry
    started = time.time()
    models = models or ModelCache()
    external = external or {}
    defense_options = {n: dict((defense_options or {}).get(n, {})) for n in defenses}
    dataset = data.load_dataset(clean_dir, labels, resize)
    folders = [data.load_dataset(d, dataset.labels_csv).image_dir for d in input_dirs]
    output_dir = data.check_output_dir(output_dir, clean_dir, dataset)
    defense_registry.require_weights(defenses, checkpoint_dir, defense_options)
    settings = {'clean_dir': str(dataset.image_dir), 'folders': [str(f) for f in folders],
                'defense_options': defense_options}
    common = {'clean_dir': str(dataset.image_dir), 'labels_csv': str(dataset.labels_csv),
              'resize': resize, 'checkpoint_dir': checkpoint_dir,
              'folders': {str(f): records.attack_settings(f) for f in folders}}
    runs = {name: {**common, 'model': name} for name in classifiers}
    runs.update({name: {**common, 'defense': name, 'seed': seed,
                        'options': defense_options[name]} for name in defenses})
    runs.update({name: {**common, 'external': command} for name, command in external.items()})
    files.check_unlocked(output_dir, EVALUATION_LOCK)
    progress = evaluate.Progress(output_dir)
    predictions = {name: progress.finished(name, run) for name, run in runs.items()}
    todo = [name for name, done in predictions.items() if done is None]
    classify = _classifiers([n for n in todo if n in classifiers],
                            [n for n in todo if n in defenses], defense_options,
                            checkpoint_dir, seed, models)
    for name in todo:
        if name in external:
            _check_program(name, external[name])
    all_folders = [dataset.image_dir] + folders
    seconds = {}
    with files.new_folder(output_dir), files.folder_lock(output_dir, EVALUATION_LOCK):
        for name in runs:
            if name not in todo:
                print(f'{name}: kept from {progress.path.name} (same settings)', flush=True)
                continue
            began = time.time()
            print(f'{name}: {len(all_folders)} folders x {len(dataset.image_ids)} images',
                  flush=True)
            if name in external:
                predictions[name] = {f: (external_labels(external[name], f, dataset,
                                                         external_timeout_s), None)
                                     for f in all_folders}
            else:
                predictions[name] = evaluate.predict(classify[name], dataset, all_folders,
                                                     batch_size)
            progress.save(name, runs[name], predictions[name])
            seconds[name] = round(time.time() - began, 3)
        evaluation = summarize(dataset, folders, predictions, batch_size)
        write_outputs(output_dir, dataset, folders, predictions, evaluation)
        record = records.RunRecord(output_dir / EVALUATION_RECORD, settings, flags or {})
        record.start(started, seed=seed, classifier_seconds=seconds)
        record.finish(started)
    return evaluation


def _classifiers(names, defenses, defense_options, checkpoint_dir, seed, models):
    """{name: classify} for zoo models and in-process defenses, all loaded now, so that a
    missing checkpoint or weight file stops the evaluation before anything is computed."""
    from svrens_tf import defenses as defense_registry
    from svrens_tf.models import CheckpointError
    classify = {name: evaluate.model_classifier(models(name, checkpoint_dir)) for name in names}
    for name in defenses:
        try:
            defense = defense_registry.build(name, checkpoint_dir, seed, load_model=models,
                                    **defense_options[name])
        except CheckpointError:
            raise
        except ValueError as err:
            raise data.DataError(f'defense {name}: {err}') from None
        classify[name] = evaluate.defense_classifier(defense)
    return classify


def _check_program(name, command):
    """DefenseError unless the external defense's program can be started."""
    from svrens_tf.defenses.external import DefenseError
    if shutil.which(command[0]) is None:
        raise DefenseError(f'external defense {name}: cannot run {command[0]!r}: no such '
                           'program, or it is not executable')


def external_labels(command, folder, dataset, timeout_s):
    """Labels [N] (dataset.image_ids order) a NIPS17 defense program gives the PNGs of
    `folder`; DataError if it leaves an image out."""
    from svrens_tf.defenses import external
    labels = external.run_defense(command, folder, timeout_s)
    missing = [i for i in dataset.image_ids if i not in labels]
    if missing:
        raise data.DataError(f'{folder}: {command[0]} gave no label for {missing[0]}.png')
    return np.array([labels[i] for i in dataset.image_ids], np.int32)


def summarize(dataset, folders, predictions, batch_size):
    """The evaluation dict: clean accuracy per classifier, and per folder the attack's recorded
    settings, the largest perturbation and each classifier's rates (evaluate.summarize)."""
    labels = [dataset.labels[i] for i in dataset.image_ids]
    clean = {name: by_folder[dataset.image_dir] for name, by_folder in predictions.items()}
    return {
        'clean_dir': str(dataset.image_dir),
        'labels_csv': str(dataset.labels_csv),
        'num_images': len(labels),
        'clean': {name: {'accuracy': 100.0 * float(np.mean(p == labels)),
                         'avg_loss': None if loss is None else float(np.mean(loss))}
                  for name, (p, loss) in clean.items()},
        'folders': {str(folder): {
            'attack': records.attack_settings(folder),
            'max_perturbation': evaluate.max_perturbation(dataset, folder, batch_size),
            'results': {name: evaluate.summarize(labels, clean[name][0], *by_folder[folder])
                        for name, by_folder in predictions.items()},
        } for folder in folders},
    }


def write_outputs(output_dir, dataset, folders, predictions, evaluation):
    """evaluation.json, evaluation.csv, evaluation.md and predictions.csv, each atomically."""
    files.write_atomic(output_dir / 'evaluation.json', tables.to_json(evaluation))
    files.write_atomic(output_dir / 'evaluation.csv', tables.evaluation_csv(evaluation))
    files.write_atomic(output_dir / 'evaluation.md', tables.evaluation_markdown(evaluation))
    rows = [['folder', 'classifier', 'ImageId', 'label', 'clean', 'adversarial', 'loss']]
    for name, by_folder in predictions.items():
        clean = by_folder[dataset.image_dir][0]
        for folder in folders:
            predicted, loss = by_folder[folder]
            for k, image_id in enumerate(dataset.image_ids):
                rows.append([str(folder), name, image_id, dataset.labels[image_id],
                             int(clean[k]), int(predicted[k]),
                             '' if loss is None else f'{loss[k]:.6g}'])
    files.write_atomic(output_dir / 'predictions.csv', tables.to_csv(rows))


def write_report(results_dir=None, folders=(), output=None):
    """report.md, report.json, report.csv and figures from run_attacks.sh's `results_dir`
    (default results/) or from svrens-evaluate output `folders`; `output` defaults to
    RESULTS/report.md, or report.md in the folder holding the folders. Returns the paths
    written; report.ReportError when there is nothing to report."""
    if folders:
        runs, unrecorded = report.load_evaluations(folders)
        parents = [str(pathlib.Path(f).resolve().parent) for f in folders]
        default = pathlib.Path(os.path.commonpath(parents)) / 'report.md'
    else:
        results_dir = pathlib.Path(results_dir or 'results')
        runs, unrecorded = report.load_results_dir(results_dir)
        default = results_dir / 'report.md'
    return report.write_report(report.build_report(runs, unrecorded), output or default)
