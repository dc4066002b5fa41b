/* Call a Flumen MNIST model exported with `flumen compile` from C.
 *
 *   cargo run --release --example mnist                      # trains, writes out/mnist.*
 *   cargo run --release --bin flumen -- compile out/mnist.flumen \
 *       --feed x_test:f32[1,784] --fetch eval/add_1 -o libmnist.so --header mnist.h
 *   cc -O2 -I. examples/c/mnist_infer.c -L. -lmnist -Wl,-rpath,. -o mnist_infer
 *   ./mnist_infer [IMAGES.f32]
 *
 * IMAGES.f32 holds the batch's pixels as raw native-endian floats in [0, 1]
 * (MNIST_INPUT_0_BYTES bytes); without it a fixed test pattern is used. Prints each image's
 * logits and predicted digit. Everything about the model (sizes, shapes, names) comes from
 * the generated header; the library needs only libc and libm at run time.
 */
#include "mnist.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    static const size_t in_shape[] = MNIST_INPUT_0_SHAPE;
    static const size_t out_shape[] = MNIST_OUTPUT_0_SHAPE;
    const size_t batch = in_shape[0], classes = out_shape[MNIST_OUTPUT_0_RANK - 1];
    float *x = malloc(MNIST_INPUT_0_BYTES), *logits = malloc(MNIST_OUTPUT_0_BYTES);
    if (!x || !logits) return 1;

    if (argc > 1) {
        FILE *f = fopen(argv[1], "rb");
        if (!f || fread(x, 1, MNIST_INPUT_0_BYTES, f) != MNIST_INPUT_0_BYTES) {
            fprintf(stderr, "%s: expected %d bytes of f32 pixels\n", argv[1], MNIST_INPUT_0_BYTES);
            return 1;
        }
        fclose(f);
    } else {
        for (size_t i = 0; i < MNIST_INPUT_0_NUMEL; i++) x[i] = (float)((i * 37) % 256) / 255.0f;
    }

    mnist_state *s;
    int rc = mnist_state_new(&s);
    if (rc != FLUMEN_OK) {
        fprintf(stderr, "mnist_state_new: %s\n", mnist_error_message(rc));
        return 1;
    }
    const void *inputs[] = {x};
    const size_t input_bytes[] = {MNIST_INPUT_0_BYTES};
    void *outputs[] = {logits};
    const size_t output_bytes[] = {MNIST_OUTPUT_0_BYTES};
    rc = mnist_run(s, inputs, input_bytes, outputs, output_bytes);
    if (rc != FLUMEN_OK) {
        fprintf(stderr, "mnist_run: %s: %s\n", mnist_error_message(rc), mnist_last_error(s));
        mnist_state_free(s);
        return 1;
    }
    for (size_t b = 0; b < batch; b++) {
        size_t best = 0;
        printf("image %zu logits:", b);
        for (size_t c = 0; c < classes; c++) {
            float v = logits[b * classes + c];
            printf(" %.4f", v);
            if (v > logits[b * classes + best]) best = c;
        }
        printf("  -> predicted digit %zu\n", best);
    }
    mnist_state_free(s);
    free(x);
    free(logits);
    return 0;
}
