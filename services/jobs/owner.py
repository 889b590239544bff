"""Who runs a job: a process identity that survives pid reuse, and whether it still lives.

An owner is ``"host:pid:start"``: the host name, the process id, and the process's start
(the boot's id and the start time in clock ticks since boot, from ``/proc``), so that a
new process that happens to get a dead one's pid is not mistaken for it. On the owner's
own host, :func:`owner_is_alive` answers at once; on another host it cannot know, and
the lease's heartbeat decides (:mod:`services.jobs.lifecycle`).
"""

from __future__ import annotations

import functools
import os
import socket
from typing import Optional, Tuple

__all__ = ["current_owner", "owner_is_alive", "parse_owner"]


@functools.lru_cache(maxsize=1)
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip().replace("-", "")[:12]
    except OSError:
        return "noboot"


def _start_ticks(pid: int) -> Optional[str]:
    """The start time of ``pid`` in clock ticks since boot, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return None
    except OSError:
        return "unknown"
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields and fields[0] in ("Z", "X"):  # a zombie has ended; only its exit status is left
        return None
    return fields[19] if len(fields) > 19 else "unknown"  # field 22 of the whole line


def _process_start(pid: int) -> str:
    ticks = _start_ticks(pid)
    return f"{_boot_id()}-{ticks or 'unknown'}"


def current_owner() -> str:
    """This process's owner string, ``"host:pid:start"``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def parse_owner(owner: str) -> Optional[Tuple[str, int, str]]:
    """``(host, pid, start)`` of an owner string, or None when it is not one."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    host, pid, start = parts
    return host, int(pid), start


def owner_is_alive(owner: Optional[str]) -> Optional[bool]:
    """True or False when ``owner`` runs on this host (its process lives, or not); None when
    it runs on another host or cannot be read (then only its heartbeat tells)."""
    parsed = parse_owner(owner or "")
    if parsed is None:
        return None
    host, pid, start = parsed
    if host != socket.gethostname():
        return None
    boot, _, ticks = start.partition("-")
    if boot != _boot_id():
        return False  # this host has rebooted since: that process is gone
    now = _start_ticks(pid)
    if now is None:
        return False
    if "unknown" in (ticks, now):
        return None
    return now == ticks
