/* fuzz-model-mutate-st.c — fuzz-mutate.c's safetensors mutations under other
 * names, for fuzz-model-mutate.c (which defines the target's fuzz_mutate). */
#define fuzz_mutate fuzz_st_mutate
#define fuzz_restructure fuzz_st_restructure
#include "fuzz-mutate.c"
