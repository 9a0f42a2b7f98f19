# Types for the cffi module native/build.py compiles (brandpy/_native*.so), which
# carries none: its C functions (lib) and values (CData) stay Any, but
# ffi.def_extern keeps the signature of the Python callback it registers.
from collections.abc import Callable
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

class _FFI:
    NULL: Any
    def new(self, cdecl: str, init: Any = ...) -> Any: ...
    def buffer(self, cdata: Any, size: int = ...) -> Any: ...
    def def_extern(self, name: str = ..., error: Any = ..., onerror: Any = ...) -> Callable[[_F], _F]: ...

ffi: _FFI
lib: Any
