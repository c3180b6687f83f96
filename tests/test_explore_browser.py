"""The explorer as a user meets it: JupyterLab on 127.0.0.1, the notebook opened and run in headless Chromium, the
slider over d moved with the mouse, and the y_d panel and its PSNR seen to change.

Needs Debian's `chromium` (apt-get install chromium) and the dev requirements (jupyterlab, ipywidgets, playwright).
Playwright drives the system Chromium (`executable_path`); it never downloads a browser of its own. Every request
that leaves 127.0.0.1 is refused and recorded, and the test asserts there were none. Screenshots are kept in
tests/artifacts/ (explore_lab_d1.png, explore_lab_dmax.png, explore_lab_page.png).
"""
import json, os, re, secrets, shutil, signal, socket, subprocess, time, urllib.request
from contextlib import contextmanager
from pathlib import Path
import pytest
from conftest import BIN, ROOT

CHROMIUM = os.environ.get('DRCN_CHROMIUM', '/usr/bin/chromium')
ARTIFACTS = ROOT / 'tests' / 'artifacts'
# flags that keep Chromium quiet on a closed network: no background fetches, no QUIC, no GPU, no first-run
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def wait_http(url, proc=None, timeout=60):
    "Wait until `url` answers (any HTTP status); fail early if `proc` died."
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None: raise RuntimeError(f'server exited with {proc.returncode}')
        try:
            urllib.request.urlopen(url, timeout=2); return
        except urllib.error.HTTPError: return
        except OSError: time.sleep(0.3)
    raise TimeoutError(f'{url} did not answer in {timeout} s')


def stop(proc, timeout=15):
    "End a process group we started: SIGTERM, then SIGKILL."
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait(5)


@contextmanager
def chromium(origin):
    "A headless Chromium page that may only talk to `origin`; yields (page, list of refused URLs)."
    if not Path(CHROMIUM).is_file():
        pytest.fail(f'{CHROMIUM} not found: install Debian\'s chromium (apt-get install chromium), as the README says')
    from playwright.sync_api import sync_playwright
    refused = []
    def guard(route):
        url = route.request.url
        if url.startswith(origin) or url.startswith(('data:', 'blob:')): route.continue_()
        else: refused.append(url); route.abort()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            ctx = browser.new_context(viewport={'width': 1500, 'height': 1000})
            ctx.route('**/*', guard)
            page = ctx.new_page()
            page.set_default_timeout(30_000)
            yield page, refused
        finally: browser.close()


def lab_settings(folder: Path):
    "User settings for a quiet, fully rendered JupyterLab: no news, no update check, every cell in the DOM."
    files = {'@jupyterlab/apputils-extension/notification.jupyterlab-settings': dict(fetchNews='false', checkForUpdates=False),
             '@jupyterlab/notebook-extension/tracker.jupyterlab-settings': dict(windowingMode='none')}
    for name, value in files.items():
        f = folder / name; f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(value))


@pytest.fixture
def lab(workdir, mirror):
    "JupyterLab on 127.0.0.1 serving a scratch copy of the notebook (the checkout's notebook is never written)."
    root = workdir / 'lab'
    (root / 'nbs').mkdir(parents=True)
    shutil.copy(ROOT / 'nbs' / '20_explore.ipynb', root / 'nbs')
    (root / 'paper_repro').symlink_to(ROOT / 'paper_repro')  # the committed models, where the notebook looks for them
    lab_settings(workdir / 'lab_settings')
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(workdir / 'jcfg'), JUPYTER_RUNTIME_DIR=str(workdir / 'jrun'),
               JUPYTERLAB_SETTINGS_DIR=str(workdir / 'lab_settings'), JUPYTERLAB_WORKSPACES_DIR=str(workdir / 'lab_ws'),
               IPYTHONDIR=str(workdir / 'ipython'), MPLCONFIGDIR=str(workdir / 'mpl'), DRCN_DATA_MIRROR=mirror)
    log = open(workdir / 'jupyterlab.log', 'w')
    proc = subprocess.Popen([str(BIN / 'jupyter'), 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
                             '--port-retries=0', '--allow-root', f'--ServerApp.token={token}', f'--ServerApp.root_dir={root}',
                             '--LabApp.extension_manager=readonly',
                             '--LabApp.news_url=None', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate'],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    try:
        try: wait_http(f'{base}/api/status?token={token}', proc, timeout=90)
        except (RuntimeError, TimeoutError) as e:
            log.flush(); pytest.fail(f'JupyterLab did not start ({e}):\n' + (workdir / 'jupyterlab.log').read_text()[-3000:])
        yield dict(base=base, token=token, log=workdir / 'jupyterlab.log')
    finally:
        try:  # shuts the kernels down too
            urllib.request.urlopen(urllib.request.Request(f'{base}/api/shutdown?token={token}', method='POST'), timeout=10)
            proc.wait(20)
        except Exception: pass
        stop(proc); log.close()


def scores(page) -> dict:
    "The explorer's PSNR column, by row (bicubic, yd, ensemble), as text."
    return {row: page.locator(f'.drcn-scores .drcn-row-{row} .drcn-psnr').first.inner_text()
            for row in ('bicubic', 'yd', 'ensemble')}


def test_explore_in_jupyterlab(lab):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with chromium(lab['base']) as (page, refused):
        try:
            page.goto(f"{lab['base']}/lab/tree/nbs/20_explore.ipynb?token={lab['token']}", timeout=90_000)
            page.locator('.jp-NotebookPanel .jp-Cell').first.wait_for(timeout=90_000)
            kernel_idle = page.locator('.jp-StatusBar-TextItem', has_text=re.compile(r'^(?!No Kernel).*\| Idle$'))
            kernel_idle.wait_for(timeout=90_000)  # a kernel is started and connected
            page.locator('.lm-MenuBar-itemLabel', has_text=re.compile('^Run$')).click()
            page.locator('.lm-Menu-itemLabel', has_text=re.compile('^Run All Cells$')).click()
            # the explorer draws itself once the network has run on the image (a toy model is trained first if needed)
            page.locator('.drcn-explorer .drcn-ready').wait_for(timeout=int(os.environ.get('DRCN_EXPLORE_TIMEOUT', 240)) * 1000)
            kernel_idle.wait_for(timeout=120_000)  # every cell has run
            assert page.locator('.jp-OutputArea-output', has_text='Traceback').count() == 0, 'a cell of the notebook failed'
            app = page.locator('.drcn-explorer')
            app.scroll_into_view_if_needed()
            slider = app.locator('.widget-slider', has=page.locator('label', has_text=re.compile('^d$'))).first
            assert slider.locator('.widget-readout').inner_text().strip() == '1'
            before, img = scores(page), app.locator('img.drcn-panel-yd')
            src_before, shot_before = img.get_attribute('src'), img.screenshot()
            app.screenshot(path=str(ARTIFACTS / 'explore_lab_d1.png'))

            # drag the handle to the right end of the track, as a user would
            handle, track = slider.locator('.noUi-handle'), slider.locator('.noUi-target')
            hb, tb = handle.bounding_box(), track.bounding_box()
            page.mouse.move(hb['x'] + hb['width'] / 2, hb['y'] + hb['height'] / 2)
            page.mouse.down()
            page.mouse.move(tb['x'] + tb['width'] + 20, hb['y'] + hb['height'] / 2, steps=8)
            page.mouse.up()
            d_max = slider.locator('.widget-readout').inner_text().strip()
            assert int(d_max) > 1, f'the slider did not move (readout {d_max})'
            page.locator('.drcn-ready', has_text=f'd = {d_max} of').wait_for(timeout=30_000)
            after = scores(page)
            assert after['yd'] != before['yd'], f'PSNR of y_d did not change: {before} -> {after}'
            assert after['bicubic'] == before['bicubic'] and after['ensemble'] == before['ensemble']
            assert page.locator('.drcn-explorer .widget-html', has_text=f'y_{d_max}').count() >= 1
            assert img.get_attribute('src') != src_before and img.screenshot() != shot_before, 'the y_d image did not change'
            app.screenshot(path=str(ARTIFACTS / 'explore_lab_dmax.png'))
            page.screenshot(path=str(ARTIFACTS / 'explore_lab_page.png'), full_page=False)
            # refused requests, if any, are listed here: the page must not reach beyond 127.0.0.1
            assert not refused, f'the browser tried to reach beyond 127.0.0.1: {refused[:5]}'
        except Exception:
            page.screenshot(path=str(ARTIFACTS / 'explore_lab_failure.png'), full_page=True)
            print('JupyterLab log:', lab['log'].read_text()[-3000:])
            raise
    print(f'explorer test: {time.monotonic() - t0:.0f} s; y_d PSNR {before["yd"]} -> {after["yd"]} dB (d 1 -> {d_max})')
