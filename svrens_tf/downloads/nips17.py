"""Download the NIPS 2017 adversarial competition DEV set (1000 PNGs + dev_dataset.csv).

Source: the public copy in github.com/dongyp13/Translation-Invariant-Attacks, folder
`dataset/` (`images/<ImageId>.png`, `dev_dataset.csv`). Every PNG is checked against the
sha256 list the project keeps (svrens_tf/resources/nips17_sha256sums.txt); the csv is checked
to list exactly those images with labels in 1..1000. Files already present and verified are kept, so
an interrupted run resumes where it stopped.
"""
import concurrent.futures
import os
import pathlib

from svrens_tf import data, files
from svrens_tf.downloads import fetch

DEFAULT_BASE_URL = ('https://raw.githubusercontent.com/dongyp13/Translation-Invariant-Attacks/'
                    'master/dataset/')
BASE_URL_ENV = 'SVRENS_DATASET_BASE_URL'
SHA256SUMS = (pathlib.Path(__file__).resolve().parents[1] / 'resources'
              / 'nips17_sha256sums.txt')
LABELS_CSV = 'dev_dataset.csv'
WORKERS = 8
GIVE_UP_AFTER = 8  # failed images, none fetched yet: the source is unreachable, stop trying


def how_to_get(output_dir):
    """The three ways to put the DEV set in place, for a message."""
    return (f'get the NIPS17 DEV set ({LABELS_CSV} and its 1000 PNGs) in one of three ways: '
            f'svrens-download --dataset {output_dir} (online); '
            f'svrens-download --dataset {output_dir} --dataset_url file:///path/to/copy/ '
            f'(a copy holding images/<ImageId>.png and {LABELS_CSV}); or pass --dataset_dir '
            '(run_attacks.sh) / --input_dir of an existing copy')


def image_checksums(path=None):
    """{'<ImageId>.png': sha256} from a `sha256sum`-style list."""
    path = pathlib.Path(path or SHA256SUMS)
    sums = {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ValueError(f'{path}, line {line_no}: expected "<sha256>  <file>"')
        sums[parts[1].lstrip('*')] = parts[0]
    return sums


def download_dataset(output_dir, base_url=None, progress=True):
    """Fetch the DEV set into `output_dir` (PNGs and dev_dataset.csv side by side).

    Returns the number of files fetched. Raises fetch.FetchError (one line) when files could
    not be fetched or failed their checks; files verified so far stay for the next run.
    """
    base = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip('/') + '/'
    output_dir = pathlib.Path(output_dir)
    sums = image_checksums()
    todo = sorted(name for name, digest in sums.items()
                  if not _verified(output_dir / name, digest))
    print(f'NIPS17 DEV set: {len(sums) - len(todo)} of {len(sums)} images verified in '
        f'{output_dir}, {len(todo)} to fetch from {base}images/')
    failures = _fetch_images(base, output_dir, sums, todo, progress)
    csv_fetched = _ensure_labels_csv(base, output_dir, sums)
    if failures:
        raise fetch.FetchError(f'{len(failures)} of {len(todo)} images not fetched, first: '
                               f'{failures[0]}; rerun to fetch the rest (verified files are '
                               f'kept), or {how_to_get(output_dir)}')
    print(f'NIPS17 DEV set: {len(sums)} images and {LABELS_CSV} verified in {output_dir}')
    return len(todo) + csv_fetched


def _verified(path, digest):
    return path.is_file() and files.sha256_file(path) == digest


def _fetch_images(base, output_dir, sums, names, progress):
    """Fetch `names` in parallel threads (I/O bound); returns the error lines. The bar counts
    fetched images only; GIVE_UP_AFTER failures before the first success end the attempt."""
    if not names:
        return []
    bar = fetch.progress_bar(len(names), 'file') if progress else None
    failures, fetched = [], 0
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(fetch.fetch, f'{base}images/{name}', output_dir / name,
                               expected_sha256=sums[name]) for name in names]
        for future in concurrent.futures.as_completed(futures):
            try:
                future.result()
                fetched += 1
                if bar is not None:
                    bar.update(fetched)
            except fetch.FetchError as err:
                failures.append(str(err))
                if not fetched and len(failures) >= GIVE_UP_AFTER:
                    pool.shutdown(cancel_futures=True)
                    raise fetch.FetchError(
                        f'gave up after the first {len(failures)} images failed, e.g. '
                        f'{failures[0]}; {how_to_get(output_dir)}') from None
    return sorted(failures)


def _ensure_labels_csv(base, output_dir, sums):
    """Keep a valid dev_dataset.csv, else fetch one and accept it only if valid; 1 if fetched."""
    path = output_dir / LABELS_CSV
    if path.is_file() and _csv_problem(path, sums) is None:
        return 0
    url = base + LABELS_CSV
    print(f'fetching {url}')
    incoming = output_dir / f'.{LABELS_CSV}.new'
    try:
        fetch.fetch(url, incoming)
    except fetch.FetchError as err:
        raise fetch.FetchError(f'{err}; {how_to_get(output_dir)}') from None
    problem = _csv_problem(incoming, sums)
    if problem is not None:
        incoming.unlink()
        raise fetch.FetchError(f'{url}: rejected, {problem}')
    os.replace(incoming, path)
    return 1


def _csv_problem(path, sums):
    """None if `path` is a dev_dataset.csv labelling exactly the checksummed images."""
    try:
        labels, _ = data.read_labels(path)
    except data.DataError as err:
        return str(err)
    listed = {f'{image_id}.png' for image_id in labels}
    if listed != set(sums):
        return (f'{path.name} lists {len(listed)} images, {len(listed & set(sums))} of the '
                f'{len(sums)} checksummed ones')
    return None
