# The cffi extension brandpy._native is compiled by `pip install [-e] .`;
# everything else is declared in pyproject.toml.
import json
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

LAUNCHER = "native/launcher/launcher.c"
SPAWNER = ["native/spawner_main.c", "native/spawner.c", "native/child.c"]
CFLAGS = ["-O2", "-Wall", "-Wextra", "-std=gnu11"]


class BuildExt(build_ext):
    """The extension, then two programs beside it: brandpy/_launcher, the C
    `brandpy` command (native/launcher/launcher.c) that runs `brandpy run`
    through a warm zygote and execs this interpreter for everything else,
    so it is built for it (`make install` links it as the venv's
    `brandpy`); and brandpy/_spawner, each container's spawner
    (native/spawner_main.c), which the extension execs."""

    def run(self) -> None:
        super().run()
        out = Path(self.get_ext_fullpath("brandpy._native")).parent
        objects = self.compiler.compile(
            [LAUNCHER], output_dir=self.build_temp,
            macros=[("BP_PYTHON", json.dumps(sys.executable))], extra_postargs=CFLAGS)
        self.compiler.link_executable(objects, "_launcher", output_dir=str(out))
        objects = self.compiler.compile(SPAWNER, output_dir=self.build_temp + "/spawner",
                                        extra_postargs=CFLAGS)
        self.compiler.link_executable(objects, "_spawner", output_dir=str(out))


setup(cffi_modules=["native/build.py:ffibuilder"], cmdclass={"build_ext": BuildExt})
