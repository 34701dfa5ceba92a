/* fuzz_genotype.c: libFuzzer target for the genotype parser (one-line form and YAML). */
#include "ev_genotype.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    ev_genotype g;
    ev_error err;
    if (ev_genotype_parse(text, &g, &err) == EV_OK) {
        char *a = ev_genotype_to_string(&g), *b = ev_genotype_to_yaml(&g, "fuzz");
        ev_genotype g2;
        /* whatever parses must round-trip through both writers */
        if (!a || !b || ev_genotype_parse(a, &g2, &err) || !ev_genotype_equal(&g, &g2) ||
            ev_genotype_parse(b, &g2, &err) || !ev_genotype_equal(&g, &g2))
            abort();
        free(a);
        free(b);
    }
    free(text);
    return 0;
}
