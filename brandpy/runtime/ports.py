"""Port mapping without a network namespace: a container's bind() of a
published port binds the host port instead (`-p 18080:80`), getsockname()
shows the container port again, and connections from the container to its
own published ports on loopback follow the mapping. A privileged port the
unprivileged supervisor could not bind gets an ephemeral host port, so
`httpd -p 80` works as in Docker (reachable through the mapping)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _unprivileged_port_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


@dataclass
class PortMap:
    published: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    dynamic: dict[tuple[str, int], int] = field(default_factory=dict)
    privileged_limit: int = field(default_factory=lambda: 0 if os.geteuid() == 0
                                  else _unprivileged_port_start())

    def publish(self, proto: str, container_port: int, host_port: int, host_ip: str) -> None:
        self.published[(proto, container_port)] = (host_ip, host_port)

    def for_bind(self, proto: str, port: int) -> tuple[str, int] | None:
        """(host IP or "", host port) to bind instead of `port`; (…, 0) asks
        the kernel for an ephemeral port to record with `bound`."""
        if (proto, port) in self.published:
            return self.published[(proto, port)]
        if 0 < port < self.privileged_limit:
            return "", 0
        return None

    def bound(self, proto: str, container_port: int, host_port: int) -> None:
        self.dynamic[(proto, container_port)] = host_port

    def container_port(self, proto: str, host_port: int) -> int | None:
        for (p, cport), (_ip, hport) in self.published.items():
            if p == proto and hport == host_port:
                return cport
        for (p, cport), hport in self.dynamic.items():
            if p == proto and hport == host_port:
                return cport
        return None

    def host_port(self, proto: str, container_port: int) -> int | None:
        if (proto, container_port) in self.published:
            return self.published[(proto, container_port)][1]
        return self.dynamic.get((proto, container_port))

    def interesting(self, port: int) -> bool:
        """Cheap pre-check before grabbing the socket to learn its type."""
        return (0 < port < self.privileged_limit or any(cp == port for _, cp in self.published)
                or any(cp == port for _, cp in self.dynamic))
