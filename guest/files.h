/* File operations: FILE_WRITE/FILE_READ streams and the one-shot LIST/STAT/MKDIR/REMOVE. */
#ifndef WL_FILES_H
#define WL_FILES_H

#include <stdint.h>

#include "stream.h"

/* Each returns -1 on a protocol error (malformed record), else 0 (reply sent or pending). */
int file_write_start(uint32_t id, const uint8_t *payload, uint32_t len);
int file_write_data(struct stream *s, const uint8_t *data, uint32_t len);
void file_write_eof(struct stream *s);

int file_read_start(uint32_t id, const uint8_t *payload, uint32_t len);
/* Sends the next chunk if the window allows; 1 if it still has work ready, else 0. */
int file_read_pump(struct stream *s);

int file_list(uint32_t id, const uint8_t *payload, uint32_t len);
int file_stat(uint32_t id, const uint8_t *payload, uint32_t len);
int file_mkdir(uint32_t id, const uint8_t *payload, uint32_t len);
int file_remove(uint32_t id, const uint8_t *payload, uint32_t len);

#endif
