#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "proto.h"

static struct stream *table[MAX_STREAMS];
static size_t count;

struct stream *stream_find(uint32_t id)
{
	for (size_t i = 0; i < count; i++)
		if (table[i]->id == id)
			return table[i];
	return NULL;
}

struct stream *stream_new(uint32_t id, enum stream_kind kind)
{
	if (stream_find(id)) {
		errno = EEXIST;
		return NULL;
	}
	if (count == MAX_STREAMS) {
		errno = EMFILE;
		return NULL;
	}
	struct stream *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->id = id;
	s->kind = kind;
	s->tx_window = WL_GUEST_WINDOW;
	s->rx_window = WL_INITIAL_WINDOW;
	s->out_fd = s->err_fd = s->in_fd = s->file_fd = -1;
	table[count++] = s;
	return s;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void stream_free(struct stream *s)
{
	for (size_t i = 0; i < count; i++) {
		if (table[i] == s) {
			table[i] = table[--count];
			break;
		}
	}
	close_fd(&s->out_fd);
	close_fd(&s->err_fd);
	close_fd(&s->in_fd);
	close_fd(&s->file_fd);
	free(s->inbuf);
	free(s);
}

size_t stream_count(void)
{
	return count;
}

struct stream *stream_at(size_t i)
{
	return i < count ? table[i] : NULL;
}
