#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/*
 * HearthMarkdownView: renders a Markdown reply (parsed with cmark) as GTK
 * widgets: paragraphs and headings as selectable GtkLabels with Pango markup,
 * lists, block quotes, separators, tables as aligned monospace text, and code
 * blocks in a highlighted GtkSourceView with a language header and a Copy
 * button.
 *
 * Made for replies that stream: set_text() may be called once per frame with
 * the growing text. Each call parses the whole text again (cmark is fast) but
 * keeps the widgets of every block whose rendering did not change, updates a
 * changed paragraph or code block in place where it can (so a selection in
 * it survives), and only builds widgets for blocks that are new or whose kind
 * changed.
 */
#define HEARTH_TYPE_MARKDOWN_VIEW (hearth_markdown_view_get_type())
G_DECLARE_FINAL_TYPE(HearthMarkdownView, hearth_markdown_view, HEARTH, MARKDOWN_VIEW, GtkWidget)

GtkWidget  *hearth_markdown_view_new(void);

/* Renders markdown (NULL means ""). Cheap when only the end of the text
 * changed. Notifies :text when the text changed. */
void        hearth_markdown_view_set_text(HearthMarkdownView *self, const char *markdown);
const char *hearth_markdown_view_get_text(HearthMarkdownView *self);

/* How many blocks (paragraphs, headings, code blocks, list items, quotes…)
 * the last set_text() built or updated; 0 when nothing changed. Appending
 * to the last paragraph gives 1. */
guint       hearth_markdown_view_get_n_rebuilt_blocks(HearthMarkdownView *self);

/* The Pango markup (GtkLabel flavour: may contain <a href>) that the view
 * uses for the inline content of the paragraphs and headings of markdown,
 * blocks separated by a blank line. Free with g_free(). No GTK needed. */
char       *hearth_markdown_to_pango(const char *markdown);

/* The GtkSourceView language id for a fence info string ("py" → "python3",
 * "c++" → "cpp", "bash" → "sh"…), or NULL when none is known. Needs
 * gtk_source_init() (the view does it). */
const char *hearth_markdown_language_for_info(const char *info);

/* A reply of a reasoning model (Qwen3, DeepSeek-R1 and its distills) split into its thinking and its answer:
 * "<think>…</think>answer" (the text may start with white space), or "…</think>answer" where the chat template
 * opened the block itself (R1's). *thinking gets the reasoning without the tags and outer blank lines
 * (g_free; NULL when the reply has none); the return value points into text at the answer, its leading white
 * space skipped (all of text without thinking; "" while the thinking is still being written). *closed tells
 * whether the block has ended. No GTK needed. */
const char *hearth_markdown_split_thinking(const char *text, char **thinking, gboolean *closed);

G_END_DECLS
