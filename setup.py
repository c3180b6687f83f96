"""Install the `drcn` package; its metadata lives in settings.ini (nbdev's single source of truth).

Written without `pkg_resources`, which current setuptools no longer ships."""
from configparser import ConfigParser
from setuptools import find_packages, setup

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    author=cfg['author'],
    license='Apache-2.0',
    python_requires='>=' + cfg['min_python'],
    packages=find_packages(include=['drcn', 'drcn.*']),
    # the files the package reads: the data sets' checksums, the paper's table, the published VDSR/DRRN numbers,
    # drcn-upscale's default models
    package_data={'drcn': ['manifest.csv', 'drcn_paper_table.csv', 'published_vdsr_drrn.csv', 'models/*.pt']},
    install_requires=cfg['requirements'].split(),
    extras_require={'dev': cfg['dev_requirements'].split()},
    entry_points={'console_scripts': cfg['console_scripts'].split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
