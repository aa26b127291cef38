"""The seccomp program, decoded back and walked by a tiny classic-BPF interpreter."""

from __future__ import annotations

import errno
import struct

import pytest
from cloisonne.backends.sandbox.seccomp import (
    AUDIT_ARCH_X86_64,
    BLOCKED,
    CLONE,
    CLONE3,
    CLONE_NEWUSER,
    F_SETSIG,
    REFUSED_WITH_ARG,
    UNSHARE,
    workspace_filter,
)

ALLOW = 0x7FFF0000


def run_filter(nr: int, arch: int = AUDIT_ARCH_X86_64, arg0: int = 0, arg1: int = 0) -> int:
    program = workspace_filter()
    insns = [struct.unpack("<HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0, arg1, 0, 0, 0, 0)
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code == 0x06:
            return k
        else:
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += 1 + (jt if taken else jf)


@pytest.mark.parametrize("name", sorted(BLOCKED))
def test_blocked_calls_get_eperm(name: str) -> None:
    assert run_filter(BLOCKED[name]) == 0x50000 | errno.EPERM


def test_ordinary_calls_pass() -> None:
    for nr in (
        0,
        1,
        2,
        3,
        9,
        39,
        57,
        59,
        231,
    ):  # read write open close mmap getpid fork execve exit
        assert run_filter(nr) == ALLOW


def test_user_namespaces_are_refused_but_threads_and_forks_are_not() -> None:
    assert run_filter(UNSHARE, arg0=CLONE_NEWUSER) == 0x50000 | errno.EPERM
    assert run_filter(CLONE, arg0=CLONE_NEWUSER | 0x11) == 0x50000 | errno.EPERM
    assert run_filter(UNSHARE, arg0=0x20000) == ALLOW  # CLONE_NEWNS alone: the kernel decides
    assert run_filter(CLONE, arg0=0x3D0F00) == ALLOW  # glibc's pthread_create flags
    assert run_filter(CLONE3) == 0x50000 | errno.ENOSYS


def test_other_architectures_are_killed() -> None:
    assert run_filter(1, arch=0x40000003) == 0x80000000  # i386
    assert run_filter(0x40000000 | 1) == 0x50000 | errno.EPERM  # x32


@pytest.mark.parametrize("name", ["kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"])
def test_signals_to_the_server_are_refused_and_others_pass(name: str) -> None:
    nr = REFUSED_WITH_ARG[name][0]
    assert run_filter(nr, arg0=1) == 0x50000 | errno.EPERM  # PID 1: the server
    assert run_filter(nr, arg0=42) == ALLOW  # a kernel signalling its own children
    assert run_filter(nr, arg0=0xFFFFFFFF) == ALLOW  # kill(-1): the kernel spares PID 1


def test_fcntl_cannot_choose_a_signal_for_an_fd_but_works_otherwise() -> None:
    fcntl_nr = REFUSED_WITH_ARG["fcntl"][0]
    assert run_filter(fcntl_nr, arg0=3, arg1=F_SETSIG) == 0x50000 | errno.EPERM
    assert run_filter(fcntl_nr, arg0=3, arg1=4) == ALLOW  # F_SETFL
