/* leftovers.h: the check every VM test's teardown ends with: nothing of ours left behind. */
#ifndef KSCOPE_TEST_LEFTOVERS_H
#define KSCOPE_TEST_LEFTOVERS_H

/*
 * Fails the running cmocka test if a /dev/shm file of this process's VMs (kscope-PID-*) is
 * left, or if base, the runtime directory the test gave its VMs, is not empty (it removes
 * base when it is).
 */
void expect_no_leftovers(const char *base);

#endif
