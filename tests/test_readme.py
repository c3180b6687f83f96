"""The README's test command is what CI runs, verbatim."""
import re
from conftest import ROOT


def test_ci_runs_the_readme_test_command():
    blocks = re.findall(r'```bash\n(.*?)\n```', (ROOT / 'README.md').read_text(), re.S)
    test_cmds = [b.strip() for b in blocks if 'pytest' in b and '\n' not in b.strip()]
    assert len(test_cmds) == 1, test_cmds
    assert test_cmds[0] in (ROOT / '.ci' / 'run').read_text().splitlines()
