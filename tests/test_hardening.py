"""Interrupted, diverging and repeated training; bad data and bad flags: real processes, real kills, real files.

The training runs are tiny (F=8, D=2, 21x21 patches, one thread) and take a second each. A run is a real process
where the process matters (the reference run, every kill -9); elsewhere `train_cli` calls the same
`drcn.cli.train_main` (what `python -m drcn.train` runs) in-process, which saves a 2-second torch import per run."""
import errno, os, signal, subprocess, sys, time
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from conftest import BIN, run
from drcn.core import DRCNError
from drcn.data import manifest
from drcn.checkpoint import load_checkpoint

TIMING = ['train_minutes', 'val_seconds']  # wall-clock columns: the only ones allowed to differ between runs
EPOCHS = 3


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "A tiny training folder, a validation folder, the training command, and one uninterrupted reference run."
    d = tmp_path_factory.mktemp('train')
    rng = np.random.default_rng(0)
    (d / 'imgs').mkdir(); (d / 'val').mkdir()
    for i in range(2): Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(d / 'imgs' / f'im{i}.png')
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(d / 'val' / 'v.png')
    args = ['--scale', '2', '--filters', '8', '--recursions', '2', '--train_set', d / 'imgs', '--val_set', d / 'val',
            '--epochs', str(EPOCHS), '--minutes', '0', '--epoch_size', '512', '--batch_size', '8', '--patch', '21',
            '--stride', '10', '--precision', 'fp32', '--device', 'cpu', '--threads', '1', '--progress', 'false',
            '--eval_sets', d / 'val']
    env = dict(DRCN_CACHE=str(d / 'cache'), OMP_NUM_THREADS='1')
    cmd = lambda out: [sys.executable, '-m', 'drcn.train', *map(str, args), '--out_dir', str(out)]
    r = run(cmd(d / 'reference'), cwd=d, env=env)
    assert r.returncode == 0, r.stderr
    return dict(dir=d, cmd=cmd, env=env, args=[str(a) for a in args], reference=pd.read_csv(d / 'reference' / 'metrics.csv'))


def train_cli(setup, out, *extra, monkeypatch=None, capsys=None):
    "`python -m drcn.train ARGS --out_dir out` in-process: (exit status, stderr)."
    import drcn.cli
    if monkeypatch: monkeypatch.setenv('DRCN_CACHE', setup['env']['DRCN_CACHE'])
    if capsys: capsys.readouterr()
    try: drcn.cli.train_main([*setup['args'], '--out_dir', str(out), *map(str, extra)]); code = 0
    except SystemExit as e: code = e.code
    return code, capsys.readouterr().err if capsys else ''


class Result:
    def __init__(self, returncode, stderr): self.returncode, self.stderr = returncode, stderr


def same_metrics(a:pd.DataFrame, b:pd.DataFrame):
    "Equal in every column but the timing ones, value for value (no tolerance)."
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a.drop(columns=TIMING), b.drop(columns=TIMING), check_exact=True)


def rows(path) -> int:
    try: return len(pd.read_csv(path))
    except (FileNotFoundError, pd.errors.EmptyDataError): return 0


def one_line_error(r, prog='drcn.train'):
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert 'Traceback' not in r.stderr and r.stderr.startswith(f'{prog}: error: '), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# ---- determinism ------------------------------------------------------------------------------------------------

def test_same_seed_same_metrics(setup, workdir, monkeypatch):
    """Same seed, machine and configuration (fp32, a fixed number of epochs, no time budget): the same metrics.csv,
    every column but the timing columns `train_minutes` and `val_seconds`, and the same weights, bit for bit."""
    assert train_cli(setup, workdir / 'again', monkeypatch=monkeypatch)[0] == 0  # another process than the reference's
    again = pd.read_csv(workdir / 'again' / 'metrics.csv')
    assert len(again) == EPOCHS
    same_metrics(again, setup['reference'])
    a, _ = load_checkpoint(workdir / 'again' / 'checkpoint.pt')
    b, _ = load_checkpoint(setup['dir'] / 'reference' / 'checkpoint.pt')
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# ---- kill -9 ----------------------------------------------------------------------------------------------------

def test_kill_during_epoch_then_resume(setup, workdir, monkeypatch):
    "kill -9 once the first epoch is recorded (so: inside a later epoch); the same command resumes and ends as if never killed."
    out = workdir / 'run'
    p = subprocess.Popen(setup['cmd'](out), cwd=setup['dir'], env=dict(os.environ, **setup['env']),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while rows(out / 'metrics.csv') < 1:
        assert p.poll() is None and time.time() - t0 < 120, 'the run ended before it could be killed'
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL
    done = rows(out / 'metrics.csv')
    assert 1 <= done < EPOCHS, done  # it was killed in the middle of the run
    assert load_checkpoint(out / 'checkpoint.pt')[1]['epoch'] == done
    assert train_cli(setup, out, monkeypatch=monkeypatch)[0] == 0  # the same command again
    m = pd.read_csv(out / 'metrics.csv')
    assert list(m.epoch) == list(range(1, EPOCHS + 1))
    same_metrics(m, setup['reference'])



def test_kill_within_the_first_epoch_after_a_timed_save_then_resume(setup, workdir, monkeypatch):
    """Issue 19.2: resume points were whole epochs apart (27.7 minutes on a loaded machine). With `--save_minutes` the
    state is saved within the epoch too: kill -9 after such a save, before any epoch ended, and the same command goes on
    from the saved step with the epoch's own sample order, ending exactly as the run that was never killed."""
    import json
    out = workdir / 'run'
    p = subprocess.Popen([*setup['cmd'](out), '--save_minutes', '0.003'], cwd=setup['dir'], env=dict(os.environ, **setup['env']),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0, where = time.time(), {}
    while not where.get('step'):
        assert p.poll() is None and time.time() - t0 < 300, 'the run ended before a save within its first epoch'
        try: where = json.loads((out / 'progress.json').read_text())
        except (FileNotFoundError, ValueError): pass
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert where['epoch'] == 0 and rows(out / 'metrics.csv') == 0 and not (out / 'checkpoint.pt').exists(), where
    assert torch.load(out / 'optimizer.pt', weights_only=True)['step'] >= where['step']
    assert train_cli(setup, out, monkeypatch=monkeypatch)[0] == 0  # the same command again (saving per epoch only)
    same_metrics(pd.read_csv(out / 'metrics.csv'), setup['reference'])


KILL = '''
import os, signal, sys, io
import pandas as pd, torch
target, epoch = sys.argv[1], int(sys.argv[2])
def hit(path, at):  # the temporary file written for `target` (write_whole names it TARGET.<random>.tmp) at the end of `epoch`
    name = os.path.basename(str(path))
    return name.startswith(target + '.') and name.endswith('.tmp') and at == epoch
save = torch.save
def torch_save(obj, f, *a, **k):  # write half the file, then die: a real kill in the middle of a write
    if isinstance(obj, dict) and hit(f, obj['meta']['epoch'] if 'meta' in obj else obj.get('epoch')):
        buf = io.BytesIO(); save(obj, buf, *a, **k)
        with open(f, 'wb') as fh: fh.write(buf.getvalue()[:len(buf.getvalue()) // 2]); fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return save(obj, f, *a, **k)
to_csv = pd.DataFrame.to_csv
def df_to_csv(self, path=None, *a, **k):
    if hit(path, len(self)):
        with open(path, 'w') as fh: fh.write(self.to_string()[:40]); fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return to_csv(self, path, *a, **k)
torch.save, pd.DataFrame.to_csv = torch_save, df_to_csv
import drcn.cli
drcn.cli.train_main(sys.argv[3:])
'''


@pytest.mark.parametrize('target, epoch', [('checkpoint.pt', 2), ('optimizer.pt', 2), ('metrics.csv', 2), ('optimizer.pt', 1)])
def test_kill_during_a_write_then_resume(setup, workdir, target, epoch, monkeypatch):
    """kill -9 halfway through writing a file of the run folder at the end of epoch 2 (or 1); the same command resumes
    from the last complete state and ends as if never killed. The checkpoint itself is never half-written (write, then
    rename). The three files are renamed one after the other, the resume state last, so a kill between two renames
    leaves them at different epochs (checkpoint at 2, optimizer state at 1; or both at 2 and metrics.csv at 1), and the
    resume trains the last epoch again. At the end of epoch 1 there was no earlier resume state: such a folder was
    refused ('holds a checkpoint but no resume state') until a new run saved its resume state before its first step."""
    out = workdir / 'run'
    (workdir / 'kill.py').write_text(KILL)
    r = run([sys.executable, workdir / 'kill.py', target, str(epoch), *setup['args'], '--out_dir', out], cwd=setup['dir'], env=setup['env'])
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert len(list(out.glob(f'{target}.*.tmp'))) == 1  # the kill did land in the middle of that write
    ckpt_epoch = load_checkpoint(out / 'checkpoint.pt')[1]['epoch']  # whole and loadable whatever was killed
    assert ckpt_epoch in (1, 2)
    assert train_cli(setup, out, monkeypatch=monkeypatch)[0] == 0  # the same command again
    m = pd.read_csv(out / 'metrics.csv')
    assert list(m.epoch) == list(range(1, EPOCHS + 1))
    same_metrics(m, setup['reference'])


# ---- divergence -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('bad', ['nan', 'inf'])
def test_diverging_loss_stops_and_keeps_last_good_checkpoint(setup, workdir, bad, monkeypatch, capsys):
    "The loss turns NaN (or inf) at step 4 of epoch 2: one line, exit 2, the epoch-1 checkpoint kept and resumable."
    import drcn.train
    loss, calls, after = drcn.train.drcn_loss, [], 512 // 8 + 3
    def drcn_loss(*a, **k):
        l, parts = loss(*a, **k); calls.append(1)
        return (l * float(bad) if len(calls) > after else l), parts
    monkeypatch.setattr(drcn.train, 'drcn_loss', drcn_loss)
    out = workdir / 'run'
    one_line_error(Result(*train_cli(setup, out, monkeypatch=monkeypatch, capsys=capsys)))
    model, meta = load_checkpoint(out / 'checkpoint.pt')
    assert meta['epoch'] == 1 and all(torch.isfinite(p).all() for p in model.parameters())
    assert rows(out / 'metrics.csv') == 1
    monkeypatch.setattr(drcn.train, 'drcn_loss', loss)
    assert train_cli(setup, out, monkeypatch=monkeypatch)[0] == 0  # the run goes on from the good checkpoint
    same_metrics(pd.read_csv(out / 'metrics.csv'), setup['reference'])


# ---- a full disk ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('target', ['checkpoint.pt', 'metrics.csv'])
def test_disk_full_while_writing_the_run(setup, workdir, target, monkeypatch, capsys):
    "The disk fills up while epoch 2 is written: one line, exit 2, the epoch-1 files intact, no temporary file left."
    calls = []
    def full(path):
        with open(path, 'wb') as fh: fh.write(b'partial')
        raise OSError(errno.ENOSPC, 'No space left on device')
    def hit(path):
        name = os.path.basename(str(path))
        if name.startswith(target + '.') and name.endswith('.tmp'): calls.append(1); return len(calls) == 2
    save, to_csv = torch.save, pd.DataFrame.to_csv
    monkeypatch.setattr(torch, 'save', lambda obj, f, *a, **k: full(f) if hit(f) else save(obj, f, *a, **k))
    monkeypatch.setattr(pd.DataFrame, 'to_csv', lambda self, path=None, *a, **k: full(path) if hit(path) else to_csv(self, path, *a, **k))
    out = workdir / 'run'
    r = Result(*train_cli(setup, out, monkeypatch=monkeypatch, capsys=capsys))
    one_line_error(r)
    assert 'No space left on device' in r.stderr
    assert not list(out.glob(f'{target}.*.tmp'))
    assert load_checkpoint(out / 'checkpoint.pt')[1]['epoch'] in (1, 2)
    assert rows(out / 'metrics.csv') >= 1


# ---- bad flags and bad data -------------------------------------------------------------------------------------

def test_recursions_below_one(setup, workdir):
    "As a process (the exit status and stderr a shell sees), then in-process for a negative value."
    value = '0'
    r = run([*setup['cmd'](workdir / 'r'), '--recursions', value], cwd=setup['dir'], env=setup['env'])
    one_line_error(r)
    assert f'recursions must be at least 1, got {value}' in r.stderr
    assert not (workdir / 'r' / 'checkpoint.pt').exists()


def test_recursions_negative(setup, workdir, monkeypatch, capsys):
    r = Result(*train_cli(setup, workdir / 'r', '--recursions', '-2', monkeypatch=monkeypatch, capsys=capsys))
    one_line_error(r)
    assert 'recursions must be at least 1, got -2' in r.stderr


def test_training_images_too_small_for_the_patch(setup, workdir, monkeypatch, capsys):
    small = workdir / 'small'; small.mkdir()
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(small / 's.png')
    r = Result(*train_cli(setup, workdir / 'r', '--train_set', small, monkeypatch=monkeypatch, capsys=capsys))
    one_line_error(r)
    assert 'no image is at least 21x21' in r.stderr


BAD_FLAGS = [('--alpha_schedule', 'foo'), ('--precision', 'fp64'), ('--device', 'tpu'), ('--batch_size', '0'),
             ('--patch', '0'), ('--stride', '0'), ('--filters', '0'), ('--epochs', '-1'), ('--minutes', '-5'),
             ('--epoch_size', '-5'), ('--lr', 'nan'), ('--lr', '-1'), ('--clip', '-1'), ('--threads', '-3'),
             ('--val_precision', 'fp8')]


@pytest.mark.parametrize('flag,value', BAD_FLAGS, ids=[f'{f}={v}' for f, v in BAD_FLAGS])
def test_bad_training_flag_refused_before_training(flag, value):
    """Each of these ends today in a traceback once training starts (or, for --epochs -1, in a run that never ends;
    --precision fp64 is silently run as fp32). They must be refused up front, by `resolve`, with a DRCNError. Checked
    in-process: `resolve` trains nothing, so a flag it lets through cannot hang the test."""
    from drcn.cli import parse_args
    from drcn.train import resolve
    cfg = parse_args(['--device', 'cpu', flag, value])
    with pytest.raises(DRCNError, match=flag.lstrip('-')): resolve(cfg)


def test_train_flag_that_is_not_a_number_one_line(setup, workdir, monkeypatch, capsys):
    "A flag's value is given the field's type by TrainConfig, strictly: one line, naming the flag and the value."
    r = Result(*train_cli(setup, workdir / 'r', '--scale', 'two', monkeypatch=monkeypatch, capsys=capsys))
    one_line_error(r)
    assert "scale must be an integer, got 'two'" in r.stderr


def test_data_mirror_missing(workdir):
    r = run([BIN / 'drcn-eval', 'bicubic', '--datasets', 'Set5', '--scales', '2', '--no-progress'], cwd=workdir,
            env=dict(DRCN_DATA_MIRROR=str(workdir / 'no_such_mirror')))
    one_line_error(r, 'drcn-eval')
    assert 'DRCN_DATA_MIRROR' in r.stderr and 'not in the data mirror' in r.stderr
    assert not list((workdir / 'data').rglob('*.png'))


def test_data_mirror_with_a_wrong_checksum(workdir):
    "The mirror serves a damaged file: refused, named, and nothing unverified is left in data/."
    mirror = workdir / 'mirror'; (mirror / 'Set5').mkdir(parents=True)
    for r_ in manifest('Set5'): (mirror / r_['file']).write_bytes(b'\x89PNG not really')
    r = run([BIN / 'drcn-eval', 'bicubic', '--datasets', 'Set5', '--scales', '2', '--no-progress'], cwd=workdir,
            env=dict(DRCN_DATA_MIRROR=str(mirror)))
    one_line_error(r, 'drcn-eval')
    assert 'checksum differs from the manifest' in r.stderr and 'baby.png' in r.stderr
    assert not [p for p in (workdir / 'data').rglob('*') if p.is_file()]


def _folder(workdir, name, make):
    d = workdir / name; d.mkdir(); make(d / 'a.png'); return d


def test_eval_image_too_small_for_the_scale(workdir):
    d = _folder(workdir, 'small', lambda p: Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(p))
    r = run([BIN / 'drcn-eval', 'bicubic', '--datasets', d, '--scales', '4', '--no-progress'], cwd=workdir)
    one_line_error(r, 'drcn-eval')
    assert 'too small (4x4) for x4' in r.stderr


def test_eval_truncated_image(workdir):
    def make(p):
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(p)
        p.write_bytes(p.read_bytes()[:300])
    r = run([BIN / 'drcn-eval', 'bicubic', '--datasets', _folder(workdir, 't', make), '--scales', '2', '--no-progress'], cwd=workdir)
    one_line_error(r, 'drcn-eval')
    assert 'a.png' in r.stderr and 'cannot read it as an image' in r.stderr


def test_eval_image_whose_header_claims_a_huge_size(workdir):
    "drcn.data.read_image lets Pillow's DecompressionBombError through: a traceback today."
    import struct, zlib
    ihdr = b'IHDR' + struct.pack('>IIBBBBB', 100000, 100000, 8, 2, 0, 0, 0)
    def make(p):  # a real PNG whose header is changed to claim 100000 x 100000 pixels
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(p)
        p.write_bytes(b'\x89PNG\r\n\x1a\n' + struct.pack('>I', 13) + ihdr + struct.pack('>I', zlib.crc32(ihdr)) + p.read_bytes()[33:])
    r = run([BIN / 'drcn-eval', 'bicubic', '--datasets', _folder(workdir, 'h', make), '--scales', '2', '--no-progress'], cwd=workdir)
    one_line_error(r, 'drcn-eval')
    assert 'a.png' in r.stderr


def test_unusable_data_folder(workdir):
    "DRCN_DATA where no folder can be made (or a read-only working folder under the default data/): a traceback once."
    r = run([BIN / 'drcn-eval', 'bicubic', '--datasets', 'Set5', '--scales', '2', '--no-progress'], cwd=workdir,
            env=dict(DRCN_DATA='/dev/null/data'))
    one_line_error(r, 'drcn-eval')
    assert 'DRCN_DATA' in r.stderr


def test_unusable_cache_folder(setup, workdir, monkeypatch, capsys):
    "DRCN_CACHE where no folder can be made: a traceback once."
    import drcn.cli
    monkeypatch.setenv('DRCN_CACHE', '/dev/null/cache')
    capsys.readouterr()
    with pytest.raises(SystemExit) as e: drcn.cli.train_main([*setup['args'], '--out_dir', str(workdir / 'r')])
    one_line_error(Result(e.value.code, capsys.readouterr().err))


def test_eval_float_tiff_refused(workdir):
    "A 32-bit float TIFF was read as black and scored inf dB; refused in one line, as drcn-upscale does."
    d = workdir / 'f'; d.mkdir()
    Image.fromarray((np.random.default_rng(0).random((40, 40)) * 255).astype(np.float32), mode='F').save(d / 'a.tif')
    r = run([BIN / 'drcn-eval', 'bicubic', '--datasets', d, '--scales', '2', '--no-progress'], cwd=workdir)
    one_line_error(r, 'drcn-eval')
    assert 'a.tif' in r.stderr and 'float' in r.stderr


def test_eval_16bit_ground_truth_is_rescaled_not_clipped(workdir):
    "drcn.data.read_image converts a 16-bit grayscale image with convert('RGB'), which clips at 255 instead of rescaling."
    from drcn.data import read_image
    g16 = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(g16).save(workdir / 'g16.png')
    np.testing.assert_array_equal(read_image(workdir / 'g16.png'), np.round(g16 / 257).astype(np.uint8))


# ---- a run folder holds one run (issue 17) ----------------------------------------------------------------------

def finished_copy(setup, workdir):
    "A copy of the finished reference run, to damage or to ask again."
    import shutil
    return shutil.copytree(setup['dir'] / 'reference', workdir / 'run')


def test_run_folder_refuses_other_settings(setup, workdir, monkeypatch, capsys):
    """Asking a finished x2 run for x3 (and other filters) named every differing field and left the run alone; it used
    to exit 0 and print the old x2 result. Where and how it runs (threads, progress, device) may change."""
    out = finished_copy(setup, workdir)
    before = (out / 'checkpoint.pt').read_bytes()
    r = Result(*train_cli(setup, out, '--scale', '3', '--filters', '16', monkeypatch=monkeypatch, capsys=capsys))
    one_line_error(r)
    assert 'scale' in r.stderr and 'filters' in r.stderr and 'out_dir' in r.stderr and 'recursions' not in r.stderr
    assert (out / 'checkpoint.pt').read_bytes() == before
    assert train_cli(setup, out, '--threads', '2', '--device', 'auto', monkeypatch=monkeypatch)[0] == 0
    same_metrics(pd.read_csv(out / 'metrics.csv'), setup['reference'])


def test_finished_run_grows_only_with_extend(setup, workdir, monkeypatch, capsys):
    """A bigger budget for a finished run is refused unless `--extend true`; then the schedule goes on from the epoch
    reached (the lr of epoch 4 is the 4-epoch schedule's, no new warm-up), and config.json records both segments."""
    from drcn.train import adam_lr
    out = finished_copy(setup, workdir)
    r = Result(*train_cli(setup, out, '--epochs', '4', monkeypatch=monkeypatch, capsys=capsys))
    one_line_error(r)
    assert 'extend' in r.stderr and rows(out / 'metrics.csv') == EPOCHS
    assert train_cli(setup, out, '--epochs', '4', '--extend', 'true', monkeypatch=monkeypatch)[0] == 0
    m = pd.read_csv(out / 'metrics.csv')
    same_metrics(m.iloc[:EPOCHS], setup['reference'])
    import json
    steps, cfg = 512 // 8, json.loads((out / 'config.json').read_text())
    assert m.lr.iloc[-1] == adam_lr((EPOCHS + (steps - 1) / steps) / 4, cfg['lr'])  # the profile's peak lr, not a copy of it
    seg = cfg['segments']
    assert [(s['from_epoch'], s['epochs'], s['extend']) for s in seg] == [(0, EPOCHS, False), (EPOCHS, 4, True)], seg


def test_finished_run_without_resume_state_is_left_alone(setup, workdir, monkeypatch, capsys):
    "No optimizer.pt beside a complete checkpoint: reported and left alone (it was retrained over); --restart starts it over."
    out = finished_copy(setup, workdir)
    (out / 'optimizer.pt').unlink()
    before = (out / 'checkpoint.pt').read_bytes()
    r = Result(*train_cli(setup, out, monkeypatch=monkeypatch, capsys=capsys))
    one_line_error(r)
    assert 'optimizer.pt' in r.stderr and 'restart' in r.stderr
    assert (out / 'checkpoint.pt').read_bytes() == before
    assert train_cli(setup, out, '--restart', 'true', monkeypatch=monkeypatch)[0] == 0
    same_metrics(pd.read_csv(out / 'metrics.csv'), setup['reference'])


def test_finished_run_with_truncated_checkpoint(setup, workdir, monkeypatch, capsys):
    "A finished run's checkpoint.pt cut in half was reported as fine: its weights are restored from the resume state."
    out = finished_copy(setup, workdir)
    ck = out / 'checkpoint.pt'
    ck.write_bytes(ck.read_bytes()[:len(ck.read_bytes()) // 2])
    code, err = train_cli(setup, out, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and 'checkpoint.pt' in err, err
    a, meta = load_checkpoint(ck)
    b, ref = load_checkpoint(setup['dir'] / 'reference' / 'checkpoint.pt')
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert (meta['epoch'], meta['val_psnr']) == (ref['epoch'], ref['val_psnr'])


def _damage(out, how):
    if how == 'config-truncated': (out / 'config.json').write_text((out / 'config.json').read_text()[:50])
    elif how == 'config-empty': (out / 'config.json').write_text('')
    elif how == 'config-list': (out / 'config.json').write_text('[1, 2]')
    elif how == 'config-missing': (out / 'config.json').unlink()
    else:
        st = torch.load(out / 'optimizer.pt', weights_only=True)
        if how == 'state-missing-keys': del st['generator'], st['optimizer']
        if how == 'state-other-run':  # another model's weights, and not finished: the resume must load them
            from drcn.model import DRCN
            st['model'], st['epoch'] = DRCN(4, 2).state_dict(), 1
        if how == 'state-not-a-dict': st = [1, 2]
        torch.save(st, out / 'optimizer.pt')


DAMAGE = [('config-truncated', 'config.json'), ('config-empty', 'config.json'), ('config-list', 'config.json'),
          ('config-missing', 'config.json'), ('state-missing-keys', 'optimizer.pt'), ('state-other-run', 'optimizer.pt'),
          ('state-not-a-dict', 'optimizer.pt')]


@pytest.mark.parametrize('how,names', DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_run_folder_one_line(setup, workdir, monkeypatch, capsys, how, names):
    out = finished_copy(setup, workdir)
    _damage(out, how)
    before = (out / 'checkpoint.pt').read_bytes()
    r = Result(*train_cli(setup, out, monkeypatch=monkeypatch, capsys=capsys))
    one_line_error(r)
    assert names in r.stderr and ('restart' in r.stderr or 'out_dir' in r.stderr), r.stderr
    assert (out / 'checkpoint.pt').read_bytes() == before


@pytest.mark.parametrize('how', ['missing', 'corrupt'])
def test_finished_run_with_damaged_metrics_csv(setup, workdir, monkeypatch, capsys, how):
    "metrics.csv missing or corrupt beside a complete resume state: rewritten from it (a traceback before)."
    out = finished_copy(setup, workdir)
    if how == 'missing': (out / 'metrics.csv').unlink()
    else: (out / 'metrics.csv').write_bytes(b'\x00\xff garbage\n"unclosed')
    code, err = train_cli(setup, out, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    same_metrics(pd.read_csv(out / 'metrics.csv'), setup['reference'])


def test_second_training_on_a_run_folder_is_refused(setup, workdir, monkeypatch, capsys):
    "Two trainings on one out_dir both exited 0 with one run lost: the second is refused at once, naming the holder's PID."
    out = workdir / 'run'
    p = subprocess.Popen([*setup['cmd'](out), '--epochs', '40'], cwd=setup['dir'], env=dict(os.environ, **setup['env']),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.time()
        while not ((out / '.lock').is_file() and (out / '.lock').read_text().strip()):  # the first holds the run folder
            assert p.poll() is None and time.time() - t0 < 120, 'the first run ended too soon'
            time.sleep(0.01)
        r = Result(*train_cli(setup, out, '--epochs', '40', monkeypatch=monkeypatch, capsys=capsys))
        assert p.poll() is None, 'the first run ended before the second was refused'
        one_line_error(r)
        assert str(p.pid) in r.stderr, r.stderr
    finally: p.kill(); p.wait()
