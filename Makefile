# The documentation site, from the notebooks (Sphinx + MyST-NB + Furo: all from PyPI, no Quarto, works offline).
#   make docs        build it into _docs/ (open _docs/index.html, or `make serve`)
#   make serve       serve _docs/ on http://127.0.0.1:8000
#   make clean-docs  remove _proc/ and _docs/
# The models the package ships (drcn-upscale's default, without --model):
#   make models      copy paper_repro/models/drcn_x{2,3,4}_cpu_more/checkpoint.pt to drcn/models/drcn_x{2,3,4}.pt
PYTHON ?= python
PORT ?= 8000

.PHONY: docs serve clean-docs models

docs:
	$(PYTHON) docs/prepare.py _proc
	$(PYTHON) -m sphinx -q -b html -c docs -d _proc/.doctrees _proc _proc/_site
	rm -rf _docs && mv _proc/_site _docs
	@echo "docs: _docs/index.html"

serve:
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory _docs

clean-docs:
	rm -rf _proc _docs

models:
	$(PYTHON) -c "from drcn.upscale import package_models; print(*package_models(), sep='\\n')"
