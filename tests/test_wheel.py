"""The package as a user installs it (issue 19.6): a wheel built from the sources, installed with pip into a fresh
venv, and run from a folder outside the checkout, with no `--model`: `drcn-upscale` on a Set5 image, `drcn-eval
bicubic` on Set5 and `import drcn.repro`, the three that read files shipped with the package (the committed CPU
models, `manifest.csv`, `drcn_paper_table.csv`).

Nothing is written into the checkout: setuptools writes `build/` and `drcn.egg-info/` beside the sources it builds,
so the wheel is built from a copy of them in a temporary folder. The venv is new but is given the running
interpreter's site-packages after the wheel is installed (a `.pth` file), so torch and the rest are not installed
again (minutes) and pip never sees the checkout's editable install; `drcn` itself must come from the wheel.
The time of each step is printed (`pytest -s`)."""
import shutil, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from conftest import ROOT, run
from drcn.evaluate import load_y, degrade, paper_table
from drcn.metrics import psnr, to_uint8

SOURCES = ['setup.py', 'settings.ini', 'pyproject.toml', 'MANIFEST.in', 'README.md', 'LICENSE']  # what a build reads, with drcn/


def timed(times, step, cmd, **kw):
    "Run `cmd`, record its seconds under `step`, fail with its output if it fails."
    t0 = time.monotonic()
    r = run([str(c) for c in cmd], **kw)
    times[step] = time.monotonic() - t0
    assert r.returncode == 0, f'{step} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return r


@pytest.fixture(scope='module')
def wheel_env(tmp_path_factory, mirror):
    "(venv, env, user folder, times): the wheel installed in a fresh venv; env keeps every file in the temporary folder."
    d, times = tmp_path_factory.mktemp('wheel'), {}
    src = d / 'src'
    shutil.copytree(ROOT / 'drcn', src / 'drcn', ignore=shutil.ignore_patterns('__pycache__', '*.tmp'))
    for f in SOURCES:
        if (ROOT / f).is_file(): shutil.copy2(ROOT / f, src / f)
    timed(times, 'pip wheel', [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', src,
                               '-w', d / 'dist'], timeout=300)
    wheels = list((d / 'dist').glob('drcn-*.whl'))
    assert len(wheels) == 1, wheels
    venv = d / 'venv'
    timed(times, 'venv', [sys.executable, '-m', 'venv', '--without-pip', venv])
    py = venv / 'bin' / 'python'
    timed(times, 'pip install', [sys.executable, '-m', 'pip', '--python', py, 'install', '--no-deps', '-q', wheels[0]], timeout=300)
    site = run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']).stdout.strip()
    outer = [p for p in sys.path if p.rstrip('/').endswith(('site-packages', 'dist-packages'))]
    (Path(site) / 'zz_outer_site_packages.pth').write_text('\n'.join(outer) + '\n')  # after the install: pip saw none
    user = d / 'user'; user.mkdir()
    env = dict(DRCN_DATA=str(d / 'data'), DRCN_CACHE=str(d / 'cache'), XDG_CACHE_HOME=str(d / 'xdg'),
               PYTHONPATH='', OMP_NUM_THREADS='1')
    yield venv, env, user, times
    print('wheel test, seconds: ' + ', '.join(f'{k} {v:.1f}' for k, v in times.items()) + f'; total {sum(times.values()):.1f}')


def test_installed_from_the_wheel(wheel_env):
    "`drcn` is the wheel's (not the checkout's), its data files are there, and `drcn.repro` imports."
    venv, env, user, times = wheel_env
    r = timed(times, 'import drcn.repro', [venv / 'bin' / 'python', '-c', 'import drcn, drcn.repro, drcn.upscale as u; '
               'print(drcn.__file__); print(len(drcn.repro.paper_table())); print(*(u.default_model(s) for s in (2, 3, 4)))'],
              cwd=user, env=env)
    file, rows, *models = r.stdout.split()
    assert Path(file).is_relative_to(venv) and not Path(file).is_relative_to(ROOT), file
    assert int(rows) == len(paper_table()) == 72
    assert all(Path(m).is_relative_to(venv) and Path(m).is_file() for m in models), models


def test_upscale_without_model(wheel_env, mirror):
    """`drcn-upscale LR.png OUT.png --scale 2`, no --model: a Set5 image, shrunk by MATLAB's bicubic, comes back
    at its size and well above bicubic (the committed x2 model gains about 3 dB on Set5; an untrained one would not)."""
    venv, env, user, times = wheel_env
    hr = load_y(Path(mirror) / 'Set5' / 'butterfly.png', 2)
    lr, bic = degrade(hr, 2)
    Image.fromarray(to_uint8(lr)).save(user / 'photo.png')
    r = timed(times, 'drcn-upscale', [venv / 'bin' / 'drcn-upscale', 'photo.png', 'photo_x2.png', '--scale', '2',
                                      '--no-progress'], cwd=user, env=env, timeout=300)
    assert 'photo_x2.png' in r.stdout and r.stderr == '', (r.stdout, r.stderr)
    out = np.asarray(Image.open(user / 'photo_x2.png'))
    assert out.shape == hr.shape, (out.shape, hr.shape)
    p_drcn, p_bic = (psnr(hr, to_uint8(x), border=2) for x in (out, bic))
    print(f'butterfly x2 from the wheel: DRCN {p_drcn:.2f} dB, bicubic {p_bic:.2f} dB')
    assert p_drcn > p_bic + 1, (p_drcn, p_bic)


def test_eval_bicubic(wheel_env):
    "`drcn-eval bicubic --datasets Set5 --scales 2` from the wheel: the paper's bicubic cell, within 0.01 dB."
    venv, env, user, times = wheel_env
    r = timed(times, 'drcn-eval', [venv / 'bin' / 'drcn-eval', 'bicubic', '--datasets', 'Set5', '--scales', '2',
                                   '--csv', 'bicubic.csv', '--no-progress'], cwd=user, env=env, timeout=300)
    assert 'Set5' in r.stdout, r.stdout
    ours = pd.read_csv(user / 'bicubic.csv').iloc[0]
    ref = paper_table().query('method == "Bicubic" and dataset == "Set5" and scale == 2').iloc[0]
    assert abs(ours.psnr - ref.psnr) < 0.01, (ours.psnr, ref.psnr)
    assert not {'data', 'cache'} & {p.name for p in user.iterdir()}, 'drcn-eval wrote into the folder it ran in'
