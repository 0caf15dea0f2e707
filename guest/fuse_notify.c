#include "fuse_notify.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* Notifications are small (an entry one is a name plus 32 bytes); a full queue drops new
 * ones and the caller tells the host (WL_FUSE_NOTIFY_LOST), which then keeps cache timeouts
 * short: the guest notices the lost change when its cache times out. */
#define QUEUE_BYTES (64u * 1024u)
#define NOTIFY_MAX 4096u

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static uint8_t queue[QUEUE_BYTES];
static size_t queued; /* bytes of whole messages at the front of queue */
static int stopping;
static int running;
static unsigned long dropped;

static void *writer(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t msg[NOTIFY_MAX];
	for (;;) {
		pthread_mutex_lock(&lock);
		while (queued == 0 && !stopping)
			pthread_cond_wait(&wake, &lock);
		if (stopping) {
			pthread_mutex_unlock(&lock);
			break;
		}
		uint32_t len;
		memcpy(&len, queue, 4);
		memcpy(msg, queue, len);
		memmove(queue, queue + len, queued - len);
		queued -= len;
		pthread_mutex_unlock(&lock);
		/* ENOENT: the kernel no longer knows that node or name; nothing to drop. */
		if (write(fd, msg, len) < 0 && errno != ENOENT)
			logmsg("fuse: notification refused: %s", strerror(errno));
	}
	close(fd);
	return NULL;
}

int fuse_notify_start(int fuse_fd)
{
	int fd = dup(fuse_fd);
	if (fd < 0)
		return -1;
	pthread_t thread;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024 + NOTIFY_MAX);
	/* The thread starts with every signal blocked: the agent reads SIGCHLD from a signalfd,
	 * and a thread that leaves it unblocked would take those signals (execs would never
	 * be seen to exit). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&thread, &attr, writer, (void *)(intptr_t)fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		close(fd);
		return -1;
	}
	running = 1;
	return 0;
}

int fuse_notify_queue(const uint8_t *msg, size_t len)
{
	int ok = 0;
	pthread_mutex_lock(&lock);
	if (running && !stopping && len <= NOTIFY_MAX && queued + len <= QUEUE_BYTES) {
		memcpy(queue + queued, msg, len);
		queued += len;
		pthread_cond_signal(&wake);
		ok = 1;
	} else if (++dropped % 1000 == 1) {
		logmsg("fuse: notification dropped (%lu so far)", dropped);
	}
	pthread_mutex_unlock(&lock);
	return ok ? 0 : -1;
}

void fuse_notify_stop(void)
{
	pthread_mutex_lock(&lock);
	stopping = 1;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
}
