/* The app's engine worker (app/hearth-engine.c) without a window, on
 * stories260K:
 *  - a conversation far longer than the context is trimmed (oldest messages
 *    dropped) and answered, with a few renders instead of one per dropped
 *    message (it used to take 36 s before the first token at 1,600 messages);
 *  - a folder that fails its checks (no weights, a chat template that fails)
 *    leaves the previous model loaded and answering;
 *  - loading reports its progress as tensors done of the checkpoint's.
 * Built with HR_WORKER_VK_FAULT (engine-worker-device-lost, tests/vk-fault.c in front of the Vulkan
 * loader), on the Vulkan backend instead: the device lost during a reply, the reply fails and says so, and
 * the model is loaded again by itself, on a new device, or on the CPU when the device stays lost; and
 * "auto" with the device lost while loading: the CPU, with a note. */
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hearth-engine.h"
#include "hr-test.h"
#ifdef HR_WORKER_VK_FAULT
#include "vk-fault.h"
#endif

typedef struct {
    gboolean loaded, load_ok, finished;
    int progress_calls, last_done, last_total, backwards; /* load-progress: tensors */
    char *load_error;
    char *reply_error;
    char *stop_reason;
    int dropped;
    int prompt_tokens, generated_tokens;
    GString *text;
} Seen;

static void
on_load_finished(HearthEngine *e, gboolean ok, const char *msg, Seen *seen)
{
    seen->loaded = TRUE;
    seen->load_ok = ok;
    g_free(seen->load_error);
    seen->load_error = g_strdup(msg);
}

static void
on_progress(HearthEngine *e, double fraction, int done, int total, Seen *seen)
{
    seen->backwards += done < seen->last_done || done > total || fraction < 0 || fraction > 1;
    seen->progress_calls++;
    seen->last_done = done;
    seen->last_total = total;
}

static void
on_delta(HearthEngine *e, guint id, const char *text, Seen *seen)
{
    g_string_append(seen->text, text);
}

static void
on_trimmed(HearthEngine *e, guint id, int dropped, Seen *seen)
{
    seen->dropped = dropped;
}

static void
on_finished(HearthEngine *e, guint id, const HearthReplyStats *st, Seen *seen)
{
    seen->finished = TRUE;
    g_free(seen->reply_error);
    g_free(seen->stop_reason);
    seen->reply_error = g_strdup(st->error);
    seen->stop_reason = g_strdup(st->stop_reason);
    seen->prompt_tokens = st->prompt_tokens;
    seen->generated_tokens = st->generated_tokens;
}

static void
seen_clear(Seen *seen)
{
    g_string_free(seen->text, TRUE);
    g_free(seen->load_error);
    g_free(seen->reply_error);
    g_free(seen->stop_reason);
}

static void
wait_for(gboolean *flag)
{
    while (!*flag)
        g_main_context_iteration(NULL, TRUE);
}

static gboolean
load(HearthEngine *e, Seen *seen, const char *dir)
{
    seen->loaded = FALSE;
    hearth_engine_load(e, dir);
    wait_for(&seen->loaded);
    return seen->load_ok;
}

/* An engine whose signals all land in seen. */
static HearthEngine *
engine_new(Seen *seen)
{
    HearthEngine *e = hearth_engine_new();
    g_signal_connect(e, "load-finished", G_CALLBACK(on_load_finished), seen);
    g_signal_connect(e, "reply-delta", G_CALLBACK(on_delta), seen);
    g_signal_connect(e, "load-progress", G_CALLBACK(on_progress), seen);
    g_signal_connect(e, "context-trimmed", G_CALLBACK(on_trimmed), seen);
    g_signal_connect(e, "reply-finished", G_CALLBACK(on_finished), seen);
    return e;
}

static JsonNode *
conversation(int n_messages)
{
    JsonArray *arr = json_array_new();
    JsonObject *sys = json_object_new();
    json_object_set_string_member(sys, "role", "system");
    json_object_set_string_member(sys, "content", "You tell stories.");
    json_array_add_object_element(arr, sys);
    for (int i = 0; i < n_messages; i++) {
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "role", i % 2 ? "assistant" : "user");
        g_autofree char *text = g_strdup_printf("Message %d: once upon a time there was a little cat.", i);
        json_object_set_string_member(o, "content", text);
        json_array_add_object_element(arr, o);
    }
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(node, arr);
    return node;
}

static void
reply_with(HearthEngine *e, Seen *seen, int n_messages, gboolean no_thinking)
{
    HearthGenParams p;
    hearth_gen_params_init(&p);
    p.no_thinking = no_thinking;
    p.temperature = 0.0;
    p.max_new_tokens = 8;
    JsonNode *msgs = conversation(n_messages);
    seen->finished = FALSE;
    seen->dropped = 0;
    g_string_truncate(seen->text, 0);
    hearth_engine_generate(e, msgs, &p);
    json_node_unref(msgs);
    wait_for(&seen->finished);
}

static void
reply(HearthEngine *e, Seen *seen, int n_messages)
{
    reply_with(e, seen, n_messages, FALSE);
}

/* dir/name -> src/name for each of names. */
static void
link_files(const char *dir, const char *src, const char *const *names)
{
    for (const char *const *n = names; *n; n++) {
        g_autofree char *from = g_build_filename(src, *n, NULL), *to = g_build_filename(dir, *n, NULL);
        HR_CHECK(symlink(from, to) == 0, "symlink %s", to);
    }
}

#ifdef HR_WORKER_VK_FAULT
static gboolean
set_true(gpointer flag)
{
    *(gboolean *)flag = TRUE;
    return G_SOURCE_REMOVE;
}

/* A reply during which the device is lost at the k-th call of site (until a new device is made when
 * until_reset): it fails and says so, then the model loads again by itself (progress, load-finished) with
 * note; the next reply equals want. */
static void
lose_device(HearthEngine *e, Seen *seen, const HrVkFaultSite *site, int k, gboolean until_reset,
            HearthLoadNote note, const char *want)
{
    g_autofree char *what = g_strdup_printf("the device lost at %s call %d%s", site->name, k,
                                            until_reset ? ", then a new device" : " for good");
    if (until_reset)
        hr_vk_fault_arm_lost_until_reset(site->site, k);
    else
        hr_vk_fault_arm_lost(site->site, k);
    seen->loaded = FALSE;
    seen->progress_calls = 0;
    reply(e, seen, 3);
    printf("%s: '%s', %s\n", what, seen->text->str, seen->reply_error);
    HR_CHECK(g_strcmp0(seen->stop_reason, "error") == 0 && seen->reply_error &&
             strstr(seen->reply_error, "graphics card stopped working") && strstr(seen->reply_error, "DEVICE_LOST"),
             "%s: stop %s, error %s", what, seen->stop_reason, seen->reply_error);
    /* never READY (sending allowed) before the model is back */
    HR_CHECK(seen->loaded || hearth_engine_get_state(e) == HEARTH_ENGINE_LOADING, "%s: state %d after the reply",
             what, hearth_engine_get_state(e));
    gboolean expired = FALSE;   /* a load that never comes fails here, not at the test's timeout */
    const guint timer = g_timeout_add_seconds(100, set_true, &expired);
    while (!seen->loaded && !expired)
        g_main_context_iteration(NULL, TRUE);
    if (!expired)
        g_source_remove(timer);
    HR_CHECK(seen->loaded, "%s: no load-finished in 100 s", what);
    const char *failed = hr_vk_fault_disarm();
    HR_CHECK(failed && strcmp(failed, site->name) == 0, "%s: the call failed: %s", what, failed);
    printf("%s: loaded again: %s, note %d, %d progress calls\n", what, seen->load_ok ? "yes" : seen->load_error,
           (int)hearth_engine_get_load_note(e), seen->progress_calls);
    HR_CHECK(seen->load_ok && hearth_engine_get_load_note(e) == note && seen->progress_calls > 0 &&
             hearth_engine_get_state(e) == HEARTH_ENGINE_READY,
             "%s: load %s, note %d (want %d), %d progress calls, state %d", what,
             seen->load_ok ? "ok" : seen->load_error, (int)hearth_engine_get_load_note(e), (int)note,
             seen->progress_calls, hearth_engine_get_state(e));
    reply(e, seen, 3);
    HR_CHECK(seen->reply_error == NULL && strcmp(seen->text->str, want) == 0, "%s, the next reply: '%s' (%s), want '%s'",
             what, seen->text->str, seen->reply_error, want);
}

int
main(void)
{
    g_autofree char *stories = hr_test_asset("models/stories260K/hf_f32");
    Seen seen = { .text = g_string_new(NULL) };
    HearthEngine *e = engine_new(&seen);
    g_setenv("HEARTH_VULKAN_ALLOW_CPU", "1", TRUE);   /* lavapipe */
    hearth_engine_set_load_options(e, "vulkan", 0, 0);
    if (!load(e, &seen, stories)) {
        printf("SKIP: stories260K on Vulkan: %s\n", seen.load_error);
        return 77;
    }
    HR_CHECK(hearth_engine_get_load_note(e) == HEARTH_LOAD_NOTE_NONE, "note %d", (int)hearth_engine_get_load_note(e));
    /* the reply, and the Vulkan calls it makes */
    hr_vk_fault_count(1);
    reply(e, &seen, 3);
    int n_sites = 0;
    g_autofree HrVkFaultSite *sites = hr_vk_fault_sites(&n_sites);
    g_autofree char *want = g_strdup(seen.text->str);
    HR_CHECK(seen.reply_error == NULL && *want, "the reply: %s", seen.reply_error);
    const HrVkFaultSite *submit = NULL;
    for (int i = 0; i < n_sites && !submit; i++)
        if (strcmp(sites[i].name, "vkQueueSubmit") == 0)
            submit = &sites[i];
    HR_CHECK(submit != NULL, "no vkQueueSubmit in a reply (%d sites)", n_sites);
    if (submit) {
        printf("reply '%s': %d submits\n", want, submit->calls);
        /* halfway through the reply, then a new device: loaded again on Vulkan */
        lose_device(e, &seen, submit, MAX(submit->calls / 2, 1), TRUE, HEARTH_LOAD_NOTE_RELOADED, want);
        /* at its first submit and for good: loading again on Vulkan fails, so the CPU */
        lose_device(e, &seen, submit, 1, FALSE, HEARTH_LOAD_NOTE_CPU_AFTER_DEVICE_ERROR, want);
        char what[256];
        const int live = hr_vk_fault_live(what, sizeof what);
        HR_CHECK(live == 0, "on the CPU now, Vulkan objects alive: %s", what);

        /* the folder gone meanwhile: loading again fails on the device and on the CPU, and says why */
        g_autofree char *tmp = g_dir_make_tmp("hearth-worker-XXXXXX", NULL);
        const char *files[] = { "config.json", "tokenizer.json", "model.safetensors", NULL };
        link_files(tmp, stories, files);
        HR_CHECK(load(e, &seen, tmp), "load %s: %s", tmp, seen.load_error);
        for (const char *const *n = files; *n; n++) {
            g_autofree char *f = g_build_filename(tmp, *n, NULL);
            g_unlink(f);
        }
        hr_vk_fault_arm_lost(submit->site, 1);
        seen.loaded = FALSE;
        reply(e, &seen, 3);
        wait_for(&seen.loaded);
        hr_vk_fault_disarm();
        printf("the folder gone, then the device lost: %s; loaded again: %s\n", seen.reply_error,
               seen.load_ok ? "yes" : seen.load_error);
        HR_CHECK(seen.reply_error && !seen.load_ok && seen.load_error && strstr(seen.load_error, tmp) &&
                 hearth_engine_get_state(e) == HEARTH_ENGINE_EMPTY,
                 "the folder gone: reply error %s, load %s, state %d", seen.reply_error,
                 seen.load_ok ? "ok" : seen.load_error, hearth_engine_get_state(e));
        HR_CHECK(hr_vk_fault_live(what, sizeof what) == 0, "the folder gone: Vulkan objects alive: %s", what);
        g_rmdir(tmp);
    }

    /* "auto" (lavapipe, allowed) and the device lost while loading, at the upload's first submit: the
     * model loads on the CPU and says why */
    hearth_engine_set_load_options(e, "auto", 0, 0);
    hr_vk_fault_count(1);
    HR_CHECK(load(e, &seen, stories) && hearth_engine_get_load_note(e) == HEARTH_LOAD_NOTE_NONE,
             "auto: %s, note %d", seen.load_error, (int)hearth_engine_get_load_note(e));
    int n_load = 0;
    g_autofree HrVkFaultSite *load_sites = hr_vk_fault_sites(&n_load);
    const HrVkFaultSite *upload = NULL;
    for (int i = 0; i < n_load && !upload; i++)
        if (strcmp(load_sites[i].name, "vkQueueSubmit") == 0)
            upload = &load_sites[i];
    HR_CHECK(upload != NULL, "auto: no vkQueueSubmit while loading (%d sites): not on Vulkan?", n_load);
    if (upload) {
        hr_vk_fault_arm_lost(upload->site, 1);
        const gboolean ok = load(e, &seen, stories);
        const char *failed = hr_vk_fault_disarm();
        printf("auto, the device lost while loading: %s, note %d\n", ok ? "loaded" : seen.load_error,
               (int)hearth_engine_get_load_note(e));
        HR_CHECK(failed && ok && hearth_engine_get_load_note(e) == HEARTH_LOAD_NOTE_CPU_FOR_DEVICE_ERROR,
                 "auto, the device lost while loading: %s (the call %s), note %d", ok ? "loaded" : seen.load_error,
                 failed ? failed : "not reached", (int)hearth_engine_get_load_note(e));
        char what[256];
        HR_CHECK(hr_vk_fault_live(what, sizeof what) == 0, "auto on the CPU: Vulkan objects alive: %s", what);
        reply(e, &seen, 3);
        HR_CHECK(seen.reply_error == NULL && strcmp(seen.text->str, want) == 0, "auto on the CPU: '%s' (%s)",
                 seen.text->str, seen.reply_error);
    }
    g_object_unref(e);
    seen_clear(&seen);
    return hr_test_result();
}
#else

int
main(void)
{
    g_autofree char *stories = hr_test_asset("models/stories260K/hf_f32");
    Seen seen = { .text = g_string_new(NULL) };
    HearthEngine *e = engine_new(&seen);
    hearth_engine_set_load_options(e, "cpu", 0, 0);

    HR_CHECK(load(e, &seen, stories), "load: %s", seen.load_error);
    /* Progress in tensors: stories260K's 47, counted up to all of them. */
    HR_CHECK(seen.progress_calls >= 5 && seen.last_total == 47 && seen.last_done == 47 && seen.backwards == 0,
             "load-progress: %d calls, last %d of %d, %d out of order", seen.progress_calls, seen.last_done,
             seen.last_total, seen.backwards);
    HR_CHECK(hearth_engine_get_context_length(e) == 512, "context %d", hearth_engine_get_context_length(e));

    /* 1,600 messages of ~15 tokens into a 512-token context. */
    gint64 t0 = g_get_monotonic_time();
    reply(e, &seen, 1600);
    printf("1600 messages: %d dropped, reply '%s' (%s) after %.2f s\n", seen.dropped, seen.text->str,
           seen.stop_reason, (double)(g_get_monotonic_time() - t0) / 1e6);
    HR_CHECK(seen.reply_error == NULL, "reply error: %s", seen.reply_error);
    HR_CHECK(seen.dropped > 1500 && seen.dropped < 1600, "dropped %d of 1600", seen.dropped);
    int ctx_used = hearth_engine_get_context_used(e);
    HR_CHECK(ctx_used > 256 && ctx_used <= 512, "context used %d", ctx_used);
    /* A short conversation is not trimmed. */
    reply(e, &seen, 3);
    HR_CHECK(seen.reply_error == NULL && seen.dropped == 0, "short: %s, dropped %d", seen.reply_error, seen.dropped);

    g_autofree char *tmp = g_dir_make_tmp("hearth-worker-XXXXXX", NULL);
    /* A folder without weights. */
    g_autofree char *noweights = g_build_filename(tmp, "no-weights", NULL);
    g_mkdir(noweights, 0700);
    const char *meta[] = { "config.json", "tokenizer.json", NULL };
    link_files(noweights, stories, meta);
    HR_CHECK(!load(e, &seen, noweights), "a folder without weights loaded");
    HR_CHECK(seen.load_error && strstr(seen.load_error, "no-weights"), "error: %s", seen.load_error);
    HR_CHECK(hearth_engine_get_state(e) == HEARTH_ENGINE_READY && g_strcmp0(hearth_engine_get_model_dir(e), stories) == 0,
             "the previous model is gone: state %d, dir %s", hearth_engine_get_state(e), hearth_engine_get_model_dir(e));
    reply(e, &seen, 3);
    HR_CHECK(seen.reply_error == NULL && seen.text->len > 0, "after a failed load: %s", seen.reply_error);

    /* A chat template that fails. */
    g_autofree char *badtpl = g_build_filename(tmp, "bad-template", NULL);
    g_mkdir(badtpl, 0700);
    const char *weights[] = { "config.json", "tokenizer.json", "model.safetensors", NULL };
    link_files(badtpl, stories, weights);
    g_autofree char *tc = g_build_filename(badtpl, "tokenizer_config.json", NULL);
    g_file_set_contents(tc, "{\"chat_template\": \"{{ raise_exception('this template is broken') }}\"}", -1, NULL);
    HR_CHECK(!load(e, &seen, badtpl), "a model whose template fails loaded");
    HR_CHECK(seen.load_error && strstr(seen.load_error, "this template is broken"), "error: %s", seen.load_error);
    HR_CHECK(hearth_engine_get_state(e) == HEARTH_ENGINE_READY && g_strcmp0(hearth_engine_get_model_name(e), "hf_f32") == 0,
             "the previous model is gone: %s", hearth_engine_get_model_name(e));
    reply(e, &seen, 3);
    HR_CHECK(seen.reply_error == NULL && seen.text->len > 0, "after a failed load: %s", seen.reply_error);

    /* "Think Before Answering" off reaches the template as enable_thinking = false (Qwen3's variable): this
     * one adds a line for it, so the prompt is longer by that line's tokens. */
    g_file_set_contents(tc, "{\"chat_template\": \"{% for m in messages %}{{ m.content }}\\n{% endfor %}"
                            "{% if enable_thinking is defined and enable_thinking is false %}"
                            "Once upon a time there was no thinking.\\n{% endif %}\"}", -1, NULL);
    HR_CHECK(load(e, &seen, badtpl), "a template with enable_thinking: %s", seen.load_error);
    reply_with(e, &seen, 3, FALSE);
    const int thinking = seen.prompt_tokens;
    reply_with(e, &seen, 3, TRUE);
    printf("enable_thinking: prompt of %d tokens, %d without thinking\n", thinking, seen.prompt_tokens);
    HR_CHECK(seen.reply_error == NULL && thinking > 0 && seen.prompt_tokens >= thinking + 5,
             "no_thinking did not reach the template: %d tokens, then %d (%s)", thinking, seen.prompt_tokens,
             seen.reply_error);
    /* A prompt that opens a thinking block (DeepSeek-R1's template ends in "<think>\n"): the reply is thinking
     * until "</think>", which stories260K never writes, so the 8 tokens of max_new_tokens are not used up by
     * it; only the end of the story or the context stops it. The reply starts with the "<think>" the prompt
     * held, so the window folds it as it comes. */
    g_file_set_contents(tc, "{\"chat_template\": \"{% for m in messages %}{{ m.content }}\\n{% endfor %}"
                            "<think>\\n\"}", -1, NULL);
    HR_CHECK(load(e, &seen, badtpl), "a template that opens a thinking block: %s", seen.load_error);
    reply_with(e, &seen, 3, FALSE);
    printf("thinking from the prompt: %d tokens (max_new_tokens 8), stop %s\n", seen.generated_tokens,
           seen.stop_reason);
    HR_CHECK(seen.reply_error == NULL && seen.generated_tokens > 8 && g_strcmp0(seen.stop_reason, "length") != 0,
             "the thinking counted against max_new_tokens: %d tokens, stop %s", seen.generated_tokens,
             seen.stop_reason);
    HR_CHECK(g_str_has_prefix(seen.text->str, "<think>\n"), "the reply does not open its thinking block: '%.40s'",
             seen.text->str);
    HR_CHECK(load(e, &seen, stories), "load: %s", seen.load_error);
    reply_with(e, &seen, 3, FALSE);
    HR_CHECK(seen.generated_tokens == 8 && g_strcmp0(seen.stop_reason, "length") == 0,
             "an answer: %d tokens of 8, stop %s", seen.generated_tokens, seen.stop_reason);

    /* A chat template that never ends: its budget stops it, the load is
     * refused with a plain message, and the previous model stays. */
    g_file_set_contents(tc, "{\"chat_template\": \"{% for a in range(1000) %}{% for b in range(1000) %}"
                            "{% for c in range(1000) %}x{% endfor %}{% endfor %}{% endfor %}\"}", -1, NULL);
    HR_CHECK(!load(e, &seen, badtpl), "a model whose template never ends loaded");
    HR_CHECK(seen.load_error && strstr(seen.load_error, "budget"), "error: %s", seen.load_error);
    printf("endless template: %s\n", seen.load_error);
    HR_CHECK(hearth_engine_get_state(e) == HEARTH_ENGINE_READY && g_strcmp0(hearth_engine_get_model_name(e), "hf_f32") == 0,
             "the previous model is gone: %s", hearth_engine_get_model_name(e));
    reply(e, &seen, 3);
    HR_CHECK(seen.reply_error == NULL && seen.text->len > 0, "after a failed load: %s", seen.reply_error);

    /* Another model chosen while one loads: the first load is cancelled, or finishes, or fails, and its
     * events are stale: only the second one's load-finished comes (the first's "cancelled" used to clear
     * the new model's name, leaving the engine READY with no folder, and its success made the engine
     * READY while the second still loaded). */
    g_autofree char *f16 = hr_test_asset("models/stories260K/hf_f16");
    int superseded_errors = 0, rounds = 0;
    for (int i = 0; i < 24; i++) {
        seen.loaded = FALSE;
        hearth_engine_load(e, i % 2 ? stories : f16);
        g_usleep((gulong)(i / 2) * 500);   /* the second load lands at different points of the first */
        hearth_engine_load(e, i % 2 ? f16 : stories);
        wait_for(&seen.loaded);
        if (!seen.load_ok) {
            superseded_errors++;
            printf("round %d: the superseded load reported: %s\n", i, seen.load_error);
            seen.loaded = FALSE;
            wait_for(&seen.loaded);   /* the second load's own */
        }
        rounds++;
        const char *want = i % 2 ? f16 : stories;
        HR_CHECK(seen.load_ok && g_strcmp0(hearth_engine_get_model_dir(e), want) == 0 &&
                     hearth_engine_get_state(e) == HEARTH_ENGINE_READY,
                 "round %d: the second model: %s, dir %s, state %d", i, seen.load_ok ? "loaded" : seen.load_error,
                 hearth_engine_get_model_dir(e), hearth_engine_get_state(e));
    }
    HR_CHECK(superseded_errors == 0, "%d of %d superseded loads reported a failure", superseded_errors, rounds);
    reply(e, &seen, 3);
    HR_CHECK(seen.reply_error == NULL && seen.text->len > 0, "after the switches: %s", seen.reply_error);

    g_object_unref(e);
    const char *all[] = { "config.json", "tokenizer.json", "model.safetensors", "tokenizer_config.json", NULL };
    for (const char *const *n = all; *n; n++) {
        g_autofree char *a = g_build_filename(noweights, *n, NULL), *b = g_build_filename(badtpl, *n, NULL);
        g_unlink(a);
        g_unlink(b);
    }
    g_rmdir(noweights);
    g_rmdir(badtpl);
    g_rmdir(tmp);
    seen_clear(&seen);
    return hr_test_result();
}
#endif
