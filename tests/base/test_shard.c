/* test_shard.c: the fleet's shard assignment (base/ev_shard.h): every stream has one owner, the
 * owners are balanced, adding a shard moves only the streams the new shard wins (about 1/N), the
 * weights are pinned (a fleet of mixed versions must agree), and bad shard specs and pod names are
 * refused with a reason. */
#include "ev_shard.h"
#include "test_util.h"

#include <stdio.h>
#include <string.h>

#define STREAMS 3000

static void check_balance_and_moves(void)
{
    char id[32];
    unsigned counts[8] = {0}, moved = 0, moved_elsewhere = 0;

    for (int s = 0; s < STREAMS; s++) {
        snprintf(id, sizeof id, "scanner-%04d", s);
        unsigned a = ev_shard_owner(id, 7), b = ev_shard_owner(id, 8);
        CHECK(a < 7 && b < 8, "owner in range for %s: %u/7 %u/8", id, a, b);
        CHECK(ev_shard_owner(id, 7) == a, "owner is deterministic for %s", id);
        counts[a]++;
        if (a != b) {
            moved++;
            if (b != 7)
                moved_elsewhere++;
        }
    }
    for (int i = 0; i < 7; i++)
        CHECK(counts[i] > STREAMS / 7 * 0.8 && counts[i] < STREAMS / 7 * 1.2,
              "shard %d of 7 has %u of %d streams (balanced within 20 %%)", i, counts[i], STREAMS);
    /* 7 -> 8: only streams won by the new shard move, about 1/8 of them */
    CHECK(moved_elsewhere == 0, "%u streams moved between old shards", moved_elsewhere);
    CHECK(moved > STREAMS / 8 * 0.7 && moved < STREAMS / 8 * 1.3,
          "%u of %d streams moved to the 8th shard (about 1/8)", moved, STREAMS);
    CHECK(ev_shard_owner("anything", 1) == 0 && ev_shard_owner("x", 0) == 0, "N=1 and N=0: 0");
}

static void check_pinned(void)
{
    /* The fleet's contract: these owners must never change (echoview fleet map and every
     * echoviewd version compute them; a mixed-version fleet must agree). */
    static const struct {
        const char *id;
        unsigned of2, of3, of5;
    } pinned[] = {
        {"cart-1", 0, 0, 0}, {"cart-2", 0, 0, 0}, {"cart-3", 1, 1, 3}, {"cart-4", 1, 2, 2},
        {"cart-5", 0, 2, 3}, {"cart-6", 0, 2, 4}, {"echo-a", 0, 0, 0}, {"icu-12", 0, 2, 2},
    };
    CHECK(ev_shard_weight("cart-1", 0) == UINT64_C(0xa454da9f3a18c985), "weight of cart-1 on 0");
    for (size_t k = 0; k < sizeof pinned / sizeof *pinned; k++)
        CHECK(ev_shard_owner(pinned[k].id, 2) == pinned[k].of2 &&
                  ev_shard_owner(pinned[k].id, 3) == pinned[k].of3 &&
                  ev_shard_owner(pinned[k].id, 5) == pinned[k].of5,
              "%s: owners %u/2 %u/3 %u/5", pinned[k].id, ev_shard_owner(pinned[k].id, 2),
              ev_shard_owner(pinned[k].id, 3), ev_shard_owner(pinned[k].id, 5));
}

static void check_parse(void)
{
    unsigned i = 99, n = 99;
    char err[256];
    static const char *bad[] = {"3/2", "0/0", "a/b", "1/", "/3", "", "1/2/3", "-1/2", "1 /2",
                                "2/2", "0/4097", "1/2x", "99999999999/3"};

    CHECK(ev_shard_parse("0/1", &i, &n, err, sizeof err) == 0 && i == 0 && n == 1, "0/1");
    CHECK(ev_shard_parse("2/3", &i, &n, err, sizeof err) == 0 && i == 2 && n == 3, "2/3");
    CHECK(ev_shard_parse("4095/4096", &i, &n, err, sizeof err) == 0 && n == 4096, "4095/4096");
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        err[0] = '\0';
        CHECK(ev_shard_parse(bad[k], &i, &n, err, sizeof err) == -1 && err[0],
              "'%s' refused: %s", bad[k], err);
    }
    ev_shard_parse("3/2", &i, &n, err, sizeof err);
    CHECK(strstr(err, "not below the shard count") != NULL, "3/2 names the rule: %s", err);
    ev_shard_parse("0/0", &i, &n, err, sizeof err);
    CHECK(strstr(err, "N must be") != NULL, "0/0 names the rule: %s", err);

    CHECK(ev_shard_ordinal("echoviewd-3", &i, err, sizeof err) == 0 && i == 3, "echoviewd-3");
    CHECK(ev_shard_ordinal("a-b-12", &i, err, sizeof err) == 0 && i == 12, "a-b-12");
    static const char *no_ordinal[] = {"echoviewd", "echoviewd-", "echoviewd-3a", "host-x", ""};
    for (size_t k = 0; k < sizeof no_ordinal / sizeof *no_ordinal; k++)
        CHECK(ev_shard_ordinal(no_ordinal[k], &i, err, sizeof err) == -1 &&
                  strstr(err, "ordinal") != NULL,
              "'%s' has no ordinal: %s", no_ordinal[k], err);
}

int main(void)
{
    check_balance_and_moves();
    check_pinned();
    check_parse();
    return test_finish();
}
