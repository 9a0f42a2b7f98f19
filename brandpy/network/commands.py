"""The kernel's network configuration through iproute2 (`ip -batch`) and
nftables (`nft -f`), each a batch per step: one process per batch, the
batch's lines in the order given. Inside a container's namespace, `ip`
runs under nsenter."""

from __future__ import annotations

import asyncio
import shutil

from .errors import NetworkError

TOOLS = {"ip": "iproute2", "nft": "nftables", "nsenter": "util-linux"}


def missing_tools() -> list[str]:
    """The Debian packages to install for the tools that are not found."""
    return sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})


async def run(argv: list[str], script: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of argv fed script."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(script.encode())
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace").strip()


async def ip(lines: list[str], netns: str = "", force: bool = False) -> str:
    """Run `ip` commands (without the leading "ip"), in the namespace file
    `netns` if given. force: carry on past errors (removals of what may be
    gone already) and return them instead of raising."""
    argv = ["ip", "-force", "-batch", "-"] if force else ["ip", "-batch", "-"]
    if netns:
        argv = ["nsenter", f"--net={netns}", *argv]
    status, _, err = await run(argv, "".join(line + "\n" for line in lines))
    if status and not force:
        raise NetworkError(f"ip: {err or f'exit status {status}'} (running: "
                           f"{'; '.join(lines)})")
    return err


async def nft(script: str) -> None:
    status, _, err = await run(["nft", "-f", "-"], script)
    if status:
        raise NetworkError(f"nft: {err or f'exit status {status}'}")
