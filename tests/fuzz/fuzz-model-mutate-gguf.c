/* fuzz-model-mutate-gguf.c — fuzz-gguf-mutate.c's mutations under other
 * names, for fuzz-model-mutate.c (which defines the target's fuzz_mutate). */
#define fuzz_mutate fuzz_gguf_mutate
#define fuzz_restructure fuzz_gguf_restructure
#include "fuzz-gguf-mutate.c"
