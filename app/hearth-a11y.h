/* hearth-a11y.h — accessible names where libadwaita 1.2 leaves none. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

/* Call right after adding toast to an overlay inside root: names the close
 * button of each toast root shows ("Dismiss"), now and whenever a queued
 * toast comes up after this one is dismissed. */
void hearth_a11y_watch_toast(GtkWidget *root, AdwToast *toast);

/* For windows libadwaita and GTK build (About, keyboard shortcuts): names
 * icon-only back and search buttons, search entries, buttons whose only
 * child is a label, and text views (for the header title of their page);
 * buttons with a mnemonic label are named once (see below). */
void hearth_a11y_name_unlabelled(GtkWidget *root);

/* GTK 4.8 names a button with a mnemonic label ("_Undo") twice over: by its
 * label property, underscore and all, and by the label it is labelled by
 * ("Undo"), so screen readers hear "_Undo Undo". These name such a button
 * once: `name`, or (NULL) its label's text without the underscore. */
void hearth_a11y_fix_mnemonic_button(GtkWidget *button, const char *name);
/* The same for every button with a mnemonic label under root (message
 * dialogs' responses, the window's own buttons). */
void hearth_a11y_fix_mnemonic_buttons(GtkWidget *root);

G_END_DECLS
