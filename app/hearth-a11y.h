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
 * child is a label, and text views (for the header title of their page). */
void hearth_a11y_name_unlabelled(GtkWidget *root);

G_END_DECLS
