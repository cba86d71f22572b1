/*
** sha256.h: FIPS 180-4 SHA-256 (with the x86 SHA extensions when the CPU
** has them), for protocol, plugin and facts fingerprints.
*/
#ifndef PW_SHA256_H
#define PW_SHA256_H

#include <stddef.h>

/* Hex SHA-256 of data; out must hold 65 bytes. */
void pw_sha256_hex(const void *data, size_t len, char out[65]);

#endif
