"""How fast DRCN trains and infers on this machine, against the machine's own matmul rate measured in the same run.

    python bench/speed.py [--device cpu|cuda] [--json PATH] [--quick] [--big]

For the CPU profile (F=64, D=16) and the paper size (F=256, D=16), on 41x41 patches:
- train patches/s of every precision candidate, raced in interleaved rounds (medians), and the one that
  `precision='auto'` picks;
- train_efficiency = achieved GFLOP/s (3x the forward FLOPs per patch: forward, input and weight gradients) over
  the matmul GFLOP/s of the precision used (fp32 or bf16, timed here); fp32_train_efficiency the same for fp32
  (what an AVX2-only machine, where bf16 is slow, trains in);
- inference Mpixel/s on a 256x256 image in fp32, bf16 channels-last with the last conv in fp32 (`exact`) and all in
  bf16 (`fast`, drcn-upscale's default), and infer_efficiency = achieved GFLOP/s over the matmul rate;
- `--big` (not in CI, minutes): `drcn-upscale` at x2 with the packaged x2 model on a 2000x1500 and a 4000x3000 RGB
  photo, wall time and peak RSS of the process.
The process runs with `drcn.speed.tune_allocator()`, as every command of the package does. Timings are noisy on
shared machines: compare ratios from one run, never numbers from different runs; the JSON names the CPU.
"""
import argparse, json, math, platform, resource, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch
from drcn.core import Precision
from drcn.model import DRCN
from drcn.speed import race, tune_allocator
from drcn.train import PRECISIONS, TrainConfig, probe_precision, machine_info, resolve, to_format, train_step


def forward_flops_per_pixel(F, D, supervision=True):
    "Multiply-adds x 2 of one forward pass, per output pixel."
    mac = 9 * (1 * F + F * F + D * F * F + (D if supervision else 1) * (F * F + F * 1))
    return 2 * mac


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()


def matmul_gflops(dev, dtype, n, rounds):
    "The machine's matmul rate: the best of `rounds` timed products (a rate is a peak; a slow round is another job's)."
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    a @ b; sync(dev); best = float('inf')
    for _ in range(rounds):
        t = time.perf_counter(); a @ b; sync(dev); best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def make_step(F, D, prec, dev, batch, compiled=False):
    "One training step of DRCN F, D in precision `prec` (Adam, clipping: the CPU recipe's step), as a call."
    torch.manual_seed(0)
    m = DRCN(F, D).to(dev)
    if prec.endswith('_cl'): m = m.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(m.parameters(), 1e-5)
    net = torch.compile(m) if compiled else m
    x = to_format(torch.rand(batch, 1, 41, 41, device=dev), prec)
    y = to_format(torch.rand(batch, 1, 41, 41, device=dev), prec)
    def step(): train_step(net, opt, x, y, prec, 0.5, 0.0, 0.4, dev); sync(dev)
    return step


def train_steps(F, D, dev, batch):
    "name -> one training step of that precision."
    return {p: make_step(F, D, p, dev, batch) for p in PRECISIONS}


def infer_calls(F, D, dev, side):
    "name -> one inference of a side x side image: fp32, bf16 channels-last exact (last conv fp32) and fast (all bf16)."
    def make(prec, exact=True):
        m = DRCN(F, D).to(dev).eval(); m.exact_residual = exact
        if prec.endswith('_cl'): m = m.to(memory_format=torch.channels_last)
        x = to_format(torch.rand(1, 1, side, side, device=dev), prec)
        @torch.no_grad()
        def f():
            with Precision(prec).autocast(dev): m(x)
            sync(dev)
        return f
    return {'fp32': make('fp32'), 'bf16_cl_exact': make('bf16_cl'), 'bf16_cl_fast': make('bf16_cl', exact=False)}


def photo(path, w, h):
    "A photo-like RGB test image: a B100 picture enlarged to w x h (bicubic), saved as PNG."
    from PIL import Image
    from drcn.data import image_paths
    src = Image.open(image_paths('B100')[0]).convert('RGB')
    src.resize((w, h), Image.BICUBIC).save(path)


def big_upscale(sizes=((2000, 1500), (4000, 3000))) -> list[dict]:
    "Wall time and peak RSS of `drcn-upscale IN OUT --scale 2` (the packaged x2 model, its default precision)."
    exe = Path(sys.executable).parent / 'drcn-upscale'
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for w, h in sizes:
            src, dst = Path(d) / f'photo_{w}x{h}.png', Path(d) / 'out.png'
            photo(src, w, h)
            wrap = ('import resource, subprocess, sys, time; t = time.perf_counter(); r = subprocess.run(sys.argv[1:]);'
                    'print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)')
            out = subprocess.run([sys.executable, '-c', wrap, str(exe), str(src), str(dst), '--scale', '2'],
                                 capture_output=True, text=True)
            secs, rss_kb, rc = out.stdout.split()[-3:]
            rows.append(dict(input=f'{w}x{h}', output=f'{2 * w}x{2 * h}', seconds=float(secs), peak_rss_gb=int(rss_kb) / 2 ** 20,
                             mpix_per_s=4 * w * h / 1e6 / float(secs), ok=rc == '0'))
            print(f"drcn-upscale {w}x{h} -> {2 * w}x{2 * h}: {float(secs):.1f} s, peak RSS {int(rss_kb) / 2 ** 20:.2f} GB"
                  + ('' if rc == '0' else f' (exit {rc}: {out.stderr[-300:]})'), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--json', help='write the figures here')
    ap.add_argument('--quick', action='store_true', help='fewer rounds (a smoke run, noisier)')
    ap.add_argument('--big', action='store_true', help='also time drcn-upscale on 2000x1500 and 4000x3000 photos (minutes)')
    ap.add_argument('--no-allocator', action='store_true',
                    help="leave glibc's allocator as it is (to time an older checkout: PYTHONPATH=OLD python bench/speed.py --no-allocator)")
    a = ap.parse_args()
    if not a.no_allocator: tune_allocator()
    dev = torch.device(a.device)
    gpu = dev.type == 'cuda'
    if gpu: torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    rounds = 2 if a.quick else 3
    n = 8192 if gpu else 2048
    mm = {'fp32': matmul_gflops(dev, torch.float32, n, rounds + 4), 'bf16': matmul_gflops(dev, torch.bfloat16, n, rounds + 4)}
    info = machine_info(dev)
    try:
        cpuinfo = Path('/proc/cpuinfo').read_text().splitlines()
        info['cpu_family_model'] = '/'.join(next(l.split(':')[1].strip() for l in cpuinfo if l.startswith(k))
                                            for k in ('cpu family', 'model\t', 'stepping'))
    except (OSError, StopIteration): pass
    import drcn
    res = dict(machine=dict(info, platform=platform.platform()), package=str(Path(drcn.__file__).parent), allocator_tuned=not a.no_allocator,
               matmul_gflops=mm,
               bf16_over_fp32_matmul=mm['bf16'] / mm['fp32'], models={})
    print(f"{info.get('cpu', '?')} ({info.get('cpu_family_model', '?')}; {', '.join(info.get('isa', []))}), "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"matmul {n}x{n}: fp32 {mm['fp32']:.0f} GFLOP/s, bf16 {mm['bf16']:.0f} GFLOP/s", flush=True)
    sizes = {'cpu_profile': (64, 16), 'paper': (256, 16)}
    for name, (F, D) in sizes.items():
        batch = 64 if gpu else (16 if F == 64 else 4)
        cfg = resolve(TrainConfig(filters=F, recursions=D, device=a.device, batch_size=batch))
        chosen, probe = probe_precision(cfg, dev)  # what precision='auto' does
        secs = race(train_steps(F, D, dev, batch), rounds=rounds)
        rates = {p: batch / s if math.isfinite(s) else 0.0 for p, s in secs.items()}
        best = max(rates, key=rates.get)
        flop_patch = 3 * forward_flops_per_pixel(F, D) * 41 * 41
        mm_of = lambda p: mm['bf16'] if p.startswith('bf16') else mm['fp32']
        side = 512 if gpu else 256
        isecs = race(infer_calls(F, D, dev, side), rounds=rounds)
        infer = {k: side * side / s / 1e6 for k, s in isecs.items()}
        ieff = {k: v * 1e6 * forward_flops_per_pixel(F, D) / 1e9 / mm_of(k) for k, v in infer.items()}
        r = dict(F=F, D=D, batch=batch, auto_choice=chosen, probe_patches_per_s=probe, fastest=best,
                 train_patches_per_s=rates, train_gflops=rates[best] * flop_patch / 1e9,
                 train_efficiency=rates[best] * flop_patch / 1e9 / mm_of(best),
                 fp32_train_efficiency=rates['fp32_cl'] * flop_patch / 1e9 / mm['fp32'] if rates['fp32_cl'] > rates['fp32']
                                       else rates['fp32'] * flop_patch / 1e9 / mm['fp32'],
                 train_speedup=rates[best] / rates['fp32'], infer_side=side, infer_mpix_per_s=infer, infer_efficiency=ieff,
                 infer_speedup=infer['bf16_cl_fast'] / infer['fp32'])
        res['models'][name] = r
        print(f"{name} F={F} D={D}, batch {batch}: auto -> {chosen}; train " + ', '.join(f'{p} {v:.1f}' for p, v in rates.items())
              + f" patches/s; {r['train_gflops']:.0f} GFLOP/s = {r['train_efficiency']:.2f} of {best[:4]} matmul"
              f" (fp32: {r['fp32_train_efficiency']:.2f} of fp32 matmul); infer {side}x{side} Mpixel/s "
              + ', '.join(f'{k} {v:.3f} ({ieff[k]:.2f})' for k, v in infer.items()), flush=True)
    late = {'fp32': matmul_gflops(dev, torch.float32, n, rounds + 4), 'bf16': matmul_gflops(dev, torch.bfloat16, n, rounds + 4)}
    print(f"matmul again at the end: fp32 {late['fp32']:.0f}, bf16 {late['bf16']:.0f} GFLOP/s (efficiencies above use the start's)")
    res['matmul_gflops_end'] = late
    if a.big: res['big'] = big_upscale()
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
        print(f'wrote {a.json}')


if __name__ == '__main__':
    main()
