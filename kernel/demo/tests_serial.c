/* tests_serial.c: kt_ tests of the 16550 UARTs: COM1 answers, COM2 carries a known line. */
#include <arch/serial.h>
#include <kern/errno.h>
#include <kern/string.h>
#include <kt/ktest.h>

/* What a host listening on COM2 should receive. */
#define COM2_LINE "kscope-demo: hello on COM2\n"

static void com1_answers(struct kt_test *t)
{
	/* The console itself: its scratch register holds what was written. */
	KT_EXPECT_TRUE(t, serial_probe(COM1_PORT));
}

static void com2_known_line(struct kt_test *t)
{
	if (!serial_com2_present()) {
		KT_EXPECT_EQ(t, serial_com2_write("x", 1), -ENODEV);
		kt_skip(t, "no COM2 (add -chardev ...,id=c2 -device "
			   "isa-serial,chardev=c2,iobase=0x2f8,irq=3)");
	}
	KT_EXPECT_EQ(t, serial_com2_write(COM2_LINE, strlen(COM2_LINE)), 0);
	kt_info(t, "wrote the known line to COM2");
}

static struct kt_case serial_cases[] = {
	KT_CASE(com1_answers),
	KT_CASE(com2_known_line),
	{ .run = NULL },
};

static struct kt_suite serial_suite = { .name = "serial", .cases = serial_cases };
KT_SUITE(serial_suite);
