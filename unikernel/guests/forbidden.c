/* forbidden: makes a system call outside the ABI (getpid). Under spt the
 * seccomp filter kills the process (SIGSYS); under hvt, a SYSCALL
 * instruction in the VM is an invalid-opcode fault. */
#include "lib/guest.h"

MFT1_DECLARE(1);

int guest_main(const char *cmdline)
{
    (void)cmdline;
    g_puts("forbidden: calling getpid\n");
    long ret;
    __asm__ __volatile__("syscall" : "=a"(ret) : "a"(39L) : "rcx", "r11", "memory");
    g_puts("forbidden: survived\n");
    return 3;
}
