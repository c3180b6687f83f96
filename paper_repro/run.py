"""Regenerate the study's table and figures: run the paper_repro notebooks in order, with papermill.

    python paper_repro/run.py                  # the study: train (or reuse) the models, table, figures (CPU-hours)
    python paper_repro/run.py --fast --out DIR # seconds, Set5 only: tiny models, everything written under DIR
    python paper_repro/run.py --group depth ablation --only 01_models.ipynb   # train those groups' models only
    python paper_repro/run.py --only 03_figures.ipynb                         # redraw the figures from what exists

The full run executes the notebooks in place (their outputs are committed) and writes paper_repro/table.csv and
figures/. It is resumable: finished models are reused, an interrupted one resumes from its last epoch.
"""
import argparse, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ['01_models.ipynb', '02_table.ipynb', '03_figures.ipynb']


def kernel_name():
    "The project's kernel when it is registered (python -m ipykernel install --sys-prefix --name drcn), else python3."
    from jupyter_client.kernelspec import KernelSpecManager
    return 'drcn' if 'drcn' in KernelSpecManager().find_kernel_specs() else 'python3'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--fast', action='store_true', help='tiny models, Set5 only (seconds)')
    ap.add_argument('--out', help='with --fast: the folder for models, notebooks, table and figures')
    ap.add_argument('--only', nargs='*', help='run only these notebooks (e.g. 02_table.ipynb)')
    ap.add_argument('--group', nargs='*', help='train only these groups of the plan: scale, depth, ablation, arch, multiscale')
    a = ap.parse_args(argv)
    if a.only and (bad := sorted(set(a.only) - set(NOTEBOOKS))):
        ap.error(f"--only: no notebook {', '.join(bad)}; the notebooks are {', '.join(NOTEBOOKS)}")
    from drcn.repro import model_plan
    groups = {kw['group'] for kw in model_plan('fast' if a.fast else 'full').values()}
    if a.group and (bad := sorted(set(a.group) - groups)):
        ap.error(f"--group: no group {', '.join(bad)}; the groups are {', '.join(sorted(groups))}")
    import papermill as pm
    if a.fast:
        if not a.out: ap.error('--fast needs --out DIR (the committed results are never overwritten by a fast run)')
        out = Path(a.out).resolve(); out.mkdir(parents=True, exist_ok=True)
        params = dict(mode='fast', models_dir=str(out / 'models'), out_dir=str(out), figures_dir=str(out / 'figures'),
                      datasets='Set5')
        nb_out = out
    else:
        params, nb_out = dict(mode='full'), ROOT / 'paper_repro'
    if a.group: params['groups'] = ','.join(a.group)
    for nb in NOTEBOOKS:
        if a.only and nb not in a.only: continue
        print(f'== {nb}', flush=True)
        pm.execute_notebook(str(ROOT / 'paper_repro' / nb), str(nb_out / nb), cwd=str(ROOT), kernel_name=kernel_name(),
                            parameters=params, progress_bar=False)


if __name__ == '__main__':
    sys.exit(main())
