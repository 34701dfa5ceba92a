/* fuzz_manifest.c: libFuzzer target for the CSV manifest parser of search/dataset.c, fed from
 * memory (fmemopen), followed by the patient-level split that runs on what it lists. The parser
 * is static, so the file is compiled in here. */
#include "../../search/dataset.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* fmemopen wants a non-empty buffer; an empty manifest is one line-less read. */
    static const uint8_t nothing[1];
    FILE *f = fmemopen((void *)(size ? data : nothing), size ? size : 1, "r");
    if (!f)
        return 0;
    if (!size)
        fgetc(f);
    entry_list list = {0};
    ev_error err = {0};
    int rc =
        read_manifest_stream(f, "fuzz.csv", "/data", (char *const *)ev_echo_views, 14, NULL, &list,
                             &err);
    fclose(f);
    if (rc && !err.message[0])
        abort();
    if (!rc) {
        int32_t *ids = malloc((size_t)(list.count ? list.count : 1) * sizeof *ids);
        int num_patients = 0;
        if (ids && assign_patients(&list, 7, ids, &num_patients) == 0) {
            for (int i = 0; i < list.count; i++)
                if (ids[i] < 0 || ids[i] >= num_patients || list.items[i].label < 0 ||
                    list.items[i].label >= 14 || list.items[i].split < -1 ||
                    list.items[i].split >= SEARCH_SPLIT_COUNT)
                    abort();
        }
        free(ids);
    }
    list_free(&list);
    return 0;
}
