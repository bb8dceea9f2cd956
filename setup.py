"""Build hook: generate panoseti_appliance/_proto from protos/ during every build.

The wire contracts live only in protos/*.proto; the Python modules are derived from them so
they can never drift (tests/unit/test_proto_current.py checks the installed ones are current).
"""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        import gen_protos

        gen_protos.generate(ROOT / "protos", ROOT / "panoseti_appliance" / "_proto")
        super().run()


setup(cmdclass={"build_py": BuildPyWithProtos})
