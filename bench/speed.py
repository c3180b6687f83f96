"""How fast DRCN trains and infers on this machine, against the machine's own matmul rate measured in the same run.

    python bench/speed.py [--device cpu|cuda] [--json PATH] [--quick]

For the CPU profile (F=64, D=16) and the paper size (F=256, D=16), on 41x41 patches:
- train patches/s for every precision candidate, and for the one `precision='auto'` picks;
- achieved GFLOP/s (3x the forward FLOPs per patch: forward, input and weight gradients);
- train_efficiency = achieved / matmul GFLOP/s of the precision used (fp32 or bf16, timed here);
- train_speedup / infer_speedup = rate of the chosen precision / rate of plain fp32 NCHW eager;
- inference Mpixel/s on a 256x256 image.
Timings are noisy on shared machines: compare ratios from one run, never numbers from different runs.
"""
import argparse, json, platform, time
from pathlib import Path
import torch
from drcn.model import DRCN, autocast
from drcn.train import PRECISIONS, TrainConfig, probe_precision, machine_info, resolve, to_format, train_step


def forward_flops_per_pixel(F, D, supervision=True):
    "Multiply-adds x 2 of one forward pass, per output pixel."
    mac = 9 * (1 * F + F * F + D * F * F + (D if supervision else 1) * (F * F + F * 1))
    return 2 * mac


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()


def matmul_gflops(dev, dtype, n, reps):
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    a @ b; sync(dev)
    t = time.perf_counter()
    for _ in range(reps): a @ b
    sync(dev)
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def train_rate(F, D, prec, dev, batch, steps, patch=41):
    torch.manual_seed(0)
    m = DRCN(F, D).to(dev)
    if prec.endswith('_cl'): m = m.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(m.parameters(), 1e-5)
    x = to_format(torch.rand(batch, 1, patch, patch, device=dev), prec)
    y = to_format(torch.rand(batch, 1, patch, patch, device=dev), prec)
    train_step(m, opt, x, y, prec, 0.5, 0.0, 0.4, dev); sync(dev)
    t = time.perf_counter()
    for _ in range(steps): train_step(m, opt, x, y, prec, 0.5, 0.0, 0.4, dev)
    sync(dev)
    return steps * batch / (time.perf_counter() - t)


@torch.no_grad()
def infer_rate(F, D, prec, dev, side, reps):
    m = DRCN(F, D).to(dev).eval()
    if prec.endswith('_cl'): m = m.to(memory_format=torch.channels_last)
    x = to_format(torch.rand(1, 1, side, side, device=dev), prec)
    with autocast(dev, prec): m(x)
    sync(dev); t = time.perf_counter()
    for _ in range(reps):
        with autocast(dev, prec): m(x)
    sync(dev)
    return reps * side * side / (time.perf_counter() - t) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--json', help='write the figures here')
    ap.add_argument('--quick', action='store_true', help='fewer steps (a smoke run, noisier)')
    a = ap.parse_args()
    dev = torch.device(a.device)
    gpu = dev.type == 'cuda'
    if gpu: torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    n, reps = (8192, 20) if gpu else (2048, 3 if a.quick else 8)
    mm = {'fp32': matmul_gflops(dev, torch.float32, n, reps), 'bf16': matmul_gflops(dev, torch.bfloat16, n, reps)}
    res = dict(machine=dict(machine_info(dev), platform=platform.platform()), matmul_gflops=mm,
               bf16_over_fp32_matmul=mm['bf16'] / mm['fp32'], models={})
    print(f"matmul {n}x{n}: fp32 {mm['fp32']:.0f} GFLOP/s, bf16 {mm['bf16']:.0f} GFLOP/s")
    sizes = {'cpu_profile': (64, 16), 'paper': (256, 16)}
    for name, (F, D) in sizes.items():
        if gpu: batch, steps = 64, (5 if a.quick else 20)
        else: batch, steps = (16, 2 if a.quick else 6) if F == 64 else (2, 1 if a.quick else 2)
        cfg = resolve(TrainConfig(filters=F, recursions=D, device=a.device))
        chosen, probe = probe_precision(cfg, dev, steps=max(1, steps // 2), batch=min(batch, 8))  # what precision='auto' does
        rates = {p: train_rate(F, D, p, dev, batch, steps) for p in PRECISIONS}
        flop_patch = 3 * forward_flops_per_pixel(F, D) * 41 * 41
        side, ireps = (512, 10) if gpu else (128, 2 if a.quick else 4)
        infer = {p: infer_rate(F, D, p, dev, side, ireps) for p in ('fp32', chosen)}
        gf = rates[chosen] * flop_patch / 1e9
        mm_used = mm['bf16'] if chosen.startswith('bf16') else mm['fp32']
        r = dict(F=F, D=D, batch=batch, auto_choice=chosen, probe_patches_per_s=probe,
                 train_patches_per_s=rates, train_gflops=gf, train_efficiency=gf / mm_used,
                 train_speedup=rates[chosen] / rates['fp32'],
                 infer_mpix_per_s=infer, infer_speedup=infer[chosen] / infer['fp32'])
        res['models'][name] = r
        print(f"{name} F={F} D={D}: auto -> {chosen}; train " + ', '.join(f'{p} {v:.1f}' for p, v in rates.items()) +
              f" patches/s; {gf:.0f} GFLOP/s = {r['train_efficiency']:.2f} of {('bf16' if chosen.startswith('bf16') else 'fp32')} matmul;"
              f" train_speedup {r['train_speedup']:.2f}, infer_speedup {r['infer_speedup']:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
        print(f'wrote {a.json}')


if __name__ == '__main__':
    main()
