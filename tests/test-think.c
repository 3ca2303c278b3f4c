/* test-think.c — engine/generate.c's HrThinkTracker: where a reasoning model's reply is (before its first
 * characters are known, thinking, answering), fed its text in pieces as a detokenizer gives them, so that
 * hr_generate's think_free counts only the answer against max_new_tokens. */
#include <string.h>

#include "generate.h"
#include "hr-test.h"

/* The state after feeding text cut into pieces of `step` bytes (0: whole). */
static HrThinkState
feed(const char *text, size_t step, bool opened, int *answer_pieces)
{
    HrThinkTracker t;
    hr_think_tracker_init(&t, opened);
    HrThinkState st = t.state;
    const size_t n = strlen(text);
    *answer_pieces = 0;
    for (size_t i = 0; i < n || (n == 0 && i == 0); i += step ? step : (n ? n : 1)) {
        const size_t len = step ? MIN(step, n - i) : n;
        st = hr_think_tracker_feed(&t, text + i, len);
        *answer_pieces += st == HR_THINK_ANSWERING;
        if (n == 0)
            break;
    }
    return st;
}

int
main(void)
{
    static const struct {
        const char *text;
        bool opened;
        HrThinkState want;
    } cases[] = {
        { "<think>\nLet me see.\n</think>\n\nFour.", false, HR_THINK_ANSWERING },
        { "  \n<think>\nstill thinking", false, HR_THINK_THINKING },
        { "<thi", false, HR_THINK_UNDECIDED },
        { "", false, HR_THINK_UNDECIDED },
        { "Four.", false, HR_THINK_ANSWERING },
        { "<b>bold</b>", false, HR_THINK_ANSWERING },
        { "<thinking>", false, HR_THINK_ANSWERING },
        /* R1: the prompt opened the block */
        { "Okay, 2 + 2 = 4.\n</think>\n\nFour.", true, HR_THINK_ANSWERING },
        { "Okay, 2 + 2 = 4. </thin", true, HR_THINK_THINKING },
        { "a </ think> b </thinking>", true, HR_THINK_THINKING },
    };
    for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
        for (size_t step = 0; step <= 3; step++) {   /* whole, and in pieces of 1, 2, 3 bytes */
            int answer = 0;
            const HrThinkState st = feed(cases[c].text, step, cases[c].opened, &answer);
            HR_CHECK(st == cases[c].want, "'%s' (opened %d) in pieces of %zu: state %d, want %d", cases[c].text,
                     cases[c].opened, step, st, cases[c].want);
        }
    }
    /* the answer's pieces alone count (and the one that ends the block): "<think>ab</think>xyz" a byte a
     * piece is 4 */
    int answer = 0;
    feed("<think>ab</think>xyz", 1, false, &answer);
    HR_CHECK(answer == 4, "%d answer pieces, want 4", answer);
    return hr_test_result();
}
