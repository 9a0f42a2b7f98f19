"""Where brandpy keeps its state (data root) and its sockets (runtime dir).

Paths are kept short on purpose: container rootfs paths under the data root
end up inside AF_UNIX socket paths, which the kernel limits to 108 bytes.
"""
from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """$BRANDPY_ROOT, else /var/lib/brandpy for root, else $XDG_DATA_HOME/brandpy."""
    env = os.environ.get("BRANDPY_ROOT")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/brandpy")
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(xdg) / "brandpy"


def runtime_dir(create: bool = True) -> Path:
    """Directory for sockets and pid files: /run/brandpy for root,
    $XDG_RUNTIME_DIR/brandpy otherwise, else a private /tmp/brandpy-<uid>."""
    uid = os.geteuid()
    if uid == 0:
        path = Path("/run/brandpy")
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "brandpy"
    else:
        path = Path(f"/tmp/brandpy-{uid}")
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.lstat()
        # A shared /tmp lets anyone pre-create our directory: refuse one we don't own.
        if st.st_uid != uid or (st.st_mode & 0o077 and path.parent == Path("/tmp")):
            raise PermissionError(
                f"{path} is not a private directory owned by uid {uid}; "
                f"remove it or set XDG_RUNTIME_DIR")
    return path


def config_file() -> Path:
    """brandpyd's daemon.json: /etc/brandpy/daemon.json for root, else
    $XDG_CONFIG_HOME/brandpy/daemon.json (dockerd's own file is left to
    dockerd)."""
    if os.geteuid() == 0:
        return Path("/etc/brandpy/daemon.json")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(xdg) / "brandpy" / "daemon.json"
