"""Sphinx configuration of the documentation site: `make docs` builds `_proc/` (see prepare.py) into `_docs/`.

MyST-NB renders the notebooks as they were saved (nothing is executed by Sphinx) and Furo gives the look; both
install from PyPI and work offline. No page loads anything from another site.
"""
import configparser
from pathlib import Path

_ini = configparser.ConfigParser()
_ini.read(Path(__file__).resolve().parents[1] / 'settings.ini')
_s = _ini['DEFAULT']

project = _s['title']
author = _s['author']
copyright = _s['copyright']
release = version = _s['version']

extensions = ['myst_nb']
root_doc = 'index'
exclude_patterns = ['**/.ipynb_checkpoints', 'figures', '_site', 'jupyter_execute']  # the last two: build scratch
nb_execution_mode = 'off'           # outputs as saved (the landing page was run by prepare.py)
nb_ipywidgets_js = {}               # no widget scripts from a CDN: a static page shows no live widgets
nb_merge_streams = True
nb_render_markdown_format = 'myst'  # show_doc and tables are Markdown outputs
myst_enable_extensions = ['attrs_inline', 'dollarmath']
myst_heading_anchors = 3            # `page.ipynb#a-heading` links resolve
suppress_warnings = ['myst.header', 'mystnb.unknown_mime_type', 'misc.highlighting_failure']

html_theme = 'furo'
html_title = f'{project} {release}'
html_copy_source = False            # the notebooks are in the repository; the site needs only the pages
html_show_sourcelink = False
html_theme_options = {'source_repository': _s['git_url'], 'source_branch': _s.get('branch', 'main'),
                      'top_of_page_buttons': []}  # the API docs' "source" links: the same two settings (prepare.py)
html_static_path = ['_static']
html_css_files = ['custom.css']     # long show_doc signatures wrap in their box
