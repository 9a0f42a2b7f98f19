"""config.json's linux.seccomp in Docker's profile format, which brandpy's
policy compiles (brandpy/runtime/policy.py). The two formats share their
vocabulary; the OCI one is already resolved for the container (no
`includes`/`excludes`), so the conversion is a copy of the parts brandpy
enforces, checked by the same compiler the container will use."""

from __future__ import annotations

import json
from typing import Any

from .errors import OciError
from .process import Note

X86_64 = "SCMP_ARCH_X86_64"


def docker_profile(oci: dict[str, Any], caps: frozenset[str]) -> tuple[dict[str, Any], list[Note]]:
    from brandpy.runtime.policy import PolicyError, load_profile

    if not isinstance(oci, dict) or "defaultAction" not in oci:
        raise OciError("linux.seccomp needs a defaultAction: fix config.json")
    notes: list[Note] = []
    if oci.get("listenerPath"):
        raise OciError("linux.seccomp.listenerPath (SCMP_ACT_NOTIFY to an agent) is not "
                       "supported: brandpy's own supervisor answers notifications")
    arches = oci.get("architectures") or []
    if arches and X86_64 not in arches:
        raise OciError(f"linux.seccomp.architectures {arches} lacks {X86_64}, the only "
                       "architecture brandpy runs")
    if oci.get("flags"):
        notes.append(("info", f"linux.seccomp.flags {oci['flags']} not applied: brandpy "
                      "installs its own filter"))
    profile: dict[str, Any] = {"defaultAction": oci["defaultAction"], "syscalls": []}
    if "defaultErrnoRet" in oci:
        profile["defaultErrnoRet"] = oci["defaultErrnoRet"]
    killing = set()
    for rule in oci.get("syscalls") or []:
        entry = {"names": rule.get("names") or [], "action": rule.get("action")}
        if rule.get("errnoRet") is not None:
            entry["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            entry["args"] = rule["args"]
        profile["syscalls"].append(entry)
        if str(entry["action"]).startswith(("SCMP_ACT_KILL", "SCMP_ACT_TRAP")):
            killing.add(entry["action"])
    if str(oci["defaultAction"]).startswith(("SCMP_ACT_KILL", "SCMP_ACT_TRAP")):
        killing.add(oci["defaultAction"])
    if killing:
        notes.append(("info", f"linux.seccomp: {', '.join(sorted(killing))} answered with "
                      "an errno (EPERM unless errnoRet says otherwise), as brandpy's policy "
                      "does for every denied call"))
    try:
        load_profile(json.dumps(profile), caps)
    except PolicyError as exc:
        raise OciError(f"linux.seccomp: {exc}") from None
    return profile, notes
