"""nbs/train.ipynb run by papermill with tiny parameters: the parameters reach the run, the metrics come back."""
import json
import numpy as np
import pandas as pd
import torch
from PIL import Image
from conftest import BIN, ROOT, run


def test_train_notebook_papermill_drrn(workdir, mirror):
    """`-p arch drrn` reaches the run: a DRRN checkpoint comes out, measured like any other."""
    out_nb, run_dir = workdir / 'out.ipynb', workdir / 'run'
    params = dict(arch='drrn', bn='false', scale=2, filters=8, units=2, train_set='Set5', recipe='adam', epochs=1, minutes=0,
                  epoch_size=16, batch_size=8, patch=21, stride=30, precision='fp32', device='cpu', progress=False,
                  out_dir=str(run_dir))
    args = [a for k, v in params.items() for a in ('-p', k, str(v))]
    r = run([BIN / 'papermill', '-k', 'drcn', '--cwd', str(workdir), ROOT / 'nbs' / 'train.ipynb', out_nb, *args], cwd=workdir)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((run_dir / 'config.json').read_text())
    assert (cfg['arch'], cfg['units'], cfg['blocks'], cfg['bn']) == ('drrn', 2, 1, False)  # 'false' was truthy once
    assert torch.load(run_dir / 'checkpoint.pt', weights_only=True)['model']['bn'] is False
    assert len(pd.read_csv(run_dir / 'metrics.csv')) == 1 and (run_dir / 'eval.csv').is_file()


def test_train_notebook_papermill(workdir, mirror):
    out_nb, run_dir = workdir / 'out.ipynb', workdir / 'run'
    params = dict(scale=3, filters=8, recursions=3, skip='false', augment='No', train_set='Set5', epochs=2, minutes=0, epoch_size=16,
                  batch_size=8, patch=21, stride=30, precision='fp32', device='cpu', progress=False, out_dir=str(run_dir))
    args = [a for k, v in params.items() for a in ('-p', k, str(v))]
    r = run([BIN / 'papermill', '-k', 'drcn', '--cwd', str(workdir), ROOT / 'nbs' / 'train.ipynb', out_nb, *args], cwd=workdir)
    assert r.returncode == 0, r.stderr[-3000:]
    m = pd.read_csv(run_dir / 'metrics.csv')
    assert len(m) == 2 and 'val_psnr_y3' in m.columns
    cfg = json.loads((run_dir / 'config.json').read_text())
    assert (cfg['scale'], cfg['filters'], cfg['recursions'], cfg['skip'], cfg['augment']) == (3, 8, 3, False, False)
    assert torch.load(run_dir / 'checkpoint.pt', weights_only=True)['model']['skip'] is False  # the model trained without it
    e = pd.read_csv(run_dir / 'eval.csv')
    assert e.loc[0, 'dataset'] == 'Set5' and e.loc[0, 'scale'] == 3
    assert abs(e.loc[0, 'psnr'] - m.val_psnr.iloc[-1]) < 1e-6  # validation is measured exactly as drcn-eval measures
    nb = json.loads(out_nb.read_text())
    assert any('injected-parameters' in c['metadata'].get('tags', []) for c in nb['cells'])


def test_train_notebook_unknown_parameter_refused(workdir):
    """`-p recursion 2` (for `recursions`) trained with the default among papermill's warnings: now the notebook stops in
    one line naming it, before any training. And papermill no longer warns 'Unable to parse line' on our parameters."""
    imgs = workdir / 'imgs'; imgs.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(imgs / 'a.png')
    params = dict(recursion=2, filters=8, recursions=2, train_set=imgs, val_set=imgs, eval_sets=imgs, epochs=1, minutes=0,
                  epoch_size=8, batch_size=8, patch=21, stride=30, precision='fp32', device='cpu', progress=False,
                  out_dir=workdir / 'run')
    args = [a for k, v in params.items() for a in ('-p', k, str(v))]
    r = run([BIN / 'papermill', '-k', 'drcn', '--cwd', str(workdir), ROOT / 'nbs' / 'train.ipynb', workdir / 'out.ipynb', *args],
            cwd=workdir)
    assert r.returncode != 0 and not (workdir / 'run' / 'checkpoint.pt').exists(), r.stderr[-2000:]
    err = [l for l in r.stderr.splitlines() if 'DRCNError' in l]
    assert err == ['DRCNError: unknown parameter recursion: the parameters are the fields of drcn.train.TrainConfig and eval_sets'], r.stderr[-2000:]
    assert 'Unable to parse line' not in r.stderr, r.stderr[:2000]


def test_train_notebook_talks_then_ctrl_c_one_line_then_resumes(workdir):
    """Issue 19.1, 19.3: the main command showed papermill's `Executing: 50%` for an hour, and Ctrl-C ended in a kernel
    traceback (ZMQError, Aborted!) with no word on resuming. Training's lines reach papermill's stderr (the terminal)
    while it runs, with patches/s, time left and the last PSNR; SIGINT to papermill (Ctrl-C) ends in one line saying
    where training stood and how to go on, with no traceback; the same command then resumes."""
    import re, signal, subprocess, time
    imgs = workdir / 'imgs'; imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2): Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(imgs / f'a{i}.png')
    run_dir = workdir / 'run'
    params = dict(filters=8, recursions=2, train_set=imgs, val_set=imgs, eval_sets=imgs, epochs=4, minutes=0, epoch_size=512,
                  batch_size=8, patch=21, stride=10, precision='fp32', device='cpu', threads=1, out_dir=run_dir)
    args = [a for k, v in params.items() for a in ('-p', k, str(v))]
    cmd = [BIN / 'papermill', '-k', 'drcn', '--no-progress-bar', '--cwd', str(workdir), ROOT / 'nbs' / 'train.ipynb',
           workdir / 'out.ipynb', *args]  # the README's main command, on a tiny configuration
    with open(workdir / 'err.txt', 'w') as err:
        p = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=err)
        t0 = time.time()
        while 'epoch 1 done' not in (workdir / 'err.txt').read_text():  # the line of the first epoch is on the terminal
            assert p.poll() is None and time.time() - t0 < 300, (workdir / 'err.txt').read_text()[-2000:]
            time.sleep(0.05)
        p.send_signal(signal.SIGINT); p.wait(timeout=120)
    text = (workdir / 'err.txt').read_text()
    ours = [l for l in text.splitlines() if l.startswith('run: ')]
    assert ours and ours[0].startswith('run: new run: DRCN F=8 D=2 x2'), text[-3000:]
    assert any(re.search(r'epoch 1 done, .*patches/s \| [\d.]+ min left \| .* [\d.]+ dB \(epoch 1\)', l) for l in ours), ours
    # jupyter_client starts the kernel in a session of its own, so a terminal's Ctrl-C reaches papermill alone; papermill
    # then shuts the kernel down, and jupyter_client's shutdown interrupts it first: the notebook's one line comes from
    # the kernel (on its own stderr: under pytest ipykernel does not copy that descriptor, which once lost the line
    # here), and after it only papermill's own `Aborted!`
    lines = text.splitlines()
    said = [i for i, l in enumerate(lines) if re.match(r'interrupted at epoch \d+, patches [\d,]+; rerun the same command to resume', l)]
    assert len(said) == 1 and [l for l in lines[said[0] + 1:] if l.strip()] == ['Aborted!'], text[-3000:]
    assert 'Traceback' not in text and 'ZMQError' not in text, text[-3000:]
    stopped = int(re.match(r'interrupted at epoch (\d+)', lines[said[0]])[1])
    r = run(cmd, cwd=workdir)
    assert r.returncode == 0, r.stderr[-3000:]
    resumed = re.search(r'^run: resuming at epoch (\d+)', r.stderr, re.M)
    assert resumed and 2 <= int(resumed[1]) <= stopped, r.stderr[-3000:]  # from the last save, at or before the line's epoch
    assert len(pd.read_csv(run_dir / 'metrics.csv')) == 4 and (run_dir / 'eval.csv').is_file()
