"""The NIPS17 external-defense adapter, end to end on small protocol programs."""
import sys
import textwrap

import imageio.v3 as iio
import numpy as np
import pytest

from svrens_tf.defenses import external

# A defense following the protocol: label = 1 + (sum of the image's pixels mod 1000).
PROTOCOL_DEFENSE = '''
import os, sys
import imageio.v3 as iio
input_dir, output_file = sys.argv[1:3]
with open(output_file, 'w') as out:
    for name in sorted(os.listdir(input_dir)):
        label = 1 + int(iio.imread(os.path.join(input_dir, name)).sum()) % 1000
        out.write(f'{name},{label}\\n')
'''


def program(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


@pytest.fixture
def image_dir(tmp_path, rng):
    folder = tmp_path / 'images'
    folder.mkdir()
    images = {f'id{i}': rng.randint(0, 256, size=(8, 8, 3)).astype(np.uint8) for i in range(3)}
    for image_id, image in images.items():
        iio.imwrite(folder / f'{image_id}.png', image)
    return folder, images


def test_a_protocol_program_is_evaluated_end_to_end(tmp_path, image_dir):
    folder, images = image_dir
    labels = external.run_defense(program(tmp_path, 'defense.py', PROTOCOL_DEFENSE), folder, 60)
    assert labels == {k: 1 + int(v.sum()) % 1000 for k, v in images.items()}


def test_external_defense_is_a_callable_on_uint8_batches(tmp_path, rng):
    images = rng.randint(0, 256, size=(2, 299, 299, 3)).astype(np.uint8)
    defense = external.ExternalDefense(program(tmp_path, 'defense.py', PROTOCOL_DEFENSE), 60)
    expected = [1 + int(image.sum()) % 1000 for image in images]
    assert defense(images).tolist() == expected


def test_a_crash_reports_status_and_stderr(tmp_path, image_dir):
    crash = program(tmp_path, 'crash.py', 'import sys\nsys.exit("model file missing")\n')
    with pytest.raises(external.DefenseError, match='status 1(.|\n)*model file missing'):
        external.run_defense(crash, image_dir[0], 60)


def test_a_slow_program_times_out(tmp_path, image_dir):
    slow = program(tmp_path, 'slow.py', 'import time\ntime.sleep(60)\n')
    with pytest.raises(external.DefenseError, match='timed out after 1 s'):
        external.run_defense(slow, image_dir[0], 1)


@pytest.mark.parametrize('rows, message', [
    ('id0,5\nid1,6\n', 'no prediction for 1 of 3'),
    ('id0,5\nid1,6\nid2,x\n', 'not an integer'),
    ('id0,5\nid1,6\nid2,0\n', 'outside 1..1000'),
    ('id0,5\nid1,6\nid2,7,8\n', 'expected "ImageId,label"'),
    ('id0,5\nid1,6\nid2,7\nid9,1\n', 'unknown ImageId'),
    ('id0,5\nid0,5\nid1,6\nid2,7\n', 'appears twice'),
])
def test_bad_predictions_are_named(tmp_path, image_dir, rows, message):
    writer = program(tmp_path, 'writer.py',
                     f'import sys\nopen(sys.argv[2], "w").write({rows!r})\n')
    with pytest.raises(external.DefenseError, match=message):
        external.run_defense(writer, image_dir[0], 60)


@pytest.mark.parametrize('payload, message', [
    (b'id0,5\n\xff\xfe\x00\x89PNG\r\n', r'binary output, not "ImageId,label" text rows '
                                      r'\(byte 6 is not UTF-8\)'),
    (b'id0,5\nid1,\x006\nid2,7\n', r"writer\.py'\] on .*images: .*predictions\.csv:2: label "
                                     r"'\\x006' is not an integer"),
])
def test_binary_output_is_one_defense_error(tmp_path, image_dir, payload, message):
    writer = program(tmp_path, 'writer.py', 'import sys\nsys.stdout.buffer.write(%r)\n'
                     'open(sys.argv[2], "wb").write(%r)\n' % (payload, payload))
    with pytest.raises(external.DefenseError, match=message):
        external.run_defense(writer, image_dir[0], 60)


def test_header_and_png_suffixes_are_accepted(tmp_path, image_dir):
    rows = 'ImageId,label\nid0.png,5\nid1,6\nid2.png,7\n'
    writer = program(tmp_path, 'writer.py', f'import sys\nopen(sys.argv[2], "w").write({rows!r})\n')
    assert external.run_defense(writer, image_dir[0], 60) == {'id0': 5, 'id1': 6, 'id2': 7}


def test_silent_programs_shell_strings_and_missing_programs_are_refused(tmp_path, image_dir):
    with pytest.raises(external.DefenseError, match='wrote no'):
        external.run_defense(program(tmp_path, 'noop.py', 'pass\n'), image_dir[0], 60)
    with pytest.raises(ValueError, match='argument list'):
        external.run_defense(f'{sys.executable} defense.py', image_dir[0], 60)
    with pytest.raises(external.DefenseError, match='cannot start'):
        external.run_defense([str(tmp_path / 'absent')], image_dir[0], 60)
    with pytest.raises(ValueError, match='no PNG'):
        external.run_defense([sys.executable], tmp_path / 'empty', 60)
