/* ev_shard.h: how a fleet of echoviewd instances splits one stream list: rendezvous
 * (highest-random-weight) hashing of the stream id over the shard indices 0..N-1, and the
 * parsing of a shard spec "I/N" (flag --shard, ECHOVIEW_SHARD, or ECHOVIEW_SHARDS=N with the
 * ordinal I from the trailing -<digits> of a StatefulSet pod's host name). The daemon runs the
 * streams whose owner is its index; `echoview fleet map` prints the same owners for the senders.
 *
 * Weight of (stream, shard) = fmix64(FNV-1a-64(stream id bytes) ^ fmix64(shard + 1)); the owner
 * is the shard of the highest weight (the lower index on a tie). Going from N to N+1 shards moves
 * only the streams the new shard wins, ~1/(N+1) of them; no other stream changes owner. The
 * weights are part of the fleet's contract (a mixed-version fleet must agree): do not change
 * them. Plain C, no allocation, thread-safe. */
#ifndef EV_SHARD_H
#define EV_SHARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest N accepted in a shard spec. */
#define EV_SHARD_MAX 4096

/* The weight of shard index for stream id (NUL-terminated). */
uint64_t ev_shard_weight(const char *stream_id, unsigned index);
/* The owner of stream_id among n >= 1 shards: 0..n-1 (0 when n is 0). */
unsigned ev_shard_owner(const char *stream_id, unsigned n);

/* Parses "I/N" (decimal, 0 <= I < N, 1 <= N <= EV_SHARD_MAX, nothing else). Returns 0, or -1
 * with a one-line reason in err (naming spec). */
int ev_shard_parse(const char *spec, unsigned *index, unsigned *count, char *err, size_t err_len);
/* The ordinal of a StatefulSet pod name: the digits after its last '-' ("echoviewd-3" -> 3).
 * Returns 0, or -1 with a reason in err when there is none. */
int ev_shard_ordinal(const char *hostname, unsigned *ordinal, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif
