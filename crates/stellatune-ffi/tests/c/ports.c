/*
 * Events pushed to Dart ports, driven through the C ABI with a fake `Dart_PostCObject` written
 * here: it records (port, string) of every post and can be told that a port is dead (its
 * isolate is gone), which makes it return false as Dart does. Built by tests/c_ports.rs with
 *   cc -Wall -Wextra -Werror -std=c11 -pedantic -I include
 * and linked against the cdylib.
 *
 * usage: ports <wav path> <config json, 60 s lease> <config json, short lease>
 * Exits 0 and prints "ports: ok" when every step did what it should.
 */
#if !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
/* kernel32, linked by default; declared here to keep <windows.h> out of a -pedantic build. */
void Sleep(unsigned long milliseconds);
static void sleep_ms(int ms) { Sleep((unsigned long)ms); }
#else
#include <time.h>
static void sleep_ms(int ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}
#endif

#include "stellatune.h"

/* The part of Dart's `Dart_CObject` (dart_native_api.h) a string post uses: the type, then
 * the value union (8-byte aligned; its largest member makes it 40 bytes). */
enum { FAKE_DART_COBJECT_KSTRING = 5 };
typedef struct {
    int32_t type;
    union {
        char *as_string;
        int64_t as_int64;
        struct {
            void *a;
            void *b;
            void *c;
            void *d;
            void *e;
        } largest;
    } value;
} FakeDartCObject;

#define MAX_RECORDS 8192
#define TEXT_CAP 200
#define MAX_DEAD 16

typedef struct {
    int64_t port;
    int32_t type;
    char text[TEXT_CAP];
} Record;

static Record records[MAX_RECORDS];
static atomic_int record_count = 0;
static atomic_flag record_lock = ATOMIC_FLAG_INIT;
static _Atomic int64_t dead_ports[MAX_DEAD];
static atomic_int dead_count = 0;
/* How long each post takes: a post in progress while the runtime shuts down. */
static atomic_int post_delay_ms = 0;
static atomic_int posts_in_progress = 0;

static void lock_records(void) {
    while (atomic_flag_test_and_set(&record_lock)) {
    }
}

static void unlock_records(void) { atomic_flag_clear(&record_lock); }

static bool is_dead(int64_t port) {
    int n = atomic_load(&dead_count);
    for (int i = 0; i < n; i++) {
        if (atomic_load(&dead_ports[i]) == port) {
            return true;
        }
    }
    return false;
}

static void kill_port(int64_t port) {
    int i = atomic_load(&dead_count);
    atomic_store(&dead_ports[i], port);
    atomic_store(&dead_count, i + 1);
}

/* The fake `Dart_PostCObject`: copies the message (as Dart does), false for a dead port. */
static bool fake_post(int64_t port, FakeDartCObject *message) {
    bool alive;
    atomic_fetch_add(&posts_in_progress, 1);
    if (atomic_load(&post_delay_ms) > 0) {
        sleep_ms(atomic_load(&post_delay_ms));
    }
    alive = !is_dead(port);
    if (alive) {
        lock_records();
        int n = atomic_load(&record_count);
        if (n < MAX_RECORDS) {
            records[n].port = port;
            records[n].type = message->type;
            records[n].text[0] = '\0';
            if (message->type == FAKE_DART_COBJECT_KSTRING && message->value.as_string != NULL) {
                strncat(records[n].text, message->value.as_string, TEXT_CAP - 1);
            }
            atomic_store(&record_count, n + 1);
        }
        unlock_records();
    }
    atomic_fetch_sub(&posts_in_progress, 1);
    return alive;
}

static void fail_rc(const char *what, int32_t rc) {
    char message[1024];
    int32_t last = stellatune_last_error(message, sizeof message);
    fprintf(stderr, "ports: FAIL %s: got %s (%d); last error (%s): %s\n", what,
            stellatune_error_name(rc), (int)rc, stellatune_error_name(last), message);
    exit(1);
}

static void expect(int32_t rc, int32_t want, const char *what) {
    if (rc != want) {
        fail_rc(what, rc);
    }
}

#define CHECK(call) expect((call), STELLATUNE_OK, #call)
#define EXPECT(call, want) expect((call), (want), #call)

static void fail(const char *what) {
    fprintf(stderr, "ports: FAIL %s\n", what);
    exit(1);
}

static void expect_last_error_contains(const char *needle) {
    char message[1024];
    CHECK(stellatune_last_error(message, sizeof message));
    if (strstr(message, needle) == NULL) {
        fprintf(stderr, "ports: FAIL last error \"%s\" lacks \"%s\"\n", message, needle);
        exit(1);
    }
}

/* How many posts to `port` so far contain `needle`. */
static int count_posts(int64_t port, const char *needle) {
    int found = 0;
    lock_records();
    int n = atomic_load(&record_count);
    for (int i = 0; i < n; i++) {
        if (records[i].port == port && strstr(records[i].text, needle) != NULL) {
            found++;
        }
    }
    unlock_records();
    return found;
}

/* Waits up to `limit_ms` for `count_posts(port, needle) >= want`. */
static bool wait_posts(int64_t port, const char *needle, int want, int limit_ms) {
    for (int waited = 0; waited <= limit_ms; waited += 10) {
        if (count_posts(port, needle) >= want) {
            return true;
        }
        sleep_ms(10);
    }
    return false;
}

/* A number from the metrics JSON, e.g. "player_clients_active". */
static unsigned long long metric(const char *key) {
    char buf[8192];
    char pattern[128];
    size_t len = 0;
    CHECK(stellatune_runtime_metrics_json(buf, sizeof buf, &len));
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(buf, pattern);
    if (at == NULL) {
        fprintf(stderr, "ports: FAIL metrics lack %s: %s\n", key, buf);
        exit(1);
    }
    return strtoull(at + strlen(pattern), NULL, 10);
}

/* Waits up to `limit_ms` for a metric to reach `want`; returns the milliseconds waited, or
 * -1 when it did not. */
static int wait_metric(const char *key, unsigned long long want, int limit_ms) {
    for (int waited = 0; waited <= limit_ms; waited += 10) {
        if (metric(key) == want) {
            return waited;
        }
        sleep_ms(10);
    }
    return -1;
}

/* Every post so far was a kString whose text is an event object, and went to a port that was
 * set on a client. */
static void check_every_post(const int64_t *ports, int port_count) {
    lock_records();
    int n = atomic_load(&record_count);
    for (int i = 0; i < n; i++) {
        bool known = false;
        for (int p = 0; p < port_count; p++) {
            known = known || records[i].port == ports[p];
        }
        if (records[i].type != FAKE_DART_COBJECT_KSTRING || strncmp(records[i].text, "{\"type\":\"", 9) != 0 || !known) {
            fprintf(stderr, "ports: FAIL post %d: port %lld type %d text %s\n", i,
                    (long long)records[i].port, (int)records[i].type, records[i].text);
            exit(1);
        }
    }
    unlock_records();
}

int main(int argc, char **argv) {
    char buf[4096];
    size_t len = 0;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    const int64_t PORT_A = 1001, PORT_B = 1002, PORT_C = 1003, PORT_E = 1004;
    const int64_t ports[] = {PORT_A, PORT_B, PORT_C, PORT_E};
    int waited;
    unsigned long long evicted_before;

    if (argc != 4) {
        fprintf(stderr, "usage: %s <wav> <config, 60 s lease> <config, short lease>\n", argv[0]);
        return 2;
    }

    /* Bad input, and a port before any post function was handed over. */
    EXPECT(stellatune_dart_set_post_cobject(NULL), STELLATUNE_ERR_INVALID_ARGUMENT);
    expect_last_error_contains("post_cobject");
    CHECK(stellatune_runtime_init(argv[2]));
    CHECK(stellatune_player_create_client(&a));
    EXPECT(stellatune_player_set_event_port(a, PORT_A), STELLATUNE_ERR_INVALID_ARGUMENT);
    expect_last_error_contains("stellatune_dart_set_post_cobject");
    CHECK(stellatune_runtime_shutdown());
    EXPECT(stellatune_player_set_event_port(a, 0), STELLATUNE_ERR_NOT_INITIALIZED);

    /* The post function comes before init, as a Dart bootstrap may hand it over. */
    CHECK(stellatune_dart_set_post_cobject((void *)(uintptr_t)&fake_post));
    CHECK(stellatune_runtime_init(argv[2]));
    CHECK(stellatune_player_create_client(&a));
    CHECK(stellatune_player_create_client(&b));
    EXPECT(stellatune_player_set_event_port(987654, PORT_A), STELLATUNE_ERR_UNKNOWN_CLIENT);
    CHECK(stellatune_player_set_event_port(a, PORT_A));
    CHECK(stellatune_player_set_event_port(b, PORT_B));
    EXPECT(stellatune_player_poll_event(a, 0, buf, sizeof buf, &len),
           STELLATUNE_ERR_INVALID_ARGUMENT);
    expect_last_error_contains("port");

    /* 1. Events arrive as kString JSON on each client's port. */
    CHECK(stellatune_output_route_apply(a, "{\"kind\":\"null\"}"));
    CHECK(stellatune_player_play(a, argv[1]));
    if (!wait_posts(PORT_A, "\"type\":\"track_started\"", 1, 20000) ||
        !wait_posts(PORT_A, "\"type\":\"position\"", 1, 20000) ||
        !wait_posts(PORT_B, "\"type\":\"position\"", 1, 20000)) {
        fail("no track_started and position on the ports");
    }
    check_every_post(ports, 2);
    printf("events on ports: %d on A, %d on B\n", count_posts(PORT_A, "{"),
           count_posts(PORT_B, "{"));

    /* 2. A closed port evicts its client at once, not after the 60 s lease. */
    /* The count is the process's: the shutdown above evicted one client. */
    evicted_before = metric("clients_evicted_total");
    if (metric("player_clients_active") != 2) {
        fail("two clients before the port closes");
    }
    kill_port(PORT_B);
    waited = wait_metric("clients_evicted_total", evicted_before + 1, 5000);
    if (waited < 0) {
        fail("a closed port's client was not evicted within 5 s (lease 60 s)");
    }
    printf("closed port: evicted after about %d ms\n", waited);
    if (metric("player_clients_active") != 1) {
        fail("one client left after the eviction");
    }
    EXPECT(stellatune_player_pause(b), STELLATUNE_ERR_CLIENT_EVICTED);
    expect_last_error_contains("event port closed");
    if (!wait_posts(PORT_A, "\"reason\":\"event port closed\"", 1, 5000)) {
        fail("the other client was not told of the eviction");
    }
    /* Back to polling: A polls again. */
    CHECK(stellatune_player_set_event_port(a, 0));
    CHECK(stellatune_player_poll_event(a, 2000, buf, sizeof buf, &len));
    if (len == 0 || strncmp(buf, "{\"type\":\"", 9) != 0) {
        fail("no event polled after switching back to polling");
    }
    CHECK(stellatune_player_dispose_client(a));
    CHECK(stellatune_runtime_shutdown());

    /* 3. Short lease: a live port whose client never calls in keeps it; a silent polling
     * client goes by its lease; an idle dead port is found by the heartbeat. */
    CHECK(stellatune_dart_set_post_cobject((void *)(uintptr_t)&fake_post));
    CHECK(stellatune_runtime_init(argv[3]));
    evicted_before = metric("clients_evicted_total");
    CHECK(stellatune_player_create_client(&c));
    CHECK(stellatune_player_create_client(&d));
    CHECK(stellatune_player_set_event_port(c, PORT_C));
    if (wait_metric("clients_evicted_total", evicted_before + 1, 10000) < 0) {
        fail("the silent polling client was not evicted by its lease");
    }
    /* Four times the lease with no call of c, nothing playing. */
    sleep_ms(2000);
    if (metric("player_clients_active") != 1 ||
        metric("clients_evicted_total") != evicted_before + 1) {
        fail("a client whose port takes posts was evicted");
    }
    if (count_posts(PORT_C, "{\"type\":\"heartbeat\"}") < 2) {
        fail("an idle port got no heartbeats");
    }
    EXPECT(stellatune_player_pause(d), STELLATUNE_ERR_CLIENT_EVICTED);
    expect_last_error_contains("lease expired");
    kill_port(PORT_C);
    waited = wait_metric("player_clients_active", 0, 5000);
    if (waited < 0) {
        fail("an idle closed port's client was not evicted");
    }
    printf("idle closed port: evicted after about %d ms\n", waited);
    EXPECT(stellatune_player_status_json(c, buf, sizeof buf, &len), STELLATUNE_ERR_CLIENT_EVICTED);
    expect_last_error_contains("event port closed");

    /* 4. Shutdown while a post is in progress: clean, every thread joined. */
    {
        uint64_t e = 0;
        CHECK(stellatune_player_create_client(&e));
        CHECK(stellatune_player_set_event_port(e, PORT_E));
        CHECK(stellatune_output_route_apply(e, "{\"kind\":\"null\"}"));
        CHECK(stellatune_player_play(e, argv[1]));
        if (!wait_posts(PORT_E, "\"type\":\"position\"", 1, 20000)) {
            fail("no position on the last port");
        }
        atomic_store(&post_delay_ms, 200);
        for (int i = 0; i < 500 && atomic_load(&posts_in_progress) == 0; i++) {
            sleep_ms(2);
        }
        if (atomic_load(&posts_in_progress) == 0) {
            fail("no post in progress to shut down during");
        }
        CHECK(stellatune_runtime_shutdown());
        if (atomic_load(&posts_in_progress) != 0) {
            fail("shutdown returned while a post was in progress");
        }
        atomic_store(&post_delay_ms, 0);
    }
    CHECK(stellatune_runtime_metrics_json(buf, sizeof buf, &len));
    if (strstr(buf, "\"state\":\"stopped\"") == NULL ||
        strstr(buf, "\"runtime_threads\":0") == NULL) {
        fprintf(stderr, "ports: FAIL after shutdown: %s\n", buf);
        return 1;
    }
    check_every_post(ports, 4);

    /* 5. Init again: the same post function again (a hot restart's bootstrap), a new port. */
    {
        uint64_t f = 0;
        int before = count_posts(PORT_A, "heartbeat");
        CHECK(stellatune_dart_set_post_cobject((void *)(uintptr_t)&fake_post));
        CHECK(stellatune_runtime_init(argv[3]));
        CHECK(stellatune_player_create_client(&f));
        CHECK(stellatune_player_set_event_port(f, PORT_A));
        if (!wait_posts(PORT_A, "{\"type\":\"heartbeat\"}", before + 1, 5000)) {
            fail("no heartbeat after init again");
        }
        CHECK(stellatune_runtime_shutdown());
    }

    printf("ports: ok\n");
    return 0;
}
