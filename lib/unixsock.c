/* unixsock.c: connecting to a Unix socket whose server may still be starting. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <kscope/unixsock.h>

/* Short: a VM's start waits on this, and a failed connect() costs a few microseconds. */
#define RETRY_NS 1000000ll

/* One attempt: the socket, -EAGAIN to try again later, or another -errno. */
static int try_connect(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return fd;
	r = errno == ENOENT || errno == ECONNREFUSED || errno == EAGAIN ? -EAGAIN : -errno;
	close(fd);
	return r;
}

/* Waits before the next attempt; 0, or the loop's -errno. */
static int pause_a_little(struct ks_loop *loop, int64_t left)
{
	int64_t ns = left < 0 || left > RETRY_NS ? RETRY_NS : left;

	if (loop) {
		int r = ks_loop_run_once(loop, ns);
		return r < 0 ? r : 0;
	}
	struct timespec ts = { 0, (long)ns };
	nanosleep(&ts, NULL);
	return 0;
}

int ks_unix_connect(struct ks_loop *loop, const char *path, int64_t timeout_ns,
		    const char *who, struct ks_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t start = ks_loop_now_ns();
	int fd;

	if (!path)
		return ks_error_set(err, -EINVAL, "%s: no socket path", who);
	if (strlen(path) >= sizeof(sa.sun_path))
		return ks_error_set(err, -ENAMETOOLONG, "%s: socket path too long: %s", who, path);
	strcpy(sa.sun_path, path);
	while ((fd = try_connect(&sa)) == -EAGAIN) {
		int64_t spent = (int64_t)(ks_loop_now_ns() - start);
		int64_t left = timeout_ns < 0 ? -1 : spent < timeout_ns ? timeout_ns - spent : 0;
		int r;

		if (left == 0)
			return ks_error_set(err, -ETIMEDOUT, "%s: nothing listens on %s after %lld ms",
					    who, path, (long long)(timeout_ns / 1000000));
		if ((r = pause_a_little(loop, left)) < 0)
			return ks_error_set(err, r, "%s: loop: %s", who, strerror(-r));
	}
	if (fd < 0)
		return ks_error_set(err, fd, "%s: connect %s: %s", who, path, strerror(-fd));
	return fd;
}
