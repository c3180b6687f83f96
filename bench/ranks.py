"""Does the CPU profile train faster as one-thread processes under DDP (gloo, `torchrun`) than as one multi-thread process?

    python bench/ranks.py [--patches 3072] [--batch 32] [--json PATH]

Trains DRCN's CPU profile (F=64, D=16, x2, T91, bf16 channels-last) for one epoch of `--patches` patches twice, one after
the other, in fresh run folders: `python -m drcn.train --threads N` (N = the machine's cores) and
`torchrun --nproc_per_node N -m drcn.train --threads 1` (the batch split across the N ranks, the gradients averaged by an
all-reduce every step). Prints the training patches/s of each (the run's own clock, `train_minutes`: validation not
counted) and their ratio, with the CPU. Needs the training data (`DRCN_DATA_MIRROR` or the public copies). Run it on an
otherwise idle machine: the two configurations share the cores with whatever else runs, unequally.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile
from pathlib import Path
import pandas as pd
import torch
from drcn.train import machine_info


def train_rate(launcher:list[str], threads:int, out:Path, patches:int, batch:int) -> float:
    "Train one epoch of `patches` into `out` under `launcher`; the patches per training second."
    cmd = launcher + ['-m', 'drcn.train', '--scale', '2', '--profile', 'cpu', '--precision', 'bf16_cl', '--threads', str(threads),
                      '--minutes', '0', '--epochs', '1', '--epoch_size', str(patches), '--batch_size', str(batch),
                      '--eval_sets', '', '--out_dir', str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode: sys.exit(f'{" ".join(cmd)}\nfailed (exit {r.returncode}):\n{r.stderr[-2000:]}')
    m = pd.read_csv(out / 'metrics.csv')
    return float(m.patches.sum() / (m.train_minutes.iloc[-1] * 60))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--patches', type=int, default=3072, help='the patches of the one epoch each configuration trains')
    ap.add_argument('--batch', type=int, default=32, help="the batch (the profile's is 32); DDP splits it across the ranks")
    ap.add_argument('--json', help='write the figures here')
    a = ap.parse_args()
    n = os.cpu_count() or 1
    if a.batch % n: sys.exit(f'--batch {a.batch} does not split across {n} processes')
    torchrun = shutil.which('torchrun') or str(Path(sys.executable).parent / 'torchrun')
    res = dict(machine=machine_info(torch.device('cpu')), patches=a.patches, batch=a.batch, cores=n)
    with tempfile.TemporaryDirectory() as d:
        res['one_process'] = train_rate([sys.executable], n, Path(d) / 'one', a.patches, a.batch)
        res['ddp'] = train_rate([torchrun, '--nproc_per_node', str(n)], 1, Path(d) / 'ddp', a.patches, a.batch)
    res['ddp_over_one'] = res['ddp'] / res['one_process']
    print(f"{res['machine'].get('cpu', '?')} ({n} cores), torch {torch.__version__}, batch {a.batch}, {a.patches} patches each\n"
          f"one process, {n} threads:        {res['one_process']:6.1f} patches/s\n"
          f"DDP, {n} processes x 1 thread:   {res['ddp']:6.1f} patches/s  ({res['ddp_over_one']:.2f}x)")
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == '__main__': main()
