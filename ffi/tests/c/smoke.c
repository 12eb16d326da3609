/* The C ABI from C: the generated header compiles (C11, -Wall -Wextra -Werror -pedantic;
 * and as C++), and a protocol round trip works through it, with the documented status
 * codes and memory rules. Built and run by bindings/csharp/run-tests.sh. */
#include <stdio.h>
#include <string.h>

#include "pawl.h"

static int failures = 0;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "smoke.c:%d: check failed: %s\n", __LINE__, #cond); \
            failures++;                                                      \
        }                                                                    \
    } while (0)

int main(void) {
    uint8_t key[32];
    memset(key, 7, sizeof key);

    PawlBuffer version = pawl_version();
    CHECK(version.len >= 5 && memchr(version.data, '.', version.len) != NULL);
    pawl_buffer_free(version);

    PawlProtocolHandle *alice = NULL, *bob = NULL;
    CHECK(pawl_protocol_open(":memory:", key, sizeof key, &alice) == 0);
    CHECK(pawl_protocol_open(":memory:", key, sizeof key, &bob) == 0);
    /* A short key: status 1 (invalid argument), a message, no handle written. */
    PawlProtocolHandle *none = NULL;
    CHECK(pawl_protocol_open(":memory:", key, 31, &none) == 1 && none == NULL);
    PawlBuffer message = pawl_last_error_message();
    CHECK(message.len > 0 && strstr((const char *)message.data, "32 bytes") != NULL);
    pawl_buffer_free(message);

    PawlPreKeyBundle bundle;
    CHECK(pawl_protocol_prekey_bundle(bob, 1, 1, 42, &bundle) == 0);
    CHECK(bundle.has_prekey == 1 && bundle.prekey_id == 42 && bundle.identity_key.len == 33);
    CHECK(pawl_protocol_process_prekey_bundle(alice, "bob", 1, &bundle) == 0);
    pawl_prekey_bundle_free(bundle);

    const char *text = "hello from C";
    uint8_t type = 0;
    PawlBuffer body;
    CHECK(pawl_protocol_encrypt(alice, "bob", 1, (const uint8_t *)text, strlen(text), &type, &body) == 0);
    CHECK(type == 3);
    PawlBuffer plain;
    CHECK(pawl_protocol_decrypt(bob, "alice", 1, type, body.data, body.len, &plain) == 0);
    CHECK(plain.len == strlen(text) && memcmp(plain.data, text, plain.len) == 0);
    pawl_buffer_free(plain);
    /* The same message again: status 14 (duplicate message). */
    CHECK(pawl_protocol_decrypt(bob, "alice", 1, type, body.data, body.len, &plain) == 14);
    pawl_buffer_free(body);
    /* Null out-pointers and handles are refused, not crashed on. */
    CHECK(pawl_protocol_registration_id(alice, NULL) == 1);
    CHECK(pawl_protocol_registration_id(NULL, NULL) == 1);
    uint32_t id = 0;
    CHECK(pawl_protocol_registration_id(NULL, &id) == 1);

    pawl_protocol_free(alice);
    pawl_protocol_free(bob);
    pawl_protocol_free(NULL);
    if (failures == 0) printf("smoke.c: all checks passed\n");
    return failures == 0 ? 0 : 1;
}
