"""brandpy as an OCI runtime: the runc command line that containerd's
io.containerd.runc.v2 shim (BinaryName) and dockerd (--add-runtime) drive.

`create` leaves a monitor process behind (monitor.py) that supervises the
container under brandpy's ptrace + seccomp runtime for its whole life;
every other command talks to it over a unix socket in `--root/<id>/`.
"""
