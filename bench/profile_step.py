"""Where the time of one DRCN training step goes: torch.profiler's op table, sorted by self CPU time.

    python bench/profile_step.py [--F 64] [--D 16] [--batch 16] [--precision bf16_cl] [--threads 1]
                                 [--allocator tuned|default|both] [--steps 3]

One thread by default: CPU time per op is then what it would be on an idle machine even when other jobs share the
cores, so tables from a busy machine can still be compared (as ratios). `--allocator both` races the step with
glibc's default allocator against `drcn.speed.tune_allocator()`, one process per measurement, interleaved;
`--compile` races the eager step against `torch.compile`'s (inductor), compile time reported apart.
"""
import argparse, platform, resource, time
import torch
from drcn.speed import race, tune_allocator
from drcn.train import machine_info
from speed import make_step  # bench/speed.py: the same step, built once


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--F', type=int, default=64); ap.add_argument('--D', type=int, default=16)
    ap.add_argument('--batch', type=int, default=16); ap.add_argument('--precision', default='bf16_cl')
    ap.add_argument('--threads', type=int, default=1); ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--allocator', choices=('tuned', 'default', 'both'), default='tuned')
    ap.add_argument('--rate', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--compile', action='store_true', help="race the eager step against torch.compile's (inductor)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads); dev = torch.device('cpu')
    info = machine_info(dev)
    if not a.rate: print(f"{info.get('cpu', platform.processor())} ({', '.join(info.get('isa', []))}), torch {torch.__version__}, "
          f"{a.threads} thread(s); DRCN F={a.F} D={a.D}, batch {a.batch}, {a.precision}")
    step = make_step(a.F, a.D, a.precision, dev, a.batch)
    clock = time.process_time if a.threads == 1 else time.perf_counter
    if a.allocator == 'both':  # one process per measurement (a heap once trimmed would fault again), interleaved
        import json, statistics, subprocess, sys
        res = {'default': [], 'tuned': []}
        for _ in range(3):
            for k in res:
                out = subprocess.run([sys.executable, __file__, *sys.argv[1:], '--allocator', k, '--rate'],
                                     capture_output=True, text=True, check=True).stdout
                res[k].append(json.loads(out.strip().splitlines()[-1]))
        med = {k: {m: statistics.median(r[m] for r in v) for m in ('rate', 'faults')} for k, v in res.items()}
        for k, v in med.items():
            print(f"allocator {k:8s}: {v['rate']:6.1f} patches per {'CPU-' if a.threads == 1 else ''}second, "
                  f"{v['faults']:,.0f} page faults per step (medians of 3 processes)")
        print(f"tuned / default: {med['tuned']['rate'] / med['default']['rate']:.2f}x")
        return
    if a.compile:  # eager vs inductor, the same step; compile time reported apart, never counted in the rates
        tune_allocator()
        eager, compiled = make_step(a.F, a.D, a.precision, dev, a.batch), make_step(a.F, a.D, a.precision, dev, a.batch, compiled=True)
        t = time.perf_counter(); compiled()
        print(f'compile (first compiled step): {time.perf_counter() - t:.0f} s')
        secs = race({'eager': eager, 'compiled': compiled}, rounds=4, clock=clock)
        for k, v in secs.items(): print(f'{k:8s}: {a.batch / v:6.1f} patches per {"CPU-" if a.threads == 1 else ""}second')
        print(f"compiled / eager: {secs['eager'] / secs['compiled']:.2f}x")
        return
    if a.rate:  # the child of --allocator both: a rate and the page faults per step, as JSON
        import json
        tune_allocator(a.allocator == 'tuned')
        for _ in range(3): step()
        r0, t = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, clock()
        for _ in range(a.steps): step()
        dt, fl = (clock() - t) / a.steps, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / a.steps
        print(json.dumps(dict(rate=a.batch / dt, faults=fl))); return
    tune_allocator(a.allocator == 'tuned')
    for _ in range(2): step()
    from torch.profiler import profile, ProfilerActivity
    t = clock()
    with profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(a.steps): step()
    dt = (clock() - t) / a.steps
    print(f'{dt * 1000:.0f} ms per step under the profiler ({a.batch / dt:.1f} patches per '
          f'{"CPU-" if a.threads == 1 else ""}second), allocator {a.allocator}')
    print(p.key_averages().table(sort_by='self_cpu_time_total', row_limit=12))


if __name__ == '__main__':
    main()
