/* Test program for tests/aot.rs: links against a Flumen library exported with prefix
 * `mnist` (inference: one f32 input, one f32 output) through its generated header
 * `mnist.h`, runs it on a fixed input pattern and prints every output element's bits, then
 * checks that bad calls return error codes. Exit status 0 means every check passed. */
#include "mnist.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "check failed at line %d: ", __LINE__);                       \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n");                                                         \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

int main(void) {
    static const size_t in_shape[] = MNIST_INPUT_0_SHAPE;
    CHECK(MNIST_NUM_INPUTS == 1 && MNIST_NUM_OUTPUTS == 1, "expected one input and one output");
    CHECK(MNIST_INPUT_0_DTYPE == FLUMEN_DTYPE_F32, "input must be f32");
    CHECK(in_shape[MNIST_INPUT_0_RANK - 1] == 784, "input rows must have 784 pixels");

    float *x = malloc(MNIST_INPUT_0_BYTES);
    float *y = malloc(MNIST_OUTPUT_0_BYTES);
    CHECK(x && y, "out of memory");
    /* The pattern tests/aot.rs feeds the JIT: pixel i = ((i * 37) % 256) / 255. */
    for (size_t i = 0; i < MNIST_INPUT_0_NUMEL; i++) x[i] = (float)((i * 37) % 256) / 255.0f;

    mnist_state *s = NULL;
    int rc = mnist_state_new(&s);
    CHECK(rc == FLUMEN_OK && s != NULL, "state_new: %s", mnist_error_message(rc));

    const void *inputs[1] = {x};
    size_t in_bytes[1] = {MNIST_INPUT_0_BYTES};
    void *outputs[1] = {y};
    size_t out_bytes[1] = {MNIST_OUTPUT_0_BYTES};
    rc = mnist_run(s, inputs, in_bytes, outputs, out_bytes);
    CHECK(rc == FLUMEN_OK, "run: %s (%s)", mnist_error_message(rc), mnist_last_error(s));
    for (size_t i = 0; i < MNIST_OUTPUT_0_NUMEL; i++) {
        uint32_t bits;
        memcpy(&bits, &y[i], 4);
        printf("%08x\n", bits);
    }

    /* Bad calls return codes and leave the state usable. */
    CHECK(mnist_run(NULL, inputs, in_bytes, outputs, out_bytes) == FLUMEN_E_NULL, "null state");
    CHECK(mnist_run(s, NULL, in_bytes, outputs, out_bytes) == FLUMEN_E_NULL, "null inputs");
    size_t bad[1] = {MNIST_INPUT_0_BYTES - 4};
    CHECK(mnist_run(s, inputs, bad, outputs, out_bytes) == FLUMEN_E_SIZE, "short input");
    CHECK(strlen(mnist_last_error(s)) > 0, "the last error has details");
    CHECK(mnist_state_new(NULL) == FLUMEN_E_NULL, "null out");
    CHECK(mnist_read_variable(s, MNIST_NUM_VARIABLES, y, 4) == FLUMEN_E_INDEX, "bad index");
    rc = mnist_run(s, inputs, in_bytes, outputs, out_bytes);
    CHECK(rc == FLUMEN_OK, "run after errors: %s", mnist_error_message(rc));
    mnist_state_free(s);
    mnist_state_free(NULL);
    free(x);
    free(y);
    fprintf(stderr, "all C checks passed\n");
    return 0;
}
