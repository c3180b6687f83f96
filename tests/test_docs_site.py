"""The documentation site as a reader meets it: `make docs` builds it into _docs/, it is served on 127.0.0.1, and
every page is loaded in headless Chromium (Debian's `chromium`, driven by Playwright with `executable_path`).

Checked on every page: it renders (a title, an article with text, no error output), every image loads, every
internal link leads to a page that exists (and to the heading its #anchor names), and nothing is fetched from
beyond 127.0.0.1. The expected pages are globbed: the landing page, every notebook of nbs/ and every notebook of
paper_repro/. With paper_repro/table.csv present, its numbers must appear on the landing page's table and on the
reproduction's pages; without it, those two checks are skipped and say why.

Also checked (issue 19.8, 19.9): the paper's page (nbs/05_paper) is there with the paper's table, and no page cites a
file the reader cannot open (`../shared/PAPER.md`); the API docs' "source" links point to `git_url` and `branch` of
settings.ini as they are when the site is built; every show_doc signature fits its box; the landing page's table has
one header row, with no empty cell.
"""
import configparser, json, re, subprocess, sys, time, urllib.parse, urllib.request
from html.parser import HTMLParser
from pathlib import Path
import pandas as pd
import pytest
from conftest import ROOT, run
from test_explore_browser import ARTIFACTS, chromium, free_port, stop, wait_http

DOCS = ROOT / '_docs'
TABLE = ROOT / 'paper_repro' / 'table.csv'
PROSE = """() => { const a = document.querySelector('article'); if (!a) return '';
    const c = a.cloneNode(true); c.querySelectorAll('.cell').forEach(e => e.remove()); return c.textContent; }"""  # markdown only
WIDE_SIGNATURES = """() => Array.from(document.querySelectorAll('p.rubric + div.highlight-python pre'))
    .filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.textContent.slice(0, 60))"""  # show_doc's signatures


class Anchors(HTMLParser):
    "The ids of an HTML page (the targets of #anchors)."
    def __init__(self):
        super().__init__(); self.ids = set()
    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k, v in attrs if k in ('id', 'name') and v)


def expected_pages() -> list[str]:
    "The pages the site must have, from the notebooks there are."
    pages = [f'{p.stem}.html' for p in sorted((ROOT / 'nbs').glob('*.ipynb'))]
    pages += [f'paper_repro/{p.stem}.html' for p in sorted((ROOT / 'paper_repro').glob('*.ipynb'))]
    return pages


@pytest.fixture(scope='module')
def site():
    "Build the site with `make docs`, serve _docs/ on 127.0.0.1; yields (base URL, build seconds)."
    t0 = time.monotonic()
    r = run(['make', 'docs', f'PYTHON={sys.executable}'], cwd=ROOT, timeout=900)
    assert r.returncode == 0, f'make docs failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    build_s = time.monotonic() - t0
    port = free_port()
    srv = subprocess.Popen([sys.executable, '-m', 'http.server', str(port), '--bind', '127.0.0.1', '--directory', str(DOCS)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    try:
        wait_http(base + '/index.html', srv, timeout=30)
        yield base, build_s
    finally: stop(srv)


@pytest.fixture(scope='module')
def pages(site):
    "Every HTML page of the site loaded in Chromium: path -> dict(text, title, links, images, errors, ids)."
    base, _ = site
    paths = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob('*.html') if not p.relative_to(DOCS).parts[0].startswith('_'))
    out = {}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium(base) as (page, refused):
        for path in paths:
            resp = page.goto(f'{base}/{path}', wait_until='load')
            page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
            page.wait_for_function('() => Array.from(document.images).every(i => i.complete)', timeout=15_000)
            out[path] = dict(
                status=resp.status, title=page.title(),
                text=page.locator('article').first.inner_text() if page.locator('article').count() else '',
                links=page.eval_on_selector_all('a[href]', 'els => els.map(a => a.href)'),
                images=page.eval_on_selector_all('img', 'els => els.map(i => [i.currentSrc || i.src, i.naturalWidth])'),
                errors=page.locator('.output.traceback, .output.error, .system-message, .problematic').count(),
                ids=set(page.eval_on_selector_all('[id], a[name]', 'els => els.map(e => e.id || e.name)')),
                prose=page.evaluate(PROSE), wide=page.evaluate(WIDE_SIGNATURES),
                sources=page.eval_on_selector_all('a[href]', "els => els.filter(a => a.textContent.trim() == 'source').map(a => a.href)"),
                header_rows=page.eval_on_selector_all('article table', 'ts => ts.map(t => Array.from(t.querySelectorAll("thead tr")).map('
                                                      'r => Array.from(r.cells).map(c => c.textContent.trim())))'))
            if path in ('index.html', '05_paper.html', '14_train.html', '20_explore.html', 'paper_repro/02_table.html'):
                page.screenshot(path=str(ARTIFACTS / f"docs_{path.replace('/', '_').replace('.html', '')}.png"), full_page=True)
        out['_refused'] = list(refused)
    return out


def test_pages_render(site, pages):
    base, build_s = site
    have = {p for p in pages if not p.startswith('_')}
    missing = [p for p in expected_pages() if p not in have]
    assert not missing, f'pages missing from the site: {missing}'
    for path, p in pages.items():
        if path.startswith('_'): continue
        assert p['status'] == 200, path
        assert p['title'].strip(), f'{path}: no title'
        assert p['errors'] == 0, f'{path}: {p["errors"]} error outputs or docutils messages on the page'
        if path in expected_pages() or path == 'index.html':
            assert len(p['text']) > 200, f'{path}: almost no text ({len(p["text"])} characters)'
    # API docs: each library notebook's exported names have their rendered show_doc (nbdev's 'source' link)
    for nb in (ROOT / 'nbs').glob('[0-9]*.ipynb'):
        if '#| export' in nb.read_text():
            assert 'source' in pages[f'{nb.stem}.html']['text'], f'{nb.stem}: no rendered API docs'
    assert 'DRCN' in pages['10_model.html']['text'] and 'run_once' in pages['20_explore.html']['text']
    print(f'docs site: built in {build_s:.0f} s, {len(have)} pages')


def test_figures_load(pages):
    broken = [(path, src) for path, p in pages.items() if not path.startswith('_') for src, w in p['images'] if not w]
    assert not broken, f'images that did not load: {broken[:10]}'


def test_internal_links_resolve(site, pages):
    base, _ = site
    ids = {f'{base}/{path}': p['ids'] for path, p in pages.items() if not path.startswith('_')}
    bad, checked = [], set()
    for path, p in pages.items():
        if path.startswith('_'): continue
        for href in p['links']:
            if not href.startswith(base): continue  # an external link (GitHub sources): not part of the site
            url, _, frag = href.partition('#')
            if url.endswith('/'): url += 'index.html'
            if url not in ids and url not in checked:
                try:
                    with urllib.request.urlopen(url, timeout=10) as r:
                        a = Anchors(); a.feed(r.read().decode('utf-8', 'replace')); ids[url] = a.ids
                except Exception as e: bad.append((path, href, str(e))); checked.add(url); continue
            frag = urllib.parse.unquote(frag)
            if frag and url in ids and frag not in ids[url]: bad.append((path, href, 'no such anchor'))
    assert not bad, f'broken internal links: {bad[:10]}'


def test_nothing_fetched_from_outside(pages):
    assert not pages['_refused'], f'pages tried to load from beyond 127.0.0.1: {pages["_refused"][:10]}'


def table_rows():
    if not TABLE.is_file():
        pytest.skip(f'{TABLE.relative_to(ROOT)} does not exist yet (python paper_repro/run.py writes it): '
                    'nothing to compare the rendered table with')
    return pd.read_csv(TABLE)


def shown_as(x: float, decimals: int) -> set[str]:
    """How a page may print `x` to `decimals`: table.csv holds 4 decimals, and a value on a tie there (27.5750, from
    27.57503) is 27.58 on a page rounded from the full value, 27.57 when rounded again from the stored one."""
    return {f'{x + d:.{decimals}f}' for d in (-1e-9, 0.0, 1e-9)}


def missing_numbers(t: pd.DataFrame, text: str) -> list:
    "Rows of the table whose PSNR (2 decimals) or SSIM (4 decimals) are not among the numbers of `text`."
    numbers = set(re.findall(r'\d+\.\d+', text))
    return [(r.dataset, r.scale, r.method, r.psnr, r.ssim) for r in t.itertuples()
            if not shown_as(r.psnr, 2) & numbers or not shown_as(r.ssim, 4) & numbers]


def test_landing_page_shows_the_table(pages):
    t = table_rows()
    miss = missing_numbers(t, pages['index.html']['text'])
    assert not miss, f'{len(miss)} of {len(t)} rows of {TABLE.name} are not on the landing page, e.g. {miss[:5]}'


def test_reproduction_pages_show_the_table(pages):
    t = table_rows()
    text = '\n'.join(p['text'] for path, p in pages.items() if path.startswith('paper_repro/'))
    miss = missing_numbers(t, text)
    assert not miss, (f'{len(miss)} of {len(t)} rows of {TABLE.name} are on no paper_repro page (are the notebooks '
                      f'saved with their outputs?), e.g. {miss[:5]}')


# ---- issue 19.8: the paper's facts on a page of the site; sources from settings.ini ---------------------------------

def markdown_links_to(nb: Path, target: str) -> bool:
    "Whether a markdown cell of notebook `nb` links to the notebook `target` (e.g. '05_paper.ipynb')."
    cells = json.loads(nb.read_text())['cells']
    return any(re.search(r'\]\([^)]*' + re.escape(target), ''.join(c['source'])) for c in cells if c['cell_type'] == 'markdown')


def test_paper_page(pages):
    "nbs/05_paper is on the site with the paper's whole table; every page that cites it links to it; none cites PAPER.md."
    from drcn.evaluate import paper_table
    paper = pages['05_paper.html']
    numbers = set(re.findall(r'\d+\.\d+', paper['text']))
    t = paper_table()
    missing = [(r.dataset, r.scale, r.method) for r in t.itertuples() if f'{r.psnr:.2f}' not in numbers or f'{r.ssim:.4f}' not in numbers]
    assert not missing, f'cells of the paper\'s table not on 05_paper.html: {missing[:5]}'
    for fact in ('1,775,121', '41x41', 'Sec. 4.2', 'SelfExSR', 'arXiv:1511.04491'):
        assert fact in paper['text'], fact
    citing = [f'{nb.stem}.html' for nb in sorted((ROOT / 'nbs').glob('*.ipynb')) if markdown_links_to(nb, '05_paper.ipynb')]
    citing += [f'paper_repro/{nb.stem}.html' for nb in sorted((ROOT / 'paper_repro').glob('*.ipynb')) if markdown_links_to(nb, '05_paper.ipynb')]
    assert len(citing) >= 5, citing
    for path in citing:
        assert any(urllib.parse.urlparse(h).path.endswith('/05_paper.html') for h in pages[path]['links']), f'{path}: no link to 05_paper.html'
    shared = [path for path, p in pages.items() if not path.startswith('_') and 'PAPER.md' in p['prose']]
    assert not shared, f'pages whose text cites PAPER.md, a file outside the repository: {shared}'


def settings(ini: Path = ROOT / 'settings.ini') -> configparser.SectionProxy:
    cfg = configparser.ConfigParser(); cfg.read(ini); return cfg['DEFAULT']


def check_sources(links: list, git_url: str, branch: str):
    "Every 'source' link is `git_url`/blob/`branch`/FILE#Ln, with FILE a file of the package and n one of its lines."
    prefix = f"{git_url.rstrip('/')}/blob/{branch}/"
    assert links, 'no source links'
    for href in links:
        assert href.startswith(prefix), f'{href} is not under {prefix} (settings.ini: git_url, branch)'
        path, _, line = href[len(prefix):].partition('#L')
        assert (ROOT / path).is_file() and path.startswith('drcn/'), href
        assert 1 <= int(line) <= len((ROOT / path).read_text().splitlines()), href


def test_source_links_from_settings_ini(pages):
    s = settings()
    links = [h for path, p in pages.items() if not path.startswith('_') for h in p['sources']]
    check_sources(links, s['git_url'], s.get('branch', 'main'))
    assert len(links) > 50, len(links)


def test_source_links_follow_settings_ini(tmp_path):
    "Another git_url and branch in settings.ini are the source links of the next build (not those of the last nbdev_export)."
    cfg = configparser.ConfigParser(); cfg.read(ROOT / 'settings.ini')
    cfg['DEFAULT'].update(git_url='https://example.org/someone/drcn-fork', branch='try-this')
    with open(tmp_path / 'settings.ini', 'w') as f: cfg.write(f)
    code = ('import sys; sys.path.insert(0, sys.argv[1]); import prepare; prepare.use_settings(sys.argv[2]); '
            'prepare.process(prepare.ROOT / "nbs" / "11_loss.ipynb", prepare.Path(sys.argv[3]))')
    r = run([sys.executable, '-c', code, ROOT / 'docs', tmp_path / 'settings.ini', tmp_path / '11_loss.ipynb'], cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    text = (tmp_path / '11_loss.ipynb').read_text()
    links = re.findall(r'(https?://[^)"\s\\]+/blob/[^)"\s\\]+)', text)
    check_sources(links, 'https://example.org/someone/drcn-fork', 'try-this')


# ---- issue 19.9: the look -------------------------------------------------------------------------------------------

def test_signatures_fit_their_box(pages):
    "No show_doc signature is wider than its box (TrainConfig's was): long ones wrap."
    wide = {path: p['wide'] for path, p in pages.items() if not path.startswith('_') and p['wide']}
    assert not wide, f'signatures wider than their box: {wide}'


def test_landing_table_one_header_row(pages):
    tables = pages['index.html']['header_rows']
    if not TABLE.is_file(): pytest.skip(f'{TABLE.relative_to(ROOT)} does not exist yet: the landing page has no table')
    assert tables, 'no table on the landing page'
    for rows in tables:
        assert len(rows) == 1 and all(rows[0]), f'the landing page\'s table header: {rows}'
