"""Training-step rates of DRCN sizes against each other, on this machine, as ratios from one run.

    python bench/step_rates.py [--threads 1] [--sizes 64x16,64x8,48x16] [--batch 32]

Each size FxD is one training step (Adam, clipping: `bench/speed.py`'s `make_step`) in bf16 channels-last on 41x41
patches; the steps are timed in interleaved rounds (`drcn.speed.race`, medians), so a load that comes and goes touches
them alike: read the ratios, not the rates. Used to give a smaller model the patches a larger one trains in the same
time (`nbs/14_train`, the recipe variants).
"""
import argparse, sys
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from speed import make_step
from drcn.speed import race, tune_allocator
from drcn.train import machine_info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--sizes', default='64x16,64x8,48x16', help='FxD,...; the first is the reference')
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--rounds', type=int, default=7)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); tune_allocator()
    sizes = [tuple(int(v) for v in s.split('x')) for s in a.sizes.split(',')]
    steps = {f'F={F} D={D}': make_step(F, D, 'bf16_cl', torch.device('cpu'), a.batch) for F, D in sizes}
    secs = race(steps, rounds=a.rounds, per_round=4)
    ref = next(iter(secs.values()))
    cpu = machine_info(torch.device('cpu')).get('cpu', '?')
    print(f'{cpu}, {a.threads} thread(s), batch {a.batch}, bf16 channels-last, torch {torch.__version__}')
    for k, s in secs.items(): print(f'{k:12s} {a.batch / s:7.1f} patches/s  {ref / s:.2f}x of {next(iter(secs))}')


if __name__ == '__main__': main()
