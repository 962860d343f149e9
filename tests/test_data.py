"""svrens_tf.data: NIPS17 folders, input policy, batching, shards, bound-safe atomic output."""
import csv
import shutil

import numpy as np
import pytest
import tensorflow as tf

from svrens_tf import data, files

IDS = ['0c7ac4a8c9dfa802', 'f43fbfe8a9ea876c']


def write_val_rs(folder, rows):
    with open(folder / 'val_rs.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['filename', 'label'])
        writer.writerows([f'{i}.png', label] for i, label in rows)


@pytest.fixture
def folder(shared_dir, tmp_path):
    """Two real NIPS17 images with a val_rs.csv beside them."""
    images = tmp_path / 'images'
    images.mkdir()
    for image_id in IDS:
        shutil.copy(shared_dir / 'nips17' / 'images' / f'{image_id}.png', images)
    write_val_rs(images, [(IDS[0], 306), (IDS[1], 884)])
    return images


def test_nips17_layout_detects_csv_and_images_folder(shared_dir):
    root = shared_dir / 'nips17'
    dataset = data.load_dataset(root, image_ids=[])
    assert dataset.image_dir == root / 'images'
    assert dataset.labels_csv.name == 'dev_dataset.csv'
    assert len(dataset.image_ids) == 1000
    labels, targets = data.read_labels(root / 'val_rs.csv')
    assert labels == dataset.labels and targets == {}
    assert dataset.labels['0c7ac4a8c9dfa802'] == 306
    assert dataset.targets['0c7ac4a8c9dfa802'] == 779
    assert data.load_dataset(root / 'images', image_ids=[]).labels_csv == dataset.labels_csv


def test_valid_folder_loads_sorted(folder):
    dataset = data.load_dataset(folder)
    assert dataset.image_ids == sorted(IDS)
    assert dataset.labels == {IDS[0]: 306, IDS[1]: 884}


def expect_error(match, *args, **kwargs):
    with pytest.raises(data.DataError, match=match) as info:
        data.load_dataset(*args, **kwargs)
    return str(info.value)


def test_missing_labels_csv(folder):
    (folder / 'val_rs.csv').unlink()
    expect_error('no labels csv', folder)
    expect_error('nope.csv: labels csv not found', folder, labels_csv=folder / 'nope.csv')


def test_listed_image_absent(folder):
    (folder / f'{IDS[1]}.png').unlink()
    expect_error(f'{IDS[1]}.png: listed in .* but missing', folder)


def test_unlisted_image(folder):
    shutil.copy(folder / f'{IDS[0]}.png', folder / 'extra.png')
    expect_error('extra.png: image not listed', folder)


@pytest.mark.parametrize('name', ['photo.jpg', 'photo.PNG'])
def test_non_png_extension(folder, name):
    (folder / name).write_bytes(b'x')
    expect_error(f'{name}: not a <ImageId>.png', folder)


def test_non_png_content(folder):
    jpeg = tf.io.encode_jpeg(data.read_image(folder / f'{IDS[0]}.png')).numpy()
    (folder / f'{IDS[0]}.png').write_bytes(jpeg)
    expect_error(f'{IDS[0]}.png: not a PNG file', folder)


def test_corrupt_png(folder):
    path = folder / f'{IDS[0]}.png'
    path.write_bytes(path.read_bytes()[:5000])
    expect_error(f'{IDS[0]}.png: corrupt PNG', folder)


def replace_image(folder, image):
    (folder / f'{IDS[0]}.png').write_bytes(tf.io.encode_png(image).numpy())


def test_grayscale_converted_to_rgb(folder):
    gray = np.arange(299 * 299, dtype=np.int64).reshape(299, 299, 1) % 256
    replace_image(folder, gray.astype(np.uint8))
    data.load_dataset(folder)
    image = data.read_image(folder / f'{IDS[0]}.png')
    assert image.shape == (299, 299, 3)
    np.testing.assert_array_equal(image, np.repeat(gray, 3, axis=2))


def test_rgba_rejected(folder):
    replace_image(folder, np.full((299, 299, 4), 200, np.uint8))
    expect_error(f'{IDS[0]}.png: RGBA PNG; alpha channels are rejected', folder)


def test_16_bit_rejected(folder):
    replace_image(folder, np.full((299, 299, 3), 60000, np.uint16))
    expect_error(f'{IDS[0]}.png: 16-bit PNG', folder)


def test_wrong_size_rejected_unless_resize(folder):
    replace_image(folder, np.full((300, 320, 3), 77, np.uint8))
    expect_error(f'{IDS[0]}.png: 320x300 image, expected 299x299', folder)
    dataset = data.load_dataset(folder, resize=True)
    [(ids, images)] = list(data.batches(dataset, [dataset.image_ids]))
    assert images[folder].shape == (2, 299, 299, 3)
    assert (images[folder][ids.index(IDS[0])] == 77).all()


@pytest.mark.parametrize('bad_id', ['../escape', 'a/b', '..', 'a\\b', ''])
def test_image_id_with_path_parts_rejected(folder, bad_id):
    write_val_rs(folder, [(IDS[0], 306), (bad_id, 1)])
    expect_error('is not a plain file name', folder)


def test_label_out_of_range_rejected(folder):
    write_val_rs(folder, [(IDS[0], 306), (IDS[1], 1001)])
    expect_error('val_rs.csv, line 3: label 1001 outside 1..1000', folder)


def test_output_folder_equal_to_input_rejected(folder):
    dataset = data.load_dataset(folder)
    with pytest.raises(data.DataError, match='output folder is the input folder'):
        data.check_output_dir(folder / '.', folder, dataset)
    with pytest.raises(data.DataError, match='output folder is the input folder'):
        data.check_output_dir(folder.parent, folder.parent, data.load_dataset(folder.parent))
    assert data.check_output_dir(folder.parent / 'adv', folder, dataset) == folder.parent / 'adv'


@pytest.mark.parametrize('eps', [16, 10.6])
def test_quantize_keeps_bound_where_rounding_would_exceed_it(eps):
    rng = np.random.RandomState(0)
    clean = rng.randint(0, 256, size=(4, 299, 299, 3)).astype(np.uint8)
    x_clean = clean / 127.5 - 1.0
    # steps of eps in [-1,1] units plus the float32 excess an attack's clip can leave
    step = 2 * eps / 255 * rng.choice([-1, 1], size=clean.shape) * (1 + 1e-6)
    x_adv = np.clip(x_clean + step, -1, 1).astype(np.float32)
    raw = np.round((x_adv.astype(np.float64) + 1) * 127.5)
    adv = data.quantize(x_adv, clean, eps)
    assert adv.dtype == np.uint8
    assert np.abs(adv.astype(int) - clean.astype(int)).max() == int(eps)
    if eps != int(eps):
        assert np.abs(raw - clean).max() > eps        # rounding alone would break the bound
    inside = np.clip(x_clean + 0.3 * step, -1, 1)
    np.testing.assert_array_equal(data.quantize(inside, clean, eps),
                                  np.round((inside + 1) * 127.5).astype(np.uint8))


def test_shards_partition_the_straight_batches():
    ids = [f'{i:03d}' for i in range(23)]
    straight = data.plan_batches(ids, 4)
    assert [len(b) for b in straight] == [4, 4, 4, 4, 4, 3]
    shards = [data.plan_batches(ids, 4, 3, k) for k in range(3)]
    assert sorted(map(tuple, sum(shards, []))) == sorted(map(tuple, straight))
    with pytest.raises(ValueError):
        data.plan_batches(ids, 4, 3, 3)


def test_batches_read_folders_side_by_side(folder, tmp_path):
    dataset = data.load_dataset(folder)
    other = tmp_path / 'other'
    other.mkdir()
    for image_id in IDS:
        data.write_png(other / f'{image_id}.png', 255 - data.read_image(dataset.path(image_id)))
    planned = [[IDS[0]], [IDS[1]]]
    got = list(data.batches(dataset, planned, [folder, other]))
    assert [ids for ids, _ in got] == planned
    for ids, images in got:
        clean = data.read_image(dataset.path(ids[0]))
        np.testing.assert_array_equal(images[folder][0], clean)
        np.testing.assert_array_equal(images[other][0], 255 - clean)


def test_write_png_is_atomic(tmp_path, monkeypatch):
    image = np.full((299, 299, 3), 9, np.uint8)

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        data.write_png(tmp_path / 'a.png', image)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    data.write_png(tmp_path / 'a.png', image)
    np.testing.assert_array_equal(data.read_image(tmp_path / 'a.png'), image)
    assert [p.name for p in tmp_path.iterdir()] == ['a.png']


def test_is_done_checks_decoding_and_bound(tmp_path):
    clean = np.full((299, 299, 3), 100, np.uint8)
    path = tmp_path / 'a.png'
    assert not data.is_done(path, clean, 16)
    data.write_png(path, clean + 16)
    assert data.is_done(path, clean, 16)
    assert not data.is_done(path, clean, 15)
    path.write_bytes(path.read_bytes()[:200])
    assert not data.is_done(path, clean, 16)
    (tmp_path / '.a.png.x.tmp').write_bytes(b'partial')
    files.remove_stale_temporaries(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ['a.png']
