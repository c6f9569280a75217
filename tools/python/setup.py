"""The offline wheel of the tessera package, from Debian's setuptools:

    /usr/bin/python3 -m pip wheel --no-build-isolation --no-deps tools/python -w dist

builds the module with CMake (the checkout's build/, or TESSERA_BUILD_DIR;
configured first if it is not) and packs it with the Python files. The
module links Debian's libvips, GDAL and TBB: the wheel is for this Debian.
"""
import glob
import os
import shutil
import subprocess
import sys

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class BuildWithCMake(build_py):
    def run(self):
        build = os.environ.get("TESSERA_BUILD_DIR", os.path.join(ROOT, "build"))
        if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                                   "-DTESSERA_PYTHON=ON", f"-DTESSERA_PYTHON_EXECUTABLE={sys.executable}"])
        subprocess.check_call(["cmake", "--build", build, "--target", "_tessera"])
        super().run()
        built = glob.glob(os.path.join(build, "tools", "python", "tessera", "_tessera*.so"))
        if not built:
            raise SystemExit(f"no _tessera module in {build}/tools/python/tessera: is TESSERA_PYTHON on?")
        shutil.copy2(built[0], os.path.join(self.build_lib, "tessera"))


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True  # a platform wheel: it holds a compiled module


setup(
    name="tessera",
    version="0.1.0",
    description="Demand-driven lazy image pipelines: the Tessera engine from Python",
    license="Apache-2.0",
    packages=["tessera"],
    python_requires=">=3.11",
    install_requires=["numpy"],
    cmdclass={"build_py": BuildWithCMake},
    distclass=BinaryDistribution,
)
