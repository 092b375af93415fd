/* x86_cs.h: what capstone's x86 register names mean, for the files that decode guest code. */
#ifndef KSCOPE_X86_CS_H
#define KSCOPE_X86_CS_H

#include <stdbool.h>

/*
 * The general register that capstone's register cs_reg (an x86_reg) is part of: its number
 * in the instruction encoding (RAX 0, RCX 1, RDX 2, RBX 3, RSP 4, RBP 5, RSI 6, RDI 7,
 * R8..R15 8..15), the width of the part in bytes, and its bit offset in the register (8 for
 * AH, CH, DH and BH, else 0). Returns false when cs_reg is no general register.
 */
bool ks_cs_gpr(unsigned cs_reg, unsigned *num, unsigned *bytes, unsigned *shift);

#endif
