/* The bench baseline's /init: the kernel reaches userspace, then the VM ends at once.
 * QEMU runs with -no-reboot, so a reboot request ends the QEMU process. */
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}
