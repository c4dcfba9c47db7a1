"""Builds septa's Python extension (septa._septa) from the C++ library sources.

The extension compiles ../src/crf/**/*.cc itself, so `pip install ./python` needs no
prior CMake build; paths are resolved from this file's own location, so the build
works wherever pip runs it from (pip >= 21.3 builds local directories in place).
"""
import concurrent.futures
import glob
import os

from setuptools import Extension, setup

import distutils.ccompiler  # after setuptools: its distutils

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def pybind11_include():
    """pybind11's headers: from the pybind11 Python package if present, else Debian's."""
    try:
        import pybind11  # python3-pybind11, optional
        return [pybind11.get_include()]
    except ImportError:
        # Debian's pybind11-dev installs the headers in /usr/include/pybind11, a default path.
        return []


def parallel_compile(self, sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                     extra_preargs=None, extra_postargs=None, depends=None):
    """CCompiler.compile over SEPTA_BUILD_JOBS (default 2) threads: the library has ~30 files."""
    macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
        output_dir, macros, include_dirs, sources, depends, extra_postargs)
    cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)

    def one(obj):
        src, ext = build[obj]
        self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)

    jobs = max(1, int(os.environ.get("SEPTA_BUILD_JOBS", "2")))
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, objects))
    return objects


def relative(path):
    """`path` relative to this directory: setuptools refuses absolute source paths."""
    return os.path.relpath(path, HERE)


library_sources = sorted(glob.glob(os.path.join(ROOT, "src", "crf", "**", "*.cc"), recursive=True))
if not library_sources:
    raise SystemExit("septa: no C++ sources under %s; build from a septa checkout"
                     % os.path.join(ROOT, "src", "crf"))

# septa merge's engine (no libtorch): safetensors files and the merge methods.
merge_sources = sorted(glob.glob(os.path.join(ROOT, "src", "safetensors", "*.cc")) +
                       glob.glob(os.path.join(ROOT, "src", "merge", "*.cc")))

# Headers, so that pip rebuilds the extension when only a header changed.
headers = sorted(glob.glob(os.path.join(ROOT, "include", "septa", "**", "*.h"), recursive=True) +
                 glob.glob(os.path.join(ROOT, "src", "crf", "**", "*.h"), recursive=True) +
                 glob.glob(os.path.join(ROOT, "src", "safetensors", "*.h")) +
                 glob.glob(os.path.join(ROOT, "src", "merge", "*.h")))

extension = Extension(
    "septa._septa",
    sources=[relative(os.path.join(HERE, "src", "bindings.cc")),
             relative(os.path.join(HERE, "src", "merge_bindings.cc"))] +
            [relative(p) for p in library_sources + merge_sources],
    include_dirs=[os.path.join(ROOT, "include"), os.path.join(ROOT, "src")] + pybind11_include(),
    libraries=["lbfgs", "pthread", "yaml-cpp", "z"],
    extra_compile_args=["-std=c++17", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"],
    depends=[relative(p) for p in headers],
    language="c++",
)

distutils.ccompiler.CCompiler.compile = parallel_compile
os.chdir(HERE)  # the relative paths above
setup(packages=["septa"], ext_modules=[extension])
