"""Syscall handlers, grouped by what they emulate. Each takes a
`brandpy.runtime.call.Call` and returns an int (emulated result) or None
(let the possibly rewritten call run); see brandpy/runtime/call.py."""
