/*
** jwt.c: JWT (RS256, ES384) verification against a JWKS file; see jwt.h.
*/
#include "jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "file.h"
#include "rpc.h"

#define MAX_KEYS 32
#define MAX_TOKEN 8192
#define REPLAY_MAX 8192

enum { ALG_RS256 = 1, ALG_ES384 };

typedef struct jwk { char kid[128]; int alg; EVP_PKEY *pkey; } jwk;
typedef struct seen { char jti[128]; long long until; } seen;

struct pw_jwt {
  pw_jwt_config cfg;
  jwk keys[MAX_KEYS];
  int nkeys;
  seen replay[REPLAY_MAX];
  int nreplay;
};

/* {====== text helpers ================================================= */

static int b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *outlen) {
  unsigned v = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i], d;
    if (c >= 'A' && c <= 'Z') d = c - 'A';
    else if (c >= 'a' && c <= 'z') d = c - 'a' + 26;
    else if (c >= '0' && c <= '9') d = c - '0' + 52;
    else if (c == '-') d = 62;
    else if (c == '_') d = 63;
    else if (c == '=') break;
    else return -1;
    v = (v << 6) | (unsigned)d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= cap) return -1;
      out[o++] = (unsigned char)(v >> bits);
    }
  }
  *outlen = o;
  return 0;
}

/* A string member of the JSON object s[0..n) into out; -1 if absent or not a string. */
static int member_str(const char *s, size_t n, const char *key, char *out, size_t cap) {
  const char *keys[1] = {key};
  pw_span sp[1];
  if (pw_rpc_members(s, n, keys, 1, sp, 0) != 0 || !sp[0].len) return -1;
  return pw_rpc_string(s + sp[0].off, sp[0].len, out, cap) < 0 ? -1 : 0;
}

/* An integer member (a JSON number); -1 if absent or not a number. */
static int member_int(const char *s, size_t n, const char *key, long long *v) {
  const char *keys[1] = {key};
  pw_span sp[1];
  char buf[32];
  if (pw_rpc_members(s, n, keys, 1, sp, 0) != 0 || !sp[0].len || sp[0].len >= sizeof buf) return -1;
  memcpy(buf, s + sp[0].off, sp[0].len);
  buf[sp[0].len] = 0;
  char *end;
  double d = strtod(buf, &end);
  if (*end || end == buf || buf[0] == '"') return -1;
  *v = (long long)d;
  return 0;
}

/* The next element of the JSON array text s[0..n) from *pos; 0 or -1 at the end. */
static int array_next(const char *s, size_t n, size_t *pos, pw_span *el) {
  size_t i = *pos;
  if (i == 0) {
    while (i < n && s[i] != '[') i++;
    i++;
  }
  while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t' || s[i] == ',')) i++;
  if (i >= n || s[i] == ']') return -1;
  size_t start = i;
  int depth = 0, str = 0;
  for (; i < n; i++) {
    char c = s[i];
    if (str) {
      if (c == '\\') i++;
      else if (c == '"') str = 0;
      continue;
    }
    if (c == '"') str = 1;
    else if (c == '{' || c == '[') depth++;
    else if (c == '}' || c == ']') {
      if (depth == 0) break;
      depth--;
    } else if (c == ',' && depth == 0) break;
  }
  el->off = start;
  el->len = i - start;
  while (el->len && (s[start + el->len - 1] == ' ' || s[start + el->len - 1] == '\n')) el->len--;
  *pos = i;
  return 0;
}

/* }====== */

/* {====== keys ========================================================= */

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld) {
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return pkey;
}

static EVP_PKEY *rsa_key(const char *k, size_t n) {
  char n64[2048], e64[64];
  unsigned char nb[1024], eb[16];
  size_t nl, el;
  if (member_str(k, n, "n", n64, sizeof n64) || member_str(k, n, "e", e64, sizeof e64) ||
      b64url_decode(n64, strlen(n64), nb, sizeof nb, &nl) || b64url_decode(e64, strlen(e64), eb, sizeof eb, &el) ||
      nl < 256)   /* at least 2048 bits */
    return NULL;
  BIGNUM *bn = BN_bin2bn(nb, (int)nl, NULL), *be = BN_bin2bn(eb, (int)el, NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  EVP_PKEY *pkey = NULL;
  if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
    pkey = from_params("RSA", bld);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn);
  BN_free(be);
  return pkey;
}

static EVP_PKEY *ec384_key(const char *k, size_t n) {
  char crv[16], x64[128], y64[128];
  unsigned char pt[1 + 96];
  size_t xl, yl;
  if (member_str(k, n, "crv", crv, sizeof crv) || strcmp(crv, "P-384") ||
      member_str(k, n, "x", x64, sizeof x64) || member_str(k, n, "y", y64, sizeof y64) ||
      b64url_decode(x64, strlen(x64), pt + 1, 48, &xl) || xl != 48 ||
      b64url_decode(y64, strlen(y64), pt + 49, 48, &yl) || yl != 48)
    return NULL;
  pt[0] = 4;
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  EVP_PKEY *pkey = NULL;
  if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "secp384r1", 0) &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt))
    pkey = from_params("EC", bld);
  OSSL_PARAM_BLD_free(bld);
  return pkey;
}

static void add_key(pw_jwt *j, const char *k, size_t n) {
  char kty[16], use[16], alg[16];
  if (j->nkeys >= MAX_KEYS || member_str(k, n, "kty", kty, sizeof kty)) return;
  if (!member_str(k, n, "use", use, sizeof use) && strcmp(use, "sig")) return;
  int want = !member_str(k, n, "alg", alg, sizeof alg) ? (!strcmp(alg, "RS256") ? ALG_RS256 : !strcmp(alg, "ES384") ? ALG_ES384 : -1) : 0;
  jwk *key = &j->keys[j->nkeys];
  memset(key, 0, sizeof *key);
  if (!strcmp(kty, "RSA") && (want == 0 || want == ALG_RS256)) { key->pkey = rsa_key(k, n); key->alg = ALG_RS256; }
  else if (!strcmp(kty, "EC") && (want == 0 || want == ALG_ES384)) { key->pkey = ec384_key(k, n); key->alg = ALG_ES384; }
  if (!key->pkey) return;
  member_str(k, n, "kid", key->kid, sizeof key->kid);
  j->nkeys++;
}

pw_jwt *pw_jwt_new(const pw_jwt_config *cfg, char *err, size_t errlen) {
  pw_jwt *j = calloc(1, sizeof *j);
  pw_buf text = {0};
  pw_error e;
  if (!j) { snprintf(err, errlen, "out of memory"); return NULL; }
  j->cfg = *cfg;
  if (pw_file_read(cfg->jwks_path, 1 << 20, &text, &e) != PW_OK) {
    snprintf(err, errlen, "JWKS %s: %s", cfg->jwks_path, e.msg);
    goto fail;
  }
  static const char *const top[] = {"keys"};
  pw_span sp[1], el;
  if (!text.data || pw_rpc_members(text.data, text.len, top, 1, sp, 0) != 0 || !sp[0].len) {
    snprintf(err, errlen, "JWKS %s: expected {\"keys\": [...]}", cfg->jwks_path);
    goto fail;
  }
  size_t pos = 0;
  const char *arr = text.data + sp[0].off;
  while (array_next(arr, sp[0].len, &pos, &el) == 0) add_key(j, arr + el.off, el.len);
  if (!j->nkeys) {
    snprintf(err, errlen, "JWKS %s: no usable key (RSA of 2048 bits or more for RS256, EC P-384 for ES384)", cfg->jwks_path);
    goto fail;
  }
  pw_buf_free(&text);
  return j;
fail:
  pw_buf_free(&text);
  pw_jwt_free(j);
  return NULL;
}

void pw_jwt_free(pw_jwt *j) {
  if (!j) return;
  for (int i = 0; i < j->nkeys; i++) EVP_PKEY_free(j->keys[i].pkey);
  free(j);
}

int pw_jwt_nkeys(const pw_jwt *j) { return j->nkeys; }

/* }====== */

/* {====== verification ================================================= */

static int fail(char *why, size_t n, const char *msg) {
  snprintf(why, n, "%s", msg);
  return -1;
}

/* ES384's raw r||s as the DER that EVP_DigestVerify wants. */
static int ecdsa_der(const unsigned char *raw, size_t len, unsigned char **der, int *derlen) {
  if (len != 96) return -1;
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(raw, 48, NULL), *s = BN_bin2bn(raw + 48, 48, NULL);
  if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
    ECDSA_SIG_free(sig);
    BN_free(r);
    BN_free(s);
    return -1;
  }
  *der = NULL;
  *derlen = i2d_ECDSA_SIG(sig, der);
  ECDSA_SIG_free(sig);
  return *derlen > 0 ? 0 : -1;
}

static int signature_ok(const jwk *k, const char *data, size_t dlen, const unsigned char *sig, size_t slen) {
  unsigned char *der = NULL;
  int derlen = 0, ok = 0;
  if (k->alg == ALG_ES384) {
    if (ecdsa_der(sig, slen, &der, &derlen)) return 0;
    sig = der;
    slen = (size_t)derlen;
  }
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  if (m && EVP_DigestVerifyInit(m, NULL, k->alg == ALG_ES384 ? EVP_sha384() : EVP_sha256(), NULL, k->pkey) == 1)
    ok = EVP_DigestVerify(m, sig, slen, (const unsigned char *)data, dlen) == 1;
  EVP_MD_CTX_free(m);
  OPENSSL_free(der);
  return ok;
}

static const jwk *pick_key(const pw_jwt *j, int alg, const char *kid) {
  const jwk *found = NULL;
  int n = 0;
  for (int i = 0; i < j->nkeys; i++) {
    if (j->keys[i].alg != alg) continue;
    if (kid[0] && !strcmp(j->keys[i].kid, kid)) return &j->keys[i];
    if (!kid[0]) { found = &j->keys[i]; n++; }
  }
  return n == 1 ? found : NULL;
}

static int audience_ok(const char *p, size_t n, const char *aud) {
  static const char *const keys[] = {"aud"};
  pw_span sp[1], el;
  char v[512];
  if (pw_rpc_members(p, n, keys, 1, sp, 0) != 0 || !sp[0].len) return 0;
  const char *a = p + sp[0].off;
  if (a[0] == '"') return pw_rpc_string(a, sp[0].len, v, sizeof v) >= 0 && !strcmp(v, aud);
  size_t pos = 0;
  if (a[0] != '[') return 0;
  while (array_next(a, sp[0].len, &pos, &el) == 0)
    if (pw_rpc_string(a + el.off, el.len, v, sizeof v) >= 0 && !strcmp(v, aud)) return 1;
  return 0;
}

/* The claims: iss, aud, exp, iat, nbf, jti (remembered when all hold). */
static int claims_ok(pw_jwt *j, const char *p, size_t n, long long now, char *why, size_t wn) {
  char iss[512], jti[128];
  long long exp, iat, nbf;
  int lw = j->cfg.leeway_s, allowed = 0;
  if (member_str(p, n, "iss", iss, sizeof iss)) return fail(why, wn, "no iss claim");
  for (int i = 0; i < j->cfg.nissuers; i++)
    if (!strcmp(j->cfg.issuers[i], iss)) allowed = 1;
  if (!allowed) return fail(why, wn, "issuer not on the allow-list");
  if (!audience_ok(p, n, j->cfg.audience)) return fail(why, wn, "aud is not this service");
  if (member_int(p, n, "exp", &exp)) return fail(why, wn, "no exp claim");
  if (now > exp + lw) return fail(why, wn, "token expired");
  if (member_int(p, n, "iat", &iat)) return fail(why, wn, "no iat claim");
  if (iat > now + lw) return fail(why, wn, "iat in the future");
  if (!member_int(p, n, "nbf", &nbf) && nbf > now + lw) return fail(why, wn, "token not yet valid (nbf)");
  if (member_str(p, n, "jti", jti, sizeof jti) || !jti[0]) return fail(why, wn, "no jti claim");
  int w = 0;
  for (int i = 0; i < j->nreplay; i++) {   /* forget what has expired; refuse a replay */
    if (j->replay[i].until < now) continue;
    if (!strcmp(j->replay[i].jti, jti)) return fail(why, wn, "jti replayed");
    j->replay[w++] = j->replay[i];
  }
  j->nreplay = w;
  if (j->nreplay >= REPLAY_MAX) return fail(why, wn, "too many live tokens to remember (replay window full)");
  snprintf(j->replay[j->nreplay].jti, sizeof j->replay[0].jti, "%s", jti);
  j->replay[j->nreplay++].until = exp + lw;
  return 0;
}

int pw_jwt_verify(pw_jwt *j, const char *t, size_t len, long long now, char *why, size_t wn) {
  static unsigned char hdr[1024], pay[MAX_TOKEN], sig[1024];
  size_t hl, pl, sl;
  char alg[16], kid[128] = "";
  if (len > MAX_TOKEN) return fail(why, wn, "token too long");
  const char *d1 = memchr(t, '.', len), *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - t)) : NULL;
  if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - t))) return fail(why, wn, "not a JWS compact token");
  if (b64url_decode(t, (size_t)(d1 - t), hdr, sizeof hdr - 1, &hl) ||
      b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), pay, sizeof pay - 1, &pl) ||
      b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - t), sig, sizeof sig, &sl))
    return fail(why, wn, "bad base64url");
  if (member_str((char *)hdr, hl, "alg", alg, sizeof alg)) return fail(why, wn, "header: no alg");
  member_str((char *)hdr, hl, "kid", kid, sizeof kid);
  int a = !strcmp(alg, "RS256") ? ALG_RS256 : !strcmp(alg, "ES384") ? ALG_ES384 : 0;
  if (!a) return fail(why, wn, "alg not accepted (RS256, ES384)");
  const jwk *k = pick_key(j, a, kid);
  if (!k) return fail(why, wn, "no key in the JWKS for this kid and alg");
  if (!signature_ok(k, t, (size_t)(d2 - t), sig, sl)) return fail(why, wn, "signature does not verify");
  return claims_ok(j, (char *)pay, pl, now, why, wn);
}

/* }====== */
