"""paper_repro/run.py --fast end to end through papermill: every notebook runs, the table and every figure appear."""
import sys
import pandas as pd
from conftest import ROOT, run


def test_repro_fast(workdir, mirror):
    out = workdir / 'repro'
    r = run([sys.executable, ROOT / 'paper_repro' / 'run.py', '--fast', '--out', out], cwd=workdir, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    t = pd.read_csv(out / 'table.csv')
    assert list(t.columns) == ['dataset', 'scale', 'method', 'psnr', 'ssim']
    ours = t[t.method.str.startswith('ours: DRCN')]
    assert sorted(ours.scale) == [2, 3, 4] and set(ours.dataset) == {'Set5'}
    assert len(t[(t.method == 'DRCN') & (t.dataset == 'Set5')]) == 3  # the paper's rows are there
    for f in ('table.png', 'table.md', 'recursion_depth.png', 'recursion_depth.svg', 'ensemble_effect.png',
              'training_curves.png', 'qualitative_x4.png', 'params_depth.png', 'multiscale.png', 'table_archs.png', 'table_archs.md'):
        assert (out / 'figures' / f).stat().st_size > 1000, f
    for nb in ('01_models.ipynb', '02_table.ipynb', '03_figures.ipynb'): assert (out / nb).is_file()
    assert len(pd.read_csv(out / 'models' / 'summary.csv')) == 12  # 3 scales, 3 depths, VDSR, DRRN, 4 multi-scale
    a = pd.read_csv(out / 'table_archs.csv')  # our VDSR and DRRN beside the published ones
    mine = a[a.method.str.startswith('ours')].set_index('method')
    assert set(mine.index) == {'ours: VDSR x2 (CPU)', 'ours: DRRN B1U9 x2 (CPU)'} and set(mine.scale) == {2}
    pub = a[a.method == 'VDSR'].set_index(['dataset', 'scale']).psnr
    assert abs(mine.delta_vs_published['ours: VDSR x2 (CPU)'] - (mine.psnr['ours: VDSR x2 (CPU)'] - pub[('Set5', 2)])) < 2e-4
