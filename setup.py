"""Build step that puts copies of the shipped ``arch_configs/`` and ``traces/`` inside the package of a wheel
(``fgmpsim/_shipped/``), so ``pip install .`` finds ``--arch fgmp`` and the demo's trace from any directory.
Everything else about the package is declared in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("arch_configs", "traces")


class BuildPyWithShippedData(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the repository's folders directly
            return
        target = Path(self.build_lib) / "fgmpsim" / "_shipped"
        for folder in SHIPPED:
            shutil.copytree(Path(__file__).parent / folder, target / folder, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": BuildPyWithShippedData})
