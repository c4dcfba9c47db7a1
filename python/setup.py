"""Builds septa's Python package: the modules in septa/ and the extension septa._septa.

The extension is a CMake target (septa_python, python/CMakeLists.txt) linked against the same
septa_crf and septa_merge libraries as the command line, with the same flags: this script only
drives CMake for that one target and copies the module into the package. Nothing is compiled
here a second time, so the Python package and the CLI train the same models.

Build directory: $SEPTA_CMAKE_BUILD_DIR when set (an existing septa build, e.g. ../build, whose
library is then reused as it is), else python/build/cmake (configured here: Release, no tests,
benchmarks, libtorch or MPI). Extra configure arguments: $CMAKE_ARGS. Parallel jobs:
$SEPTA_BUILD_JOBS (default: all cores).

The package is built from a septa checkout (`pip install ./python`, `pip wheel ./python`): an
sdist of python/ alone would lack the C++ sources, so none is offered.
"""
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET = "septa_python"  # python/CMakeLists.txt


class CMakeExtension(Extension):
    """An extension whose sources CMake knows: setuptools compiles nothing itself."""

    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """build_ext that builds the CMake target and copies its module into the package."""

    def build_extension(self, ext):
        if not os.path.isfile(os.path.join(ROOT, "CMakeLists.txt")):
            raise SystemExit("septa: no CMakeLists.txt in %s; build the Python package from a "
                             "septa checkout (pip install ./python)" % ROOT)
        build_dir = os.environ.get("SEPTA_CMAKE_BUILD_DIR") or os.path.join(HERE, "build", "cmake")
        build_dir = os.path.abspath(build_dir)
        if not os.path.isfile(os.path.join(build_dir, "CMakeCache.txt")):
            configure = ["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                         "-DSEPTA_BUILD_TESTS=OFF", "-DSEPTA_BUILD_BENCH=OFF",
                         "-DSEPTA_WITH_TORCH=OFF", "-DSEPTA_WITH_MPI=OFF",
                         "-DSEPTA_BUILD_PYTHON=ON", "-DPython3_EXECUTABLE=" + sys.executable]
            configure += shlex.split(os.environ.get("CMAKE_ARGS", ""))
            subprocess.run(configure, check=True)
        jobs = os.environ.get("SEPTA_BUILD_JOBS") or str(os.cpu_count() or 2)
        subprocess.run(["cmake", "--build", build_dir, "--target", TARGET, "-j", jobs],
                       check=True)
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        built = os.path.join(build_dir, "python", "septa", "_septa" + suffix)
        if not os.path.isfile(built):
            raise SystemExit("septa: CMake built no %s (is %s configured for another Python "
                             "than %s?)" % (built, build_dir, sys.executable))
        destination = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copyfile(built, destination)


class NoSdist(sdist):
    def run(self):
        raise SystemExit("septa: no sdist: the extension is built from the whole septa source "
                         "tree; use `pip install ./python` or `pip wheel ./python` in a checkout")


setup(packages=["septa"], ext_modules=[CMakeExtension("septa._septa")],
      cmdclass={"build_ext": CMakeBuild, "sdist": NoSdist})
