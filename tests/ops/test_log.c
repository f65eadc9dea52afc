/* The log facade (include/m2mguard/log.h): escaping of attacker text, bounded
 * lines, levels, the journal's "<N>" prefixes (JOURNAL_STREAM naming stderr). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "m2mguard/log.h"

static char captured[4 * MG_LOG_LINE_MAX];

/* Runs fn with stderr sent to a temporary file; its content into captured. */
static void capture(void (*fn)(void))
{
    char path[] = "/tmp/mg-test-log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    fn();
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    memset(captured, 0, sizeof(captured));
    ssize_t n = pread(fd, captured, sizeof(captured) - 1, 0);
    assert_true(n >= 0);
    close(fd);
    unlink(path);
}

static void test_escape(void **state)
{
    (void)state;
    char out[128];
    const char in[] = "+4915\ngateway: forged\x1b[31m\\\x7f\xc3\xa9";
    size_t n = mg_log_escape(out, sizeof(out), in, sizeof(in) - 1);
    assert_string_equal(out, "+4915\\x0agateway: forged\\x1b[31m\\\\\\x7f\\xc3\\xa9");
    assert_int_equal(n, strlen(out));
    /* an escape that does not fit is not cut in half: "..." instead */
    char small[10];
    n = mg_log_escape(small, sizeof(small), "abcd\n\n\n", 7);
    assert_string_equal(small, "abcd...");
    assert_int_equal(n, 7);
}

static void format_helper(char *out, size_t cap, const char *comp, const char *fmt, ...)
    MG_LOG_PRINTF(4, 5);
static void format_helper(char *out, size_t cap, const char *comp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)mg_log_format(out, cap, comp, fmt, ap);
    va_end(ap);
}

static void test_format_bounded(void **state)
{
    (void)state;
    char line[MG_LOG_LINE_MAX];
    static char big[3 * MG_LOG_LINE_MAX];
    memset(big, 'x', sizeof(big) - 1);
    format_helper(line, sizeof(line), "gateway", "from %s", big);
    assert_true(strlen(line) <= MG_LOG_LINE_MAX - 1);
    assert_memory_equal(line, "gateway: from xxx", 17);
    assert_string_equal(line + strlen(line) - 3, "...");
    /* control characters everywhere, bounded too */
    memset(big, '\n', sizeof(big) - 1);
    format_helper(line, sizeof(line), "gateway", "%s", big);
    assert_true(strlen(line) <= MG_LOG_LINE_MAX - 1);
    assert_null(strchr(line, '\n'));
    assert_string_equal(line + strlen(line) - 3, "...");
}

static void emit_levels(void)
{
    mg_log(MG_LOG_DEBUG, "gateway", "debug %d", 1);
    mg_log(MG_LOG_INFO, "gateway", "info %d", 2);
    mg_log(MG_LOG_WARNING, "gateway", "warning %d", 3);
    mg_log(MG_LOG_ERROR, "gateway", "sender %s", "+49\n<3>gateway: fake");
}

static void test_levels_stderr(void **state)
{
    (void)state;
    unsetenv("JOURNAL_STREAM");
    mg_log_open("m2mguard", MG_LOG_TO_STDERR, MG_LOG_WARNING);
    capture(emit_levels);
    assert_string_equal(captured, "gateway: warning 3\n"
                                  "gateway: sender +49\\x0a<3>gateway: fake\n");
    mg_log_set_level(MG_LOG_DEBUG);
    assert_true(mg_log_enabled(MG_LOG_DEBUG));
    capture(emit_levels);
    assert_non_null(strstr(captured, "gateway: debug 1\ngateway: info 2\n"));
    mg_log_close();
}

static void test_journal(void **state)
{
    (void)state;
    mg_log_open("m2mguard", MG_LOG_TO_JOURNAL, MG_LOG_INFO);
    capture(emit_levels);
    assert_string_equal(captured, "<6>gateway: info 2\n<4>gateway: warning 3\n"
                                  "<3>gateway: sender +49\\x0a<3>gateway: fake\n");
    mg_log_close();
}

/* stderr started by systemd: JOURNAL_STREAM=dev:ino of stderr -> prefixes */
static void emit_with_stream(void)
{
    struct stat st;
    char v[64];
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", v, 1);
    mg_log_open("m2mguard", MG_LOG_TO_STDERR, MG_LOG_INFO);
    mg_log(MG_LOG_NOTICE, "est", "listening");
    /* another stream (stderr redirected by a child): no prefixes */
    setenv("JOURNAL_STREAM", "1:2", 1);
    mg_log_open("m2mguard", MG_LOG_TO_STDERR, MG_LOG_INFO);
    mg_log(MG_LOG_NOTICE, "est", "plain");
    unsetenv("JOURNAL_STREAM");
    mg_log_close();
}

static void test_journal_stream(void **state)
{
    (void)state;
    capture(emit_with_stream);
    assert_string_equal(captured, "<5>est: listening\nest: plain\n");
}

static void test_parse(void **state)
{
    (void)state;
    mg_log_level l = MG_LOG_INFO;
    mg_log_dest d = MG_LOG_TO_STDERR;
    assert_true(mg_log_level_parse("debug", &l));
    assert_int_equal(l, MG_LOG_DEBUG);
    assert_true(mg_log_level_parse("error", &l));
    assert_int_equal(l, 3);
    assert_false(mg_log_level_parse("verbose", &l));
    assert_false(mg_log_level_parse(NULL, &l));
    assert_string_equal(mg_log_level_name(MG_LOG_NOTICE), "notice");
    assert_true(mg_log_dest_parse("syslog", &d));
    assert_int_equal(d, MG_LOG_TO_SYSLOG);
    assert_true(mg_log_dest_parse("journal", &d));
    assert_int_equal(d, MG_LOG_TO_JOURNAL);
    assert_false(mg_log_dest_parse("file", &d));
    /* syslog: nothing on stderr */
    mg_log_open("m2mguard-test", MG_LOG_TO_SYSLOG, MG_LOG_ERROR);
    mg_log(MG_LOG_DEBUG, "test", "dropped");
    mg_log_close();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),         cmocka_unit_test(test_format_bounded),
        cmocka_unit_test(test_levels_stderr),  cmocka_unit_test(test_journal),
        cmocka_unit_test(test_journal_stream), cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
