"""A seccomp filter for workspaces (x86-64), compiled to classic BPF for ``bwrap --seccomp``.

Without Yama, code in a workspace could ptrace or read the memory of its own server, and
unprivileged user namespaces widen the kernel's attack surface. The filter refuses (EPERM)
what a data analysis never needs: tracing other processes, new user namespaces, mounts,
kernel keyrings, BPF, perf events, module loading; clone3 answers ENOSYS so that libc falls
back to clone, whose flags the filter can inspect. Signals to PID 1 (the workspace server, see
bwrap.py) are refused: the kernel already drops those the server has no handler for (SIGKILL,
SIGSTOP), and this refuses the rest (SIGTERM, SIGINT, SIGUSR1...), by every route a process of
the same uid has: kill, tgkill, rt_(tg)sigqueueinfo with PID 1, tkill and pidfd_send_signal at
all, and fcntl(F_SETSIG), which would let an fd owned by PID 1 deliver a chosen signal. Only the
spawner, from outside the sandbox, can stop the server. Other architectures' system calls (32-bit,
x32) are refused too. Pure: returns bytes.
"""

from __future__ import annotations

import errno
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
CLONE_NEWUSER = 0x10000000

# x86-64 system call numbers
BLOCKED = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
    "mount": 165, "umount2": 166, "pivot_root": 155, "setns": 308,
    "open_by_handle_at": 304, "init_module": 175, "finit_module": 313, "delete_module": 176,
    "kexec_load": 246, "kexec_file_load": 320, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249,
    "fsopen": 430, "fsmount": 432, "move_mount": 429, "open_tree": 428,
    "tkill": 200, "pidfd_send_signal": 424,
}  # fmt: skip
# system calls refused when their argument at (seccomp_data offset) has the value
SERVER_PID = 1
F_SETSIG = 10
REFUSED_WITH_ARG = {
    "kill": (62, 16, SERVER_PID), "tgkill": (234, 16, SERVER_PID),
    "rt_sigqueueinfo": (129, 16, SERVER_PID), "rt_tgsigqueueinfo": (297, 16, SERVER_PID),
    "fcntl": (72, 24, F_SETSIG),
}  # fmt: skip
CLONE, UNSHARE, CLONE3 = 56, 272, 435

# classic BPF opcodes
LD_ABS_W = 0x20
JEQ, JGE, JSET = 0x15, 0x35, 0x45
RET = 0x06
RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000


def _errno(code: int) -> int:
    return 0x00050000 | code


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def workspace_filter() -> bytes:
    """The filter program (struct sock_filter[]) as bytes."""
    eperm = _errno(errno.EPERM)
    prog = [
        _insn(LD_ABS_W, 0, 0, 4),  # seccomp_data.arch
        _insn(JEQ, 1, 0, AUDIT_ARCH_X86_64),
        _insn(RET, 0, 0, RET_KILL_PROCESS),
        _insn(LD_ABS_W, 0, 0, 0),  # seccomp_data.nr
        _insn(JGE, 0, 1, X32_SYSCALL_BIT),
        _insn(RET, 0, 0, eperm),
    ]
    for nr in sorted(BLOCKED.values()):
        prog += [_insn(JEQ, 0, 1, nr), _insn(RET, 0, 0, eperm)]
    for nr, offset, value in REFUSED_WITH_ARG.values():
        prog += [
            _insn(JEQ, 0, 4, nr),
            _insn(LD_ABS_W, 0, 0, offset),  # low 32 bits of the argument
            _insn(JEQ, 0, 1, value),
            _insn(RET, 0, 0, eperm),
            _insn(RET, 0, 0, RET_ALLOW),
        ]
    prog += [
        _insn(JEQ, 0, 1, CLONE3),
        _insn(RET, 0, 0, _errno(errno.ENOSYS)),
        _insn(JEQ, 1, 0, UNSHARE),  # unshare: go and check its flags
        _insn(JEQ, 0, 3, CLONE),  # neither unshare nor clone: allow
        _insn(LD_ABS_W, 0, 0, 16),  # low 32 bits of args[0]: the flags
        _insn(JSET, 0, 1, CLONE_NEWUSER),
        _insn(RET, 0, 0, eperm),
        _insn(RET, 0, 0, RET_ALLOW),
    ]
    return b"".join(prog)
