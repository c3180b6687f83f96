"""paper_repro/run.py --fast end to end through papermill: every notebook runs, the table and every figure appear."""
import sys
import numpy as np
import pandas as pd
from conftest import ROOT, run
from drcn.repro import ABLATION_SEEDS, DEPTH_SEEDS, ablation_runs, model_plan, plan_group


def test_repro_fast(workdir, mirror):
    out = workdir / 'repro'
    r = run([sys.executable, ROOT / 'paper_repro' / 'run.py', '--fast', '--out', out], cwd=workdir, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    t = pd.read_csv(out / 'table.csv')
    assert list(t.columns) == ['dataset', 'scale', 'method', 'psnr', 'ssim']
    ours = t[t.method.str.startswith('ours: DRCN')]
    assert sorted(ours.scale) == [2, 3, 4] and set(ours.dataset) == {'Set5'}
    assert len(t[(t.method == 'DRCN') & (t.dataset == 'Set5')]) == 3  # the paper's rows are there
    for f in ('table.png', 'table.md', 'recursion_depth.png', 'recursion_depth.svg', 'ensemble_effect.png', 'ablation.png',
              'ablation.svg', 'training_curves.png', 'qualitative_x4.png', 'params_depth.png', 'multiscale.png', 'table_archs.png',
              'table_archs.md'):
        assert (out / 'figures' / f).stat().st_size > 1000, f
    for nb in ('01_models.ipynb', '02_table.ipynb', '03_figures.ipynb'): assert (out / nb).is_file()
    summary = pd.read_csv(out / 'models' / 'summary.csv')
    assert sorted(summary.model) == sorted(model_plan('fast'))  # every model of the plan: scales, depth, ablation, VDSR, DRRN, multi-scale
    a = pd.read_csv(out / 'table_archs.csv')  # our VDSR and DRRN beside the published ones
    mine = a[a.method.str.startswith('ours')].set_index('method')
    assert set(mine.index) == {'ours: VDSR x2 (CPU)', 'ours: DRRN B1U9 x2 (CPU)'} and set(mine.scale) == {2}
    pub = a[a.method == 'VDSR'].set_index(['dataset', 'scale']).psnr
    assert abs(mine.delta_vs_published['ours: VDSR x2 (CPU)'] - (mine.psnr['ours: VDSR x2 (CPU)'] - pub[('Set5', 2)])) < 2e-4
    check_studies(out)


def check_studies(out):
    "depth.csv, ablation.csv and ablation_grads.csv of a fast run: a row for every planned model, finite numbers."
    d = pd.read_csv(out / 'depth.csv')
    assert list(d.columns) == ['D', 'seed', 'run', 'patches', 'psnr', 'ssim', 'train_minutes', 'receptive_field', 'params']
    plan = plan_group('fast', 'depth')
    assert sorted(zip(d.D, d.seed)) == sorted((kw['recursions'], kw['seed']) for kw in plan.values())
    assert len(set(d.D)) == 3 and set(d.seed) == set(DEPTH_SEEDS)
    assert (d.receptive_field == 2 * (d.D + 4) + 1).all() and set(d.patches) == {32}  # 2 epochs x 16: the same for every D
    assert d.groupby('D').params.nunique().eq(1).all() and (d.params - d.D).nunique() == 1  # only the D weights w_d differ
    assert np.isfinite(d[['psnr', 'ssim']].to_numpy()).all() and (d.psnr > 10).all()
    a = pd.read_csv(out / 'ablation.csv')
    assert list(a.columns) == ['variant', 'D', 'skip', 'supervision', 'init', 'seed', 'run', 'patches', 'psnr', 'ssim',
                               'train_minutes', 'first_loss', 'final_loss', 'beats_bicubic']
    plan_ab = ablation_runs('fast')
    assert sorted(zip(a.variant, a.D)) == sorted(zip(plan_ab.variant, plan_ab.D)) and set(a.seed) == set(ABLATION_SEEDS)
    basic = a[a.variant == 'basic']
    assert (~basic.skip).all() and (~basic.supervision).all() and set(a[a.variant == 'both_he'].init) == {'he'}
    assert np.isfinite(a[['psnr', 'ssim', 'first_loss', 'final_loss']].to_numpy()).all() and set(a.patches) == {32}
    g = pd.read_csv(out / 'ablation_grads.csv')
    assert set(g.when) == {'init', 'trained'}
    for r in a.itertuples():  # every model measured at init and after training, at every recursion d = 1..D
        for when in ('init', 'trained'):
            s = g[(g.variant == r.variant) & (g.D == r.D) & (g.when == when)]
            assert sorted(s.d) == list(range(1, r.D + 1)), (r.variant, r.D, when)
    assert np.isfinite(g.grad_norm).all() and (g.grad_norm > 0).all()
    assert set(g[g.when == 'init'].alpha) == {1.0} and set(g[g.when == 'trained'].alpha) == {0.0}


def test_repro_group(workdir, mirror):
    "--group trains only those groups of the plan; an unknown group is one line and exit 2."
    out = workdir / 'repro'
    r = run([sys.executable, ROOT / 'paper_repro' / 'run.py', '--fast', '--out', out, '--group', 'depht'], cwd=workdir)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].endswith('--group: no group depht; the groups are '
                                                                          'ablation, arch, depth, multiscale, scale'), r.stderr
    r = run([sys.executable, ROOT / 'paper_repro' / 'run.py', '--fast', '--out', out, '--group', 'depth', '--only', '01_models.ipynb'],
            cwd=workdir, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(pd.read_csv(out / 'models' / 'summary.csv').model) == sorted(plan_group('fast', 'depth'))
