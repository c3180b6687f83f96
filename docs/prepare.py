"""Turn the notebooks into the sources of the documentation site (`make docs` runs this, then Sphinx).

nbdev renders its sites with Quarto, which these machines cannot install; Sphinx with MyST-NB (from PyPI, offline)
renders the same notebooks here. This script is the bridge: it runs nbdev's own documentation processors on every
notebook (a `show_doc` for each exported name, with its docments table; hidden and export cells removed), with two
changes for Sphinx, and writes the result to `_proc/`:

- only exported cells and `show_doc` cells are executed to render the API docs (nbdev also runs every cell that
  imports something, which would run a notebook's tests: they need data and belong to `nbdev_test`);
- Quarto's cell options become MyST-NB's tags (`#| echo: false` -> `remove-input`), and the title cell stays a
  heading (nbdev would move it into Quarto front matter).

Two more things a site needs and nbdev would do elsewhere: links between notebooks are written as the repository has
them (`nbs/05_paper.ipynb` -> `../paper_repro/03_figures.ipynb`, and back with `../nbs/`) and are rewritten for the
site's layout (nbs/ at its root, paper_repro/ below it); and the "source" link of every show_doc points to `git_url`
at `branch` of settings.ini as it is now (nbdev would take the copy that the last `nbdev_export` wrote into
`drcn/_modidx.py`).

The landing page (`nbs/index.ipynb`) is executed here, so the numbers it shows are those of `paper_repro/table.csv`
at build time; every other notebook is shown with the outputs it was saved with. The reproduction's notebooks are
taken from `paper_repro/*.ipynb`, whatever they are, with the figures they link to.

Usage: python docs/prepare.py [OUT [SETTINGS]]   (OUT defaults to _proc, SETTINGS to settings.ini, beside this folder)
"""
import configparser, os, posixpath, re, shutil, sys
from pathlib import Path
from execnb.nbio import mk_cell, read_nb, write_nb
from execnb.shell import CaptureShell
from nbdev import processors as P
from nbdev.process import NBProcessor

ROOT = Path(__file__).resolve().parents[1]


class exec_docs(P.exec_show_docs):
    "nbdev's `exec_show_docs`, narrowed to exported cells and `show_doc` cells."
    def __call__(self, cell):
        if not getattr(self.nb, 'has_docs_', None) or not hasattr(self, 'k') or cell.cell_type != 'code': return
        if not (cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'} or P._is_showdoc(cell)): return
        self.k.cell(cell)
        if self.k.exc:
            raise RuntimeError(f'{self.nb.path_}: cell {cell.idx_} failed while rendering the docs:\n{cell.source}') from self.k.exc


_OPTION = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:\s*(.*?)\s*$')
TAGS = {('echo', 'false'): 'remove-input', ('output', 'false'): 'remove-output', ('include', 'false'): 'remove-cell'}

def myst_tags(cell):
    "Quarto cell options as MyST-NB tags; the `#|` lines leave the code shown."
    if cell.cell_type != 'code' or not cell.source: return
    options, kept = [(k.rstrip(':'), (v or [''])[0]) for k, v in cell.directives_.items()], []
    for line in cell.source.splitlines():  # options added after nbdev read the cell (show_doc's)
        m = _OPTION.match(line)
        if m is None: kept.append(line)
        else: options.append((m[1], m[2]))
    tags = [TAGS[k, str(v).lower()] for k, v in options if (k, str(v).lower()) in TAGS]
    if tags: cell.metadata['tags'] = sorted(set(cell.metadata.get('tags', [])) | set(tags))
    cell.source = '\n'.join(kept)


def no_rule(cell):
    "show_doc's Markdown starts with a horizontal rule, which docutils allows only between sections: drop it."
    for o in cell.get('outputs', []):
        md = o.get('data', {}).get('text/markdown')
        if md is None: continue
        text = ''.join(md) if isinstance(md, list) else md
        o['data']['text/markdown'] = re.sub(r'\A\s*---\s*\n', '', text)


def use_settings(ini=ROOT / 'settings.ini') -> dict:
    "Make nbdev's source links point to `git_url` at `branch` of `ini`; returns those two."
    from drcn import _modidx
    from nbdev.doclinks import _build_lookup_table
    cfg = configparser.ConfigParser(delimiters=['='])
    if not cfg.read(ini): raise SystemExit(f'{ini}: no such settings file')
    repo = dict(git_url=cfg['DEFAULT']['git_url'].rstrip('/'), branch=cfg['DEFAULT'].get('branch', 'main'))
    _modidx.d['settings'].update(repo)  # the dict that nbdev's lookup loads through the package's entry point
    _build_lookup_table.cache_clear()
    return repo


SITE = {'nbs': '', 'paper_repro': 'paper_repro'}  # repository folder -> its place on the site
_NB_LINK = re.compile(r'(\]\()([^)\s#]+\.ipynb)(#[^)\s]*)?(\))')

def site_link(target: str, folder: str) -> str:
    "A link to a notebook as the repository has it (relative to `folder`, 'nbs' or 'paper_repro'), as the site has it."
    if '://' in target or target.startswith('/'): return target
    top, _, rest = posixpath.normpath(posixpath.join(folder, target)).partition('/')
    if top not in SITE or folder not in SITE: return target
    return posixpath.relpath(posixpath.join(SITE[top], rest), SITE[folder] or '.')

def site_links(nb, folder: str):
    "Every notebook link of the markdown cells of `nb` (from the repository's `folder`) rewritten for the site."
    for c in nb.cells:
        if c.cell_type == 'markdown':
            c.source = _NB_LINK.sub(lambda m: m[1] + site_link(m[2], folder) + (m[3] or '') + m[4], c.source)


PROCS = [P.populate_language, P.add_show_docs, P.strip_ansi, P.hide_line, P.filter_stream_, P.rm_header_dash,
         P.clean_show_doc, exec_docs, P.rm_export, P.clean_magics, P.hide_, P.strip_hidden_metadata, myst_tags, no_rule]


def process(src: Path, dest: Path, run: bool = False):
    "One notebook through the processors (and executed first when `run`, in its own folder, as nbdev_test runs it)."
    nb = read_nb(src)
    nb.path_ = str(src)
    if run:
        cwd = os.getcwd(); os.chdir(src.parent)
        try:
            shell = CaptureShell()
            shell.run_all(nb, exc_stop=True)
        finally: os.chdir(cwd)
    site_links(nb, src.parent.name)
    NBProcessor(nb=nb, procs=PROCS).process()
    nb.cells = [c for c in nb.cells if c.get('source') is not None]
    for c in nb.cells: c.pop('has_sd', None)  # nbdev's mark on the show_doc cells it adds: not nbformat
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_nb(nb, dest)
    return nb


NAV = '''```{{toctree}}
:hidden:
:caption: The reproduction
:glob:

paper_repro/*
```

```{{toctree}}
:hidden:
:caption: The notebooks, in order
:glob:

[0-9]*
```

```{{toctree}}
:hidden:
:caption: Run it yourself

{extra}
```
'''

def main(out=None, ini=None):
    out = Path(out or ROOT / '_proc')
    repo = use_settings(ini or ROOT / 'settings.ini')
    print(f"docs: source links to {repo['git_url']} at {repo['branch']} (settings.ini: git_url, branch)", flush=True)
    if out.exists(): shutil.rmtree(out)
    nbs = ROOT / 'nbs'
    for src in sorted(nbs.glob('*.ipynb')):
        print(f'docs: {src.relative_to(ROOT)}', flush=True)
        process(src, out / src.name, run=src.name == 'index.ipynb')
    for src in sorted((ROOT / 'paper_repro').glob('*.ipynb')):
        print(f'docs: {src.relative_to(ROOT)}', flush=True)
        process(src, out / 'paper_repro' / src.name)
    figures = ROOT / 'figures'
    if figures.is_dir():  # for notebooks that link to ../figures/*.png rather than embed them
        shutil.copytree(figures, out / 'figures', ignore=shutil.ignore_patterns('*.tmp*'))
    others = sorted(p.stem for p in out.glob('*.ipynb') if p.stem != 'index' and not p.stem[:1].isdigit())
    index = read_nb(out / 'index.ipynb')  # the site's navigation, hidden in the landing page
    index.cells.append(mk_cell(NAV.format(extra='\n'.join(others)), 'markdown'))
    write_nb(index, out / 'index.ipynb')
    return out


if __name__ == '__main__': main(*sys.argv[1:3])
