"""Per-interface counters of a network namespace, as `docker stats`
reports them (its `networks` key), from /proc/PID/net/dev: that file
shows the namespace of the process named, where /sys/class/net shows the
namespace /sys was mounted in."""

from __future__ import annotations

RX = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped")
TX = ("tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def read(pid: int | str = "self") -> dict[str, list[int]] | None:
    """{interface: /proc/net/dev's 16 numbers}; None if the process is gone."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return None
    out = {}
    for line in lines:
        name, _, rest = line.partition(":")
        out[name.strip()] = [int(x) for x in rest.split()]
    return out


def names(pid: int | str = "self") -> set[str]:
    return set(read(pid) or {})


def interfaces(pid: int) -> dict[str, dict[str, int]] | None:
    """docker stats' `networks`: counters per interface but loopback."""
    table = read(pid)
    if table is None:
        return None
    return {name: {**dict(zip(RX, fields[0:4], strict=True)),
                   **dict(zip(TX, fields[8:12], strict=True))}
            for name, fields in table.items() if name != "lo" and len(fields) >= 12}
