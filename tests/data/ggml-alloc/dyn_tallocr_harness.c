/* ggml-alloc.c's own dynamic allocator (ggml_dyn_tallocr) driven from stdin, for
   tests/test_allocator.py: "a SIZE" prints the chunk and offset it places SIZE bytes at,
   "f OFFSET SIZE" frees that range of chunk 0, "m" prints chunk 0's peak (max_size) and "r"
   starts over with an empty allocator. The alignment is the first argument. */
#include "ggml-alloc.c"
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char ** argv) {
    size_t alignment = argc > 1 ? (size_t) strtoull(argv[1], NULL, 10) : 32;
    struct ggml_dyn_tallocr * alloc = ggml_dyn_tallocr_new(alignment, SIZE_MAX);
    char op[2];
    size_t first, second;
    while (scanf("%1s", op) == 1) {
        if (op[0] == 'a' && scanf("%zu", &first) == 1) {
            struct buffer_address addr = ggml_dyn_tallocr_alloc(alloc, first, NULL);
            printf("%d %zu\n", addr.chunk, addr.offset);
        } else if (op[0] == 'f' && scanf("%zu %zu", &first, &second) == 2) {
            struct buffer_address addr = {0, first};
            ggml_dyn_tallocr_free_bytes(alloc, addr, second);
        } else if (op[0] == 'm') {
            printf("%zu\n", alloc->chunks[0] ? alloc->chunks[0]->max_size : 0);
        } else if (op[0] == 'r') {
            ggml_dyn_tallocr_free(alloc);
            alloc = ggml_dyn_tallocr_new(alignment, SIZE_MAX);
        }
    }
    ggml_dyn_tallocr_free(alloc);
    return 0;
}
