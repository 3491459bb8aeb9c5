/*
 * Smoke test of the C ABI, built by tests/c_smoke.rs with
 *   cc -Wall -Wextra -Werror -std=c11 -pedantic -I include
 * and linked against the cdylib.
 *
 * usage: smoke <wav path> <config json for the second init>
 * Exits 0 and prints "smoke: ok" when every step returned what it should.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stellatune.h"

static void fail(const char *what, int32_t rc) {
    char message[1024];
    int32_t last = stellatune_last_error(message, sizeof message);
    fprintf(stderr, "smoke: FAIL %s: got %s (%d); last error (%s): %s\n", what,
            stellatune_error_name(rc), (int)rc, stellatune_error_name(last), message);
    exit(1);
}

static void expect(int32_t rc, int32_t want, const char *what) {
    if (rc != want) {
        fail(what, rc);
    }
}

#define CHECK(call) expect((call), STELLATUNE_OK, #call)
#define EXPECT(call, want) expect((call), (want), #call)

static void expect_last_error_contains(const char *needle) {
    char message[1024];
    CHECK(stellatune_last_error(message, sizeof message));
    if (strstr(message, needle) == NULL) {
        fprintf(stderr, "smoke: FAIL last error \"%s\" lacks \"%s\"\n", message, needle);
        exit(1);
    }
}

int main(int argc, char **argv) {
    char buf[4096];
    size_t len = 0;
    uint64_t client = 0;
    int saw_started = 0;
    int saw_position = 0;
    int polls = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s <wav> <config json>\n", argv[0]);
        return 2;
    }
    if (stellatune_abi_version() != STELLATUNE_ABI_VERSION) {
        fprintf(stderr, "smoke: FAIL abi version %u != %u\n", (unsigned)stellatune_abi_version(),
                (unsigned)STELLATUNE_ABI_VERSION);
        return 1;
    }

    /* Before init. */
    EXPECT(stellatune_player_create_client(&client), STELLATUNE_ERR_NOT_INITIALIZED);

    /* NULL config = defaults; init is idempotent. */
    CHECK(stellatune_runtime_init(NULL));
    CHECK(stellatune_runtime_init(NULL));
    CHECK(stellatune_player_create_client(&client));
    if (client == 0) {
        fprintf(stderr, "smoke: FAIL client id 0\n");
        return 1;
    }

    EXPECT(stellatune_player_play(client, NULL), STELLATUNE_ERR_INVALID_ARGUMENT);
    expect_last_error_contains("path");

    CHECK(stellatune_output_route_apply(client, "{\"kind\":\"null\"}"));
    CHECK(stellatune_player_play(client, argv[1]));

    /* Events until the track started and a position came, 20 s at most. */
    while (!(saw_started && saw_position) && polls < 40) {
        polls++;
        CHECK(stellatune_player_poll_event(client, 500, buf, sizeof buf, &len));
        if (len == 0) {
            continue;
        }
        if (len != strlen(buf)) {
            fprintf(stderr, "smoke: FAIL out_len %zu != strlen %zu\n", len, strlen(buf));
            return 1;
        }
        printf("event: %s\n", buf);
        if (strstr(buf, "\"type\":\"track_started\"") != NULL) {
            saw_started = 1;
        } else if (saw_started && strstr(buf, "\"type\":\"position\"") != NULL) {
            saw_position = 1;
        }
    }
    if (!saw_started || !saw_position) {
        fprintf(stderr, "smoke: FAIL events: track_started=%d position=%d\n", saw_started,
                saw_position);
        return 1;
    }

    CHECK(stellatune_player_status_json(client, buf, sizeof buf, &len));
    if (strstr(buf, "\"state\":\"playing\"") == NULL) {
        fprintf(stderr, "smoke: FAIL status %s\n", buf);
        return 1;
    }

    CHECK(stellatune_player_dispose_client(client));
    EXPECT(stellatune_player_dispose_client(client), STELLATUNE_ERR_CLIENT_DISPOSED);
    CHECK(stellatune_runtime_shutdown());
    EXPECT(stellatune_player_pause(client), STELLATUNE_ERR_NOT_INITIALIZED);
    CHECK(stellatune_runtime_shutdown());

    /* Re-init with a config, then metrics: first a too-small buffer to learn the size. */
    CHECK(stellatune_runtime_init(argv[2]));
    EXPECT(stellatune_runtime_metrics_json(buf, 1, &len), STELLATUNE_ERR_BUFFER_TOO_SMALL);
    if (len < 2 || len > sizeof buf) {
        fprintf(stderr, "smoke: FAIL needed size %zu\n", len);
        return 1;
    }
    {
        size_t needed = len;
        CHECK(stellatune_runtime_metrics_json(buf, needed, &len));
        if (len + 1 != needed || strlen(buf) != len) {
            fprintf(stderr, "smoke: FAIL metrics length %zu, needed %zu\n", len, needed);
            return 1;
        }
    }
    printf("metrics: %s\n", buf);
    if (strstr(buf, "\"runtime_host_inits_total\":2") == NULL) {
        fprintf(stderr, "smoke: FAIL metrics lack runtime_host_inits_total 2: %s\n", buf);
        return 1;
    }
    CHECK(stellatune_runtime_shutdown());

    CHECK(stellatune_runtime_metrics_json(buf, sizeof buf, &len));
    if (strstr(buf, "\"state\":\"stopped\"") == NULL ||
        strstr(buf, "\"runtime_threads\":0") == NULL) {
        fprintf(stderr, "smoke: FAIL after shutdown: %s\n", buf);
        return 1;
    }

    printf("smoke: ok\n");
    return 0;
}
