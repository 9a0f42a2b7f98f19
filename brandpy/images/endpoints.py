"""Where a registry's API is reached: dockerd's `registry-mirrors` (tried
in order for Docker Hub pulls, Docker Hub itself last) and
`insecure-registries` (plain HTTP or unverified TLS allowed), with
dockerd's validation of both."""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass

from .reference import DEFAULT_DOMAIN, Reference


def host_name(host: str) -> str:
    """host[:port] or [v6]:port without the port."""
    if host.startswith("["):
        return host[1:host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    name = host_name(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def mirror_url(text: str) -> str:
    """A mirror as dockerd accepts it (http or https, no path), normalised
    with its trailing slash; ValueError with dockerd's message otherwise."""
    u = urllib.parse.urlsplit(text)
    if u.scheme not in ("http", "https"):
        raise ValueError(f"invalid mirror: unsupported scheme {u.scheme!r} in {text!r}")
    if not u.netloc:
        raise ValueError(f"invalid mirror: no host in {text!r}")
    if u.path not in ("", "/") or u.query or u.fragment:
        raise ValueError(f"invalid mirror: path, query, or fragment at end of the URI {text!r}")
    return f"{u.scheme}://{u.netloc}/"


def insecure_entry(text: str) -> str:
    """host[:port] or a CIDR, as dockerd's --insecure-registry takes them."""
    if "://" in text:
        raise ValueError(f"insecure registry {text} should not contain '://'")
    if not text or "/" in text and not _cidr(text):
        raise ValueError(f"insecure registry {text!r} is not a host[:port] or a CIDR")
    return text


def _cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False) if "/" in text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Endpoint:
    scheme: str          # https, or http for a loopback registry or a mirror given so
    host: str            # host[:port]
    mirror: bool = False
    insecure: bool = False   # TLS unverified, plain HTTP when TLS fails


@dataclass(frozen=True)
class Registries:
    mirrors: tuple[str, ...] = ()      # mirror_url()s, in order
    insecure: tuple[str, ...] = ()     # insecure_entry()s

    def is_insecure(self, host: str) -> bool:
        if is_loopback(host) or host in self.insecure or host_name(host) in self.insecure:
            return True
        try:
            address = ipaddress.ip_address(host_name(host))
        except ValueError:
            return False
        return any(net is not None and address in net for net in map(_cidr, self.insecure))

    def endpoint(self, host: str) -> Endpoint:
        """The registry's own endpoint: loopback ones speak plain HTTP."""
        scheme = "http" if is_loopback(host) else "https"
        return Endpoint(scheme, host, insecure=self.is_insecure(host))

    def pull_endpoints(self, ref: Reference) -> list[Endpoint]:
        """Mirrors first (Docker Hub images only, as dockerd), then the registry."""
        out = []
        if ref.domain == DEFAULT_DOMAIN:
            for url in self.mirrors:
                u = urllib.parse.urlsplit(url)
                out.append(Endpoint(u.scheme, u.netloc, mirror=True,
                                    insecure=self.is_insecure(u.netloc)))
        return out + [self.endpoint(ref.registry_host)]

    def info(self) -> dict:
        """GET /info's RegistryConfig."""
        cidrs = ["127.0.0.0/8"] + [str(n) for n in map(_cidr, self.insecure) if n is not None]
        names = [h for h in self.insecure if _cidr(h) is None]
        index = {name: {"Name": name, "Mirrors": [], "Secure": False, "Official": False}
                 for name in names}
        index["docker.io"] = {"Name": "docker.io", "Mirrors": list(self.mirrors),
                              "Secure": True, "Official": True}
        return {"IndexConfigs": index, "InsecureRegistryCIDRs": cidrs,
                "Mirrors": list(self.mirrors)}
