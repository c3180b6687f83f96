"""Shared helpers for the tests that cross a process boundary (console scripts, papermill, torchrun)."""
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd, cwd=None, env=None, timeout=600):
    "Run a command; return the CompletedProcess (text)."
    e = dict(os.environ, **(env or {}))
    return subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    "A scratch folder with its own data and cache folders, so tests never touch the checkout."
    monkeypatch.setenv('DRCN_DATA', str(tmp_path / 'data'))
    monkeypatch.setenv('DRCN_CACHE', str(tmp_path / 'cache'))
    return tmp_path


@pytest.fixture(scope='session')
def mirror():
    m = os.environ.get('DRCN_DATA_MIRROR')
    if not m: pytest.skip('DRCN_DATA_MIRROR is not set (CI sets it to ../shared/data)')
    return m  # absolute already: pytest_configure below


def pytest_configure(config):
    "A relative DRCN_DATA_MIRROR (CI: ../shared/data) made absolute, for the subprocesses that run in other folders."
    m = os.environ.get('DRCN_DATA_MIRROR')
    if m and not m.startswith(('http://', 'https://')): os.environ['DRCN_DATA_MIRROR'] = str(Path(m).resolve())
