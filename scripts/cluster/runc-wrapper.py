#!/usr/bin/python3 -IS
"""runc, minus CAP_SYS_RESOURCE: dockerd's default runtime on machines that lack it.

Why: these VMs have no CAP_SYS_RESOURCE in their bounding set, and runc refuses to start a
container that asks for a capability it cannot have ("unable to apply caps: operation not
permitted"). Every --privileged container asks for all of them, and kind's nodes are
privileged. So, before handing over to the real runc, this drops the capability from the
bundle's config.json (create, run) or from the --process file (exec). Nothing else changes.
docker-engine.sh installs it and registers it in /etc/docker/daemon.json.
"""

import json
import os
import sys

REAL_RUNC = os.environ.get("KLAMBDA_REAL_RUNC", "/usr/sbin/runc")
CAP = "CAP_SYS_RESOURCE"
KINDS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def option(args: list[str], *names: str) -> str | None:
    """The value of --name VALUE / --name=VALUE in args (the last one wins), else None."""
    found = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                found = args[i + 1]
            elif arg.startswith(name + "="):
                found = arg[len(name) + 1 :]
    return found


def strip(path: str, process_only: bool) -> None:
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return
    caps = (doc if process_only else doc.get("process", {})).get("capabilities") or {}
    changed = False
    for kind in KINDS:
        if CAP in (caps.get(kind) or []):
            caps[kind] = [c for c in caps[kind] if c != CAP]
            changed = True
    if changed:
        with open(path + ".tmp", "w") as f:
            json.dump(doc, f)
        os.replace(path + ".tmp", path)


def main() -> None:
    args = sys.argv[1:]
    verbs = [a for a in args if a in ("create", "run", "exec")]
    if verbs:
        rest = args[args.index(verbs[0]) + 1 :]
        if verbs[0] == "exec":
            process = option(rest, "--process", "-p")
            if process:
                strip(process, process_only=True)
        else:
            bundle = option(rest, "--bundle", "-b") or os.getcwd()
            strip(os.path.join(bundle, "config.json"), process_only=False)
    os.execv(REAL_RUNC, [REAL_RUNC, *args])


main()
