"""The one build step pyproject.toml cannot say: a PEP 561 marker for the packages built from
generated/, a folder that holds nothing but buf's output (the drift check keeps it so)."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TYPED_GENERATED_PACKAGES = ("validate", "buf/validate", "pyservice")


class BuildPyWithTypeMarkers(build_py):
    def run(self) -> None:
        super().run()
        for package in TYPED_GENERATED_PACKAGES:
            built = Path(self.build_lib, package)
            if built.is_dir():  # an editable install builds no copy to mark
                (built / "py.typed").write_text("")


setup(cmdclass={"build_py": BuildPyWithTypeMarkers})
