"""Evaluation progress: each classifier's predictions kept as it finishes, reused on rerun only
under the same settings, and a damaged progress file named."""
import pathlib

import numpy as np
import pytest

from svrens_tf import data, evaluate


def predictions(seed, with_loss):
    rng = np.random.RandomState(seed)
    return {pathlib.Path(f'/x/{k}'): (rng.randint(1, 1001, 5).astype(np.int32),
                                      rng.rand(5).astype(np.float32) if with_loss else None)
            for k in range(3)}


def test_saved_predictions_come_back_only_under_the_same_settings(tmp_path):
    progress = evaluate.Progress(tmp_path)
    model, defense = predictions(0, True), predictions(1, False)
    progress.save('inc_v3', {'seed': 0}, model)
    progress.save('jpeg', {'seed': 0, 'options': {'quality': 75}}, defense)
    again = evaluate.Progress(tmp_path)
    for name, settings, expected in [('inc_v3', {'seed': 0}, model),
                                     ('jpeg', {'seed': 0, 'options': {'quality': 75}}, defense)]:
        got = again.finished(name, settings)
        assert got.keys() == expected.keys()
        for folder, (predicted, losses) in expected.items():
            np.testing.assert_array_equal(got[folder][0], predicted)
            assert got[folder][0].dtype == np.int32
            if losses is None:
                assert got[folder][1] is None
            else:
                np.testing.assert_array_equal(got[folder][1], losses)
    assert again.finished('jpeg', {'seed': 0, 'options': {'quality': 50}}) is None
    assert again.finished('inc_v4', {'seed': 0}) is None
    assert [p.name for p in tmp_path.iterdir()] == [evaluate.PROGRESS_FILE]


def test_a_damaged_progress_file_is_named(tmp_path):
    (tmp_path / evaluate.PROGRESS_FILE).write_text('{"classifiers": {"inc_v3": ')
    with pytest.raises(data.DataError, match=rf'{tmp_path / evaluate.PROGRESS_FILE}: '
                                             'unreadable .*; delete it'):
        evaluate.Progress(tmp_path)
