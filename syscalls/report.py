"""Views of the syscall table: the `brandpy syscalls` listing, the counts
and the Markdown table in the README (all derived, never edited by hand)."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from brandpy.runtime.seccomp import leaves, ret_allow, ret_trace

from .table import Row, routed, table

DISPOSITIONS = ("allow", "const", "deny", "trace", "perform", "nosys")
SUPPORT = ("full", "partial", "unimplemented", "none")


def _rows() -> list[Row]:
    return table().rows


def counts() -> dict[str, Counter[str]]:
    rows = _rows()
    return {"disposition": Counter(r.disposition for r in rows),
            "support": Counter(r.support for r in rows)}


def _disp(r: Row) -> str:
    if r.disposition == "deny":
        import errno
        return f"deny {errno.errorcode.get(r.value, r.value)}"
    if r.disposition in ("trace", "perform") and r.when is not None:
        return f"{r.disposition} (when)"
    if r.when is not None:
        return f"{r.disposition} (args)"
    return r.disposition


def tier(r: Row) -> str:
    """Who answers the call under the native engine: the kernel, the
    seccomp filter itself, C through user notification, or Python
    (notified, or at a ptrace stop); the Python engine answers every
    trapped call in Python."""
    from brandpy._native import lib  # the C handlers' own list (native/notify.c)

    some = "; some arguments " if r.when is not None else ""
    if r.disposition == "allow":
        return "kernel" + (some + "Python (ptrace)" if some else "")
    if r.disposition == "perform":
        reach = leaves(routed(r.spec))
        answer = "C" if lib.bp_notify_answers(r.nr) else "Python (notified)"
        if ret_allow() in reach:
            return "kernel" + some + answer + (" or Python (ptrace)" if ret_trace() in reach
                                               else "")
        return answer + (some + "Python (ptrace)" if ret_trace() in reach else "")
    if r.disposition == "trace":
        return ("kernel" + some if some else "") + "Python (ptrace)"
    return "filter"


def summary() -> str:
    c = counts()
    total = sum(c["support"].values())
    disp = ", ".join(f"{c['disposition'][d]} {d}" for d in DISPOSITIONS if c["disposition"][d])
    sup = ", ".join(f"{c['support'][s]} {s}" for s in SUPPORT if c["support"][s])
    gaps = sum(1 for r in _rows() if not r.name)
    return (f"{total} numbers ({total - gaps} syscalls, {gaps} unassigned): {disp}; "
            f"support: {sup}")


def print_table(out: TextIO, only: str | None = None) -> None:
    rows = [(r, tier(r) if r.name else "-") for r in _rows() if not only or r.disposition == only]
    width = max((len(t) for _, t in rows), default=0) + 2
    out.write(f"{'nr':>4} {'name':<24}{'since':<9}{'disposition':<15}{'support':<14}"
              f"{'native engine':<{width}}note\n")
    for r, t in rows:
        out.write(f"{r.nr:>4} {r.name or '-':<24}{r.since_text if r.name else '-':<9}{_disp(r):<15}"
                  f"{r.support:<14}{t:<{width}}{r.note}\n")
    out.write(summary() + "\n")


def markdown() -> str:
    """The README's coverage table."""
    lines = ["| nr | syscall | since | disposition | support | native engine | note |",
             "|---:|---|---|---|---|---|---|"]
    for r in _rows():
        if not r.name:
            continue
        lines.append(f"| {r.nr} | `{r.name}` | {r.since_text} | {_disp(r)} | {r.support} | "
                     f"{tier(r)} | {r.note} |")
    return "\n".join(lines)


BEGIN, END = "<!-- syscall-table:begin -->", "<!-- syscall-table:end -->"


def readme_section() -> str:
    """The README block between the markers: counts, then the full table."""
    return (f"{BEGIN}\n{summary()}\n\n<details><summary>The full table (one row per syscall, "
            f"from syscalls/table.py)</summary>\n\n{markdown()}\n\n</details>\n{END}")


def update_readme(path: str) -> bool:
    """Rewrite the README's table from the syscall table; True if it changed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = head + readme_section() + tail
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    return new != text


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--update-readme"]:
        print("README.md updated" if update_readme("README.md") else "README.md up to date")
    else:
        print_table(sys.stdout)
