"""torchrun with 2 gloo processes trains the same model as 1 process with the same global batch."""
import sys
import numpy as np
import torch
from PIL import Image
from conftest import BIN, run


def test_ddp_two_processes_match_one(workdir):
    imgs = workdir / 'imgs'; imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2): Image.fromarray(rng.integers(0, 255, (60, 50), dtype=np.uint8)).save(imgs / f'{i}.png')
    common = ['--scale', '2', '--filters', '8', '--recursions', '2', '--train_set', str(imgs), '--val_set', str(imgs),
              '--epochs', '2', '--minutes', '0', '--epoch_size', '16', '--batch_size', '8', '--patch', '21',
              '--stride', '10', '--precision', 'fp32', '--device', 'cpu', '--threads', '1', '--progress', 'false']
    r1 = run([sys.executable, '-m', 'drcn.train', *common, '--out_dir', str(workdir / 'one')], cwd=workdir)
    assert r1.returncode == 0, r1.stderr
    r2 = run([BIN / 'torchrun', '--standalone', '--nproc_per_node=2', '-m', 'drcn.train', *common,
              '--out_dir', str(workdir / 'two')], cwd=workdir, env={'OMP_NUM_THREADS': '1'})
    assert r2.returncode == 0, r2.stderr[-3000:]
    a = torch.load(workdir / 'one' / 'checkpoint.pt', weights_only=True)['state_dict']
    b = torch.load(workdir / 'two' / 'checkpoint.pt', weights_only=True)['state_dict']
    assert a.keys() == b.keys()
    for k in a: torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    assert not torch.equal(a['recursive.weight'], torch.load(workdir / 'one' / 'checkpoint.pt', weights_only=True)['state_dict']['recursive.weight'] * 0)
