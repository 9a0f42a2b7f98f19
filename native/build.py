"""cffi (API mode) build of brandpy._native, run by `pip install [-e] .`
through setup.py's cffi_modules."""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADER = (HERE / "brandpy.h").read_text()
CDEF = HEADER.split("/* CDEF-BEGIN */")[1].split("/* CDEF-END */")[0]
SOURCES = sorted(str(p.relative_to(HERE.parent)) for p in HERE.glob("*.c"))

ffibuilder = FFI()
# The Python callbacks are cffi "extern Python" functions.
CDEF = CDEF.replace("int bp_py_wait(", 'extern "Python+C" int bp_py_wait(').replace(
    "void bp_py_notify(", 'extern "Python+C" void bp_py_notify(').replace(
    "void bp_py_wake(", 'extern "Python+C" void bp_py_wake(').replace(
    "void bp_py_dumpable(", 'extern "Python+C" void bp_py_dumpable(')
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "brandpy._native",
    '#include "brandpy.h"',
    sources=SOURCES,
    include_dirs=[str(HERE)],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
)
