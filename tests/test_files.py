"""Output files get the user's umask; the folder lock keeps a second run out, and a killed
holder never leaves it stuck."""
import os
import signal
import subprocess
import sys
import time

import pytest

from svrens_tf import files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Takes the lock of argv[1], says so, then sleeps until killed.
HOLDER = '''
import sys, time
from svrens_tf import files
with files.folder_lock(sys.argv[1], 'attack_run'):
    print('locked', flush=True)
    time.sleep(60)
'''


def test_written_files_follow_the_umask(tmp_path):
    script = ('import os, sys; os.umask(int(sys.argv[2], 8)); from svrens_tf import files; '
              'files.write_atomic(sys.argv[1], b"x")')
    for umask, mode in [('022', 0o644), ('027', 0o640), ('002', 0o664)]:
        path = tmp_path / f'out_{umask}.json'
        subprocess.run([sys.executable, '-c', script, str(path), umask], check=True, cwd=ROOT)
        assert path.stat().st_mode & 0o777 == mode, umask
        assert path.read_bytes() == b'x'
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'out_002.json', 'out_022.json', 'out_027.json']


def test_lock_refuses_a_second_holder_until_the_first_is_killed(tmp_path):
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'locked\n'
        with pytest.raises(files.FolderBusy, match=rf'^{tmp_path}: -c \(pid {holder.pid}\) is '
                                                   'writing into this folder'):
            with files.folder_lock(tmp_path, 'attack_run'):
                pass
        with pytest.raises(files.FolderBusy, match=f'pid {holder.pid}'):
            files.check_unlocked(tmp_path, 'attack_run')
        with files.folder_lock(tmp_path, 'other_shard'):  # another lock name is free
            pass
        files.check_unlocked(tmp_path / 'absent', 'attack_run')
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    started = time.time()
    with files.folder_lock(tmp_path, 'attack_run') as path:  # released by the kernel
        assert path.read_text() == f'{os.path.basename(sys.argv[0])} (pid {os.getpid()})\n'
    assert time.time() - started < 1
    assert list(tmp_path.iterdir()) == []  # the holder deletes the lock file when done


def test_a_failed_block_removes_the_empty_folders_it_made(tmp_path):
    with pytest.raises(RuntimeError):
        with files.new_folder(tmp_path / 'a' / 'b' / 'c'):
            raise RuntimeError('crash')
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with files.new_folder(tmp_path / 'a' / 'b') as folder:
            (folder / 'attack_run.json').write_text('{}')  # something to keep
            raise RuntimeError('crash')
    assert (tmp_path / 'a' / 'b' / 'attack_run.json').is_file()
    with files.new_folder(tmp_path / 'a' / 'd') as folder:
        pass
    assert folder.is_dir()
