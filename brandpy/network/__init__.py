"""Container networking as dockerd's network drivers do it, for a daemon
running as root: a network namespace per container (its shim makes it),
a driver per network kind (bridge.py: a Linux bridge per network and a
veth pair per endpoint), addresses from IPAM (ipam.py), NAT and published
ports as one nftables table (firewall.py), an embedded DNS resolver per
network (dns.py) and per-interface counters (counters.py).

The engine talks to one object, controller.Networking: create and remove
a network, attach and detach an endpoint, publish ports. Drivers are
looked up by the network's driver name, so another kind of network is a
class with the Driver protocol's four methods (controller.py).
"""
