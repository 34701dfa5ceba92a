/* test_yaml.c: the YAML reader's rules (base/ev_yaml.h), each with the exact message a user
 * sees: syntax, UTF-8, one document, the node, depth and size limits, aliases (in values, items,
 * keys, free-form sections, cycles), duplicate and unknown keys, typed scalars, the file
 * reader on devices and FIFOs; the quoted-scalar writer read back. */
#include "ev_yaml.h"
#include "test_util.h"

#include <locale.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK_MSG(got, want, label) \
    CHECK(strcmp((got), (want)) == 0, "%s: \"%s\" (want \"%s\")", (label), (got), (want))

/* Loads text as "t"; returns the load error message ("" when it loaded). */
static const char *load_error(const char *text, size_t len)
{
    static ev_yaml_error err;
    ev_yaml_doc *doc = NULL;

    memset(&err, 0, sizeof err);
    if (ev_yaml_load_text(text, len, "t", &doc, &err) == EV_YAML_OK) {
        ev_yaml_free(doc);
        return "";
    }
    return err.message;
}

static void check_load(void)
{
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        const char *want;
    } cases[] = {
        {"a: 1\n", 0, ""},
        {"destinations: [\n", 0, "t:2:1: did not find expected node content"},
        {"a: b\nc: d\xff\n", 0,
         "t:2:5: invalid leading UTF-8 octet (0xFF; the file must be UTF-8)"},
        {"a: caf\xc3", 0, "t:1:7: incomplete UTF-8 octet sequence (the file must be UTF-8)"},
        /* the column is the offending byte's: after the leading byte it belongs to */
        {"a: \xc3\x28\n", 0, "t:1:5: invalid trailing UTF-8 octet (0x28; the file must be UTF-8)"},
        {"a: x\x01y\n", 0,
         "t:1:5: control characters are not allowed (0x01; the file must be UTF-8)"},
        {"a: b\0c\n", 6,
         "t:1:5: control characters are not allowed (0x00; the file must be UTF-8)"},
        /* UTF-16 with its byte-order mark is not taken for UTF-8 */
        {"\xff\xfe"
         "a\0:\0 \0"
         "1\0",
         10, "t:1:1: invalid leading UTF-8 octet (0xFF; the file must be UTF-8)"},
        {"a: \"\\uD800\"\n", 0, "t:1:7: found invalid Unicode character escape code"},
        {"a: 1\n---\nb: 2\n", 0,
         "t:2:1: a second YAML document starts here; give one document per file"},
        {"a: 1\n---\n", 0, "t:2:1: a second YAML document starts here; give one document per file"},
        {"a: 1\n...\n", 0, ""},
        {"---\na: 1\n", 0, ""},
        {"", 0, "t:1:1: the file is empty"},
        {"# only a comment\n", 0, "t:1:1: the file is empty"},
        {"a: *x\n", 0, "t:1:4: found undefined alias"},
        {"a: &x 1\nb: &x 2\n", 0,
         "t:2:4: second occurrence (found duplicate anchor; first "
         "occurrence at 1:4)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char label[32];
        snprintf(label, sizeof label, "load case %zu", i);
        CHECK_MSG(load_error(cases[i].text, cases[i].len ? cases[i].len : strlen(cases[i].text)),
                  cases[i].want, label);
    }
}

static void check_limits(void)
{
    char deep[200], *big;
    size_t n;
    ev_yaml_error err = {0};
    ev_yaml_doc *doc = NULL;

    /* 32 levels load, 33 do not */
    n = 0;
    for (int i = 0; i < EV_YAML_MAX_DEPTH - 1; i++)
        deep[n++] = '[';
    deep[n++] = '1';
    for (int i = 0; i < EV_YAML_MAX_DEPTH - 1; i++)
        deep[n++] = ']';
    CHECK_MSG(load_error(deep, n), "", "32 levels of nesting");
    memmove(deep + 1, deep, n);
    deep[0] = '[';
    deep[++n] = ']';
    n++;
    CHECK_MSG(load_error(deep, n), "t:1:33: nested deeper than 32 levels", "33 levels");

    /* a sequence of 100000 items is 100001 nodes: the first one over is named */
    big = malloc(2 * EV_YAML_MAX_NODES + 8);
    n = 0;
    big[n++] = '[';
    for (int i = 0; i < EV_YAML_MAX_NODES; i++) {
        big[n++] = '0';
        big[n++] = ',';
    }
    big[n - 1] = ']';
    CHECK_MSG(load_error(big, n), "t:1:200000: more than 100000 YAML nodes", "node limit");
    big[n - 3] = ']'; /* one item fewer: exactly the limit */
    CHECK_MSG(load_error(big, n - 2), "", "exactly 100000 nodes");
    free(big);

    big = malloc(EV_YAML_MAX_BYTES + 1);
    memset(big, ' ', EV_YAML_MAX_BYTES + 1);
    big[0] = 'a', big[1] = ':';
    CHECK(ev_yaml_load_text(big, EV_YAML_MAX_BYTES + 1, "t", &doc, &err) == EV_YAML_ERR_TOO_LARGE &&
              !strcmp(err.message, "t: larger than 1048576 bytes"),
          "text over the byte limit: %s", err.message);
    CHECK(ev_yaml_load_text(big, EV_YAML_MAX_BYTES, "t", &doc, &err) == EV_YAML_OK,
          "text of exactly the byte limit loads");
    ev_yaml_free(doc);
    free(big);
}

/* A small schema: {name: str, port: 1..65535, ratio: 0..1, on: bool, list: [ints], notes: any} */
typedef struct {
    const char *name;
    long port;
    double ratio;
    bool on;
    long sum;
} Settings;

static bool handle(ev_yaml_doc *doc, const char *key, const ev_yaml_node *key_node,
                   const ev_yaml_node *value, void *data)
{
    Settings *s = data;

    if (!strcmp(key, "name"))
        return (s->name = ev_yaml_get_nonempty_string(doc, value, key)) != NULL;
    if (!strcmp(key, "port"))
        return ev_yaml_get_int(doc, value, key, 1, 65535, &s->port);
    if (!strcmp(key, "ratio"))
        return ev_yaml_get_double(doc, value, key, 0, 1, &s->ratio);
    if (!strcmp(key, "on"))
        return ev_yaml_get_bool(doc, value, key, &s->on);
    if (!strcmp(key, "list")) {
        if (ev_yaml_node_kind(value) != EV_YAML_SEQUENCE)
            return ev_yaml_fail(doc, value, "list must be a list");
        for (size_t i = 0; i < ev_yaml_length(value); i++) {
            const ev_yaml_node *item = ev_yaml_item(doc, value, i);
            long v;
            if (!item || !ev_yaml_get_int(doc, item, "list entry", -100, 100, &v))
                return false;
            s->sum += v;
        }
        return true;
    }
    if (!strcmp(key, "notes"))
        return ev_yaml_accept_any(doc, value);
    return ev_yaml_fail(doc, key_node, "not reached");
}

/* Switches LC_NUMERIC to a locale whose decimal separator is a comma: an installed one, or
 * de_DE compiled into a temporary folder when the locale sources are there. */
static bool comma_locale(void)
{
    static char dir[] = "/tmp/ev_test_locale_XXXXXX";
    char cmd[256];

    if (setlocale(LC_NUMERIC, "de_DE.UTF-8"))
        return true;
    if (access("/usr/share/i18n/locales/de_DE", R_OK) != 0 || !mkdtemp(dir))
        return false;
    snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 '%s/de_DE.UTF-8' >/dev/null 2>&1", dir);
    bool ok = system(cmd) == 0 && setenv("LOCPATH", dir, 1) == 0 &&
              setlocale(LC_NUMERIC, "de_DE.UTF-8") != NULL;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("  cleanup failed\n");
    return ok && strcmp(localeconv()->decimal_point, ",") == 0;
}

static const char *const keys[] = {"name", "port", "ratio", "on", "list", "notes", NULL};

/* Walks text with the schema; returns the walk's or the load's error ("" when valid). */
static const char *walk_error(const char *text, Settings *out)
{
    static char message[EV_YAML_ERROR_SIZE];
    ev_yaml_error err = {0};
    ev_yaml_doc *doc = NULL;
    Settings s = {0};

    if (ev_yaml_load_text(text, strlen(text), "t", &doc, &err) != EV_YAML_OK) {
        snprintf(message, sizeof message, "%s", err.message);
        return message;
    }
    if (ev_yaml_walk_mapping(doc, ev_yaml_root(doc), "the top level", keys, handle, &s))
        message[0] = '\0';
    else
        snprintf(message, sizeof message, "%s", ev_yaml_doc_error(doc)->message);
    if (out)
        *out = s;
    ev_yaml_free(doc);
    return message;
}

static void check_walk(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"name: x\nport: 70000\n", "t:2:7: 'port' must be between 1 and 65535, not 70000"},
        {"port: eighty\n", "t:1:7: 'port' must be an integer, not 'eighty'"},
        {"port: \"80\"\n", "t:1:7: 'port' must be an integer"},
        {"port: -5\n", "t:1:7: 'port' must be between 1 and 65535, not -5"},
        {"port: 99999999999999999999999\n",
         "t:1:7: 'port' must be between 1 and 65535, not 99999999999999999999999"},
        {"port: 0x50\n", "t:1:7: 'port' must be an integer, not '0x50'"},
        {"port: [80]\n", "t:1:7: 'port' must be an integer"},
        {"ratio: 1.5\n", "t:1:8: 'ratio' must be between 0 and 1, not 1.5"},
        {"ratio: .nan\n", "t:1:8: 'ratio' must be a decimal number, not '.nan'"},
        {"ratio: 0x0.8p0\n", "t:1:8: 'ratio' must be a decimal number, not '0x0.8p0'"},
        {"ratio: infinity\n", "t:1:8: 'ratio' must be a decimal number, not 'infinity'"},
        {"ratio: 1e-1.5\n", "t:1:8: 'ratio' must be a number, not '1e-1.5'"},
        {"ratio: 1e999\n", "t:1:8: 'ratio' must be a number, not '1e999'"},
        {"on: yes\n", "t:1:5: 'on' must be true or false, not 'yes'"},
        {"on: 'true'\n", "t:1:5: 'on' must be true or false"},
        {"name: \"\"\n", "t:1:7: 'name' must not be empty"},
        {"name: \"a\\0b\"\n", "t:1:7: 'name' contains a NUL byte"},
        {"name: \"a\\tb\"\n", "t:1:7: 'name' contains a control character"},
        {"name: {a: 1}\n", "t:1:7: 'name' must be a string"},
        {"name: x\nname: y\n", "t:2:1: duplicate key 'name' in the top level"},
        {"colour: red\n", "t:1:1: unknown key 'colour' in the top level (expected one of: name, "
                          "port, ratio, on, list, notes)"},
        {"[1]: x\n", "t:1:1: keys of the top level must be strings"},
        {"- 1\n", "t:1:1: the top level must be a mapping"},
        {"list: [1, x]\n", "t:1:11: 'list entry' must be an integer, not 'x'"},
        /* aliases: in a value, an item, a key, a free-form section, a cycle */
        {"name: &n x\nport: 1\nnotes: *n\n", "t:1:7: aliases are not supported"},
        {"list: [&v 1, *v]\n", "t:1:8: aliases are not supported"},
        {"&k name: x\n*k : y\n", "t:1:1: aliases are not supported"},
        {"notes: {a: &z [1], b: *z}\n", "t:1:12: aliases are not supported"},
        {"notes: &c [*c]\n", "t:1:8: aliases are not supported"},
        /* the key is checked before its (shared) value */
        {"colour: &x [1]\nnotes: *x\n", "t:1:1: unknown key 'colour' in the top level (expected "
                                        "one of: name, port, ratio, on, list, notes)"},
        /* the first failure is the one reported */
        {"port: 0\nratio: 9\n", "t:1:7: 'port' must be between 1 and 65535, not 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char label[32];
        snprintf(label, sizeof label, "walk case %zu", i);
        CHECK_MSG(walk_error(cases[i].text, NULL), cases[i].want, label);
    }

    Settings s;
    const char *msg = walk_error("name: probe\nport: 8088\nratio: 0.25\non: true\n"
                                 "list: [1, -2, 3]\nnotes: {free: [form, {text: yes}]}\n",
                                 &s);
    CHECK(!*msg && s.port == 8088 && s.ratio == 0.25 && s.on && s.sum == 2,
          "a valid document reads every typed value (%s)", msg);
    msg = walk_error("~\n", NULL);
    CHECK_MSG(msg, "t:1:1: the top level must be a mapping", "a null root");

    /* numbers are read in the C locale even when the process uses a comma */
    if (comma_locale()) {
        msg = walk_error("ratio: 0.25\n", &s);
        CHECK(!*msg && s.ratio == 0.25, "0.25 under LC_NUMERIC=%s (%s)",
              setlocale(LC_NUMERIC, NULL), msg);
        setlocale(LC_NUMERIC, "C");
    } else {
        printf("skip no comma-decimal locale installed: the C-locale read is not exercised\n");
    }

    /* a mapping of 20000 keys with one repeated near the end: found, and found fast (sorted,
     * not compared pairwise) */
    {
        size_t cap = 20000 * 16 + 64, n = 0;
        char *text = malloc(cap);
        ev_yaml_doc *doc = NULL;
        ev_yaml_error err = {0};
        n += (size_t)snprintf(text + n, cap - n, "{");
        for (int i = 0; i < 20000; i++)
            n += (size_t)snprintf(text + n, cap - n, "k%d: 1, ", i == 19999 ? 7 : i);
        n += (size_t)snprintf(text + n, cap - n, "}");
        if (ev_yaml_load_text(text, n, "t", &doc, &err) == EV_YAML_OK) {
            bool ok = ev_yaml_walk_mapping(doc, ev_yaml_root(doc), "big", NULL, NULL, NULL);
            CHECK(!ok && strstr(ev_yaml_doc_error(doc)->message, "duplicate key 'k7' in big"),
                  "a duplicate among 20000 keys: %s", ev_yaml_doc_error(doc)->message);
            ev_yaml_free(doc);
        } else {
            CHECK(0, "20000 keys load: %s", err.message);
        }
        free(text);
    }
}

static void check_files(void)
{
    char dir[] = "/tmp/ev_test_yaml_XXXXXX", path[128], *text = NULL;
    size_t len = 0;
    ev_yaml_error err = {0};
    ev_yaml_doc *doc = NULL;
    FILE *f;

    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    CHECK(ev_yaml_read_file("/dev/zero", 100, &text, &len, &err) == EV_YAML_ERR_IO &&
              !strcmp(err.message, "/dev/zero: not a regular file"),
          "a device is refused before it is read: %s", err.message);
    snprintf(path, sizeof path, "%s/fifo", dir);
    if (mkfifo(path, 0600) == 0) {
        CHECK(ev_yaml_load_file(path, &doc, &err) == EV_YAML_ERR_IO &&
                  strstr(err.message, "fifo: not a regular file"),
              "a FIFO is refused without waiting for a writer: %s", err.message);
    }
    CHECK(ev_yaml_load_file("/nonexistent/x.yaml", &doc, &err) == EV_YAML_ERR_IO &&
              !strcmp(err.message, "/nonexistent/x.yaml: cannot open: No such file or directory"),
          "a missing file: %s", err.message);
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    f = fopen(path, "w");
    for (int i = 0; i <= EV_YAML_MAX_BYTES / 8; i++)
        fputs("# 45678\n", f);
    fclose(f);
    CHECK(ev_yaml_load_file(path, &doc, &err) == EV_YAML_ERR_TOO_LARGE &&
              strstr(err.message, "big.yaml: larger than 1048576 bytes"),
          "a file over the byte limit: %s", err.message);
    snprintf(path, sizeof path, "%s/ok.yaml", dir);
    f = fopen(path, "w");
    fputs("port: 5\n", f);
    fclose(f);
    CHECK(ev_yaml_load_file(path, &doc, &err) == EV_YAML_OK && !strcmp(ev_yaml_source(doc), path) &&
              ev_yaml_node_line(ev_yaml_root(doc)) == 1,
          "a file loads and names itself in messages");
    ev_yaml_free(doc);
    CHECK(ev_yaml_read_file(path, 8, &text, &len, &err) == EV_YAML_OK && len == 8 &&
              !strcmp(text, "port: 5\n"),
          "exactly max bytes are read");
    free(text);
    CHECK(ev_yaml_read_file(path, 7, &text, &len, &err) == EV_YAML_ERR_TOO_LARGE,
          "one byte over max is refused");
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("  cleanup failed\n");
}

/* The writer's quoting: each string comes back from the reader as it went in; a control
 * character is written as \xHH (and, as the reader refuses those in strings, not read). */
static void check_write_quoted(void)
{
    static const char *const strings[] = {"plain", "", "a \"quoted\" back\\slash", "key: value # not",
                                          "- [x, {y}] & *z !t", "caf\xc3\xa9 \xe5\xbf\x83"};
    char *buf = NULL;
    size_t len = 0;

    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) {
        FILE *f = open_memstream(&buf, &len);
        fputs("k: ", f);
        ev_yaml_write_quoted(f, strings[i]);
        fclose(f);
        ev_yaml_doc *doc = NULL;
        ev_yaml_error err = {0};
        const char *got = NULL;
        if (ev_yaml_load_text(buf, len, "t", &doc, &err) == EV_YAML_OK &&
            ev_yaml_walk_mapping(doc, ev_yaml_root(doc), "t", NULL, NULL, NULL))
            got = ev_yaml_get_string(doc, ev_yaml_lookup(doc, ev_yaml_root(doc), "k"), "k");
        CHECK(got && !strcmp(got, strings[i]), "quoted '%s' as %s reads back (%s)", strings[i], buf,
              got ? got : err.message);
        ev_yaml_free(doc);
        free(buf);
        buf = NULL;
    }
    FILE *f = open_memstream(&buf, &len);
    ev_yaml_write_quoted(f, "a\tb\x7f\n");
    fclose(f);
    CHECK_MSG(buf, "\"a\\x09b\\x7f\\x0a\"", "control characters");
    free(buf);
}

int main(void)
{
    check_load();
    check_limits();
    check_walk();
    check_files();
    check_write_quoted();
    return test_finish();
}
