"""Legacy container links (`--link NAME[:ALIAS]`, HostConfig.Links), as
dockerd keeps them: the linked container must exist at create and run at
start; the linking one gets dockerd's environment (ALIAS_NAME,
ALIAS_ENV_*, ALIAS_PORT_*) and /etc/hosts entries for the alias and the
name; `docker ps` names the linked container `/PARENT/ALIAS` too, and
`DELETE /containers/PARENT/ALIAS?link=1` removes the link.

Where a linked container is reached is the networking mode's answer
(netsetup.NetSetup.locate): its own address and port as root; sharing the
host's network stack (unprivileged), 127.0.0.1 at the host port a
published port is bound to and at its own port otherwise (on_loopback)."""

from __future__ import annotations

from collections.abc import Callable

from .errors import Conflict, InvalidParameter, NotFound
from .networks import link_name
from .records import Record, Table

LOOPBACK = "127.0.0.1"
# (linked container, "80/tcp" or "") -> (address, port) where the link reaches it
Locate = Callable[[Record, str], tuple[str, str]]


def targets(table: Table, rec: Record) -> list[tuple[Record, str]]:
    """(linked container, alias) of rec's HostConfig.Links; 404 for one
    that does not exist."""
    out = []
    for link in rec.host_config.get("Links") or []:
        name, alias = link_name(link)
        try:
            out.append((table.get(name), alias))
        except NotFound:
            raise NotFound(f"could not get container for {name}: No such container: "
                           f"{name}") from None
    return out


def check(table: Table, host_config: dict) -> None:
    """At create: the links' form, and their containers exist."""
    links = host_config.get("Links") or []
    if links and host_config.get("NetworkMode") == "host":
        raise InvalidParameter("conflicting options: host type networking can't be used with "
                               "links. This would result in undefined behavior")
    for link in links:
        name, _ = link_name(link)
        try:
            table.get(name)
        except NotFound:
            # dockerd's message; a 400, as a 404 at create means "no such image"
            # to the docker CLI, which would try to pull it
            raise InvalidParameter(f"could not get container for {name}: No such container: "
                                   f"{name}") from None


def on_loopback(target: Record, port: str) -> tuple[str, str]:
    for binding in target.published.get(port) or []:
        host_ip = binding.get("HostIp") or "0.0.0.0"
        return (LOOPBACK if host_ip in ("0.0.0.0", "::") else host_ip), binding["HostPort"]
    return LOOPBACK, port.split("/")[0]


def environment(table: Table, rec: Record, locate: Locate) -> list[str]:
    """At start: dockerd's link variables, the linked containers running."""
    env = []
    for target, alias in targets(table, rec):
        if not target.running:
            raise Conflict(f"Cannot link to a non running container: /{target.name} AS "
                           f"/{rec.name}/{alias}")
        prefix = alias.upper().replace("-", "_")
        env.append(f"{prefix}_NAME=/{rec.name}/{alias}")
        ports = sorted(target.config.get("ExposedPorts") or {},
                       key=lambda p: (int(p.split("/")[0]), p))
        for i, port in enumerate(ports):
            number, _, proto = port.partition("/")
            proto = proto or "tcp"
            ip, host_port = locate(target, f"{number}/{proto}")
            url = f"{proto}://{ip}:{host_port}"
            if i == 0:
                env.append(f"{prefix}_PORT={url}")
            key = f"{prefix}_PORT_{number}_{proto.upper()}"
            env += [f"{key}={url}", f"{key}_ADDR={ip}", f"{key}_PORT={host_port}",
                    f"{key}_PROTO={proto}"]
        for var in target.config.get("Env") or []:
            name, eq, value = var.partition("=")
            if eq and name not in ("HOME", "PATH"):
                env.append(f"{prefix}_ENV_{name}={value}")
    return env


def hosts(table: Table, rec: Record, locate: Locate) -> list[str]:
    """/etc/hosts entries (NAME:IP) for rec's linked containers (those
    with an address)."""
    out = []
    for target, alias in targets(table, rec):
        ip = locate(target, "")[0]
        for name in dict.fromkeys((alias, target.name, target.config.get("Hostname") or "")):
            if name and ip:
                out.append(f"{name}:{ip}")
    return out


def names(table: Table) -> dict[str, list[str]]:
    """Container ID -> the /PARENT/ALIAS names its links give it."""
    out: dict[str, list[str]] = {}
    for rec in table:
        for link in rec.host_config.get("Links") or []:
            name, alias = link_name(link)
            target = table.by_name(name)
            if target is not None:
                out.setdefault(target.id, []).append(f"/{rec.name}/{alias}")
    return out


def remove(table: Table, parent_name: str, alias: str) -> Record:
    """`docker rm --link PARENT/ALIAS`: the link goes from PARENT's
    configuration (its environment changes at its next start)."""
    try:
        parent = table.get(parent_name)
    except NotFound:
        raise NotFound(f"Cannot get parent /{parent_name} for link name "
                       f"/{parent_name}/{alias}") from None
    links = parent.host_config.get("Links") or []
    kept = [link for link in links if link_name(link)[1] != alias]
    if len(kept) == len(links):
        raise NotFound(f"Could not find link /{parent_name}/{alias}")
    parent.host_config["Links"] = kept or None
    parent.save()
    return parent
