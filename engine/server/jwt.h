/*
** jwt.h: bearer-token (JWT) verification for the CDS Hooks listener.
**
** Keys come from a JWKS file (RSA keys for RS256, EC P-384 keys for ES384;
** others are skipped). A token passes when its signature verifies with the
** key its header names (kid, or the only key of its algorithm), its iss is
** on the allow-list, its aud is the configured audience (a string or an
** array holding it), exp and iat are present and hold (with leeway), nbf
** if present holds, and its jti was not seen before within the replay
** window (until the token expires). Messages say why a token was refused
** and never contain the token. Uses OpenSSL's libcrypto; never prints.
*/
#ifndef PW_JWT_H
#define PW_JWT_H

#include <stddef.h>

#define PW_JWT_MAX_ISSUERS 16

typedef struct pw_jwt_config {
  const char *jwks_path;
  const char *issuers[PW_JWT_MAX_ISSUERS];
  int nissuers;
  const char *audience;
  int leeway_s;          /* clock skew allowed on exp, iat, nbf */
} pw_jwt_config;

typedef struct pw_jwt pw_jwt;

pw_jwt *pw_jwt_new(const pw_jwt_config *cfg, char *err, size_t errlen);
void pw_jwt_free(pw_jwt *j);
int pw_jwt_nkeys(const pw_jwt *j);

/* 0 when the token (the text after "Bearer ") is valid at time now (Unix
** seconds); -1 with why set otherwise. A valid token's jti is remembered. */
int pw_jwt_verify(pw_jwt *j, const char *token, size_t len, long long now, char *why, size_t n);

#endif
