/* x86_cs.c: capstone's x86 register names, mapped to the general registers they are part of. */
#include <capstone/capstone.h>

#include "x86_cs.h"

bool ks_cs_gpr(unsigned cs_reg, unsigned *num, unsigned *bytes, unsigned *shift)
{
	/* Each register at 8, 4, 2 and 1 bytes, in encoding order. */
	static const unsigned short names[16][4] = {
		{ X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL },
		{ X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL },
		{ X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL },
		{ X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL },
		{ X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL },
		{ X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL },
		{ X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL },
		{ X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL },
		{ X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B },
		{ X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B },
		{ X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B },
		{ X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B },
		{ X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B },
		{ X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B },
		{ X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B },
		{ X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B },
	};
	static const unsigned short high[4] = { X86_REG_AH, X86_REG_CH, X86_REG_DH, X86_REG_BH };
	static const unsigned widths[4] = { 8, 4, 2, 1 };

	for (unsigned i = 0; i < 16; i++)
		for (unsigned k = 0; k < 4; k++)
			if (names[i][k] == cs_reg) {
				*num = i, *bytes = widths[k], *shift = 0;
				return true;
			}
	for (unsigned i = 0; i < 4; i++)
		if (high[i] == cs_reg) {
			*num = i, *bytes = 1, *shift = 8;
			return true;
		}
	return false;
}
