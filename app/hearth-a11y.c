/* hearth-a11y.c — see hearth-a11y.h. */
#include "hearth-a11y.h"

#include <glib/gi18n.h>
#include <string.h>

void
hearth_a11y_fix_mnemonic_button(GtkWidget *button, const char *name)
{
    if (!GTK_IS_BUTTON(button))
        return;
    GtkWidget *child = gtk_button_get_child(GTK_BUTTON(button));
    if (!name && GTK_IS_LABEL(child))
        name = gtk_label_get_text(GTK_LABEL(child)); /* as shown: no underscore */
    if (!name)
        return;
    gtk_accessible_reset_relation(GTK_ACCESSIBLE(button), GTK_ACCESSIBLE_RELATION_LABELLED_BY);
    gtk_accessible_update_property(GTK_ACCESSIBLE(button), GTK_ACCESSIBLE_PROPERTY_LABEL, name, -1);
}

static gboolean
has_mnemonic_label(GtkWidget *widget)
{
    if (!GTK_IS_BUTTON(widget) || GTK_IS_MENU_BUTTON(widget))
        return FALSE;
    GtkWidget *child = gtk_button_get_child(GTK_BUTTON(widget));
    return GTK_IS_LABEL(child) && gtk_label_get_use_underline(GTK_LABEL(child));
}

void
hearth_a11y_fix_mnemonic_buttons(GtkWidget *root)
{
    if (has_mnemonic_label(root))
        hearth_a11y_fix_mnemonic_button(root, NULL);
    for (GtkWidget *c = gtk_widget_get_first_child(root); c; c = gtk_widget_get_next_sibling(c))
        hearth_a11y_fix_mnemonic_buttons(c);
}

/* AdwToastWidget's close button is an icon-only GtkButton with no label; its
 * action button ("_Undo") has a mnemonic label. */
static void
name_close_buttons(GtkWidget *widget)
{
    for (GtkWidget *c = gtk_widget_get_first_child(widget); c; c = gtk_widget_get_next_sibling(c)) {
        if (GTK_IS_BUTTON(c) && g_strcmp0(G_OBJECT_TYPE_NAME(widget), "AdwToastWidget") == 0) {
            if (g_strcmp0(gtk_button_get_icon_name(GTK_BUTTON(c)), "window-close-symbolic") == 0)
                gtk_accessible_update_property(GTK_ACCESSIBLE(c), GTK_ACCESSIBLE_PROPERTY_LABEL, _("Dismiss"), -1);
            else if (has_mnemonic_label(c))
                hearth_a11y_fix_mnemonic_button(c, NULL);
        }
        name_close_buttons(c);
    }
}

static gboolean
name_close_buttons_idle(gpointer data)
{
    name_close_buttons(GTK_WIDGET(data));
    return G_SOURCE_REMOVE;
}

static void
schedule(GtkWidget *root)
{
    g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, name_close_buttons_idle, g_object_ref(root), g_object_unref);
}

void
hearth_a11y_watch_toast(GtkWidget *root, AdwToast *toast)
{
    name_close_buttons(root);
    schedule(root);
    g_signal_connect_object(toast, "dismissed", G_CALLBACK(schedule), root, G_CONNECT_SWAPPED);
}

/* The text of the first title label (css class "title", as in a header bar)
 * in widget's subtree, or NULL. */
static const char *
find_title(GtkWidget *widget)
{
    for (GtkWidget *c = gtk_widget_get_first_child(widget); c; c = gtk_widget_get_next_sibling(c)) {
        if (GTK_IS_LABEL(c) && gtk_widget_has_css_class(c, "title") && *gtk_label_get_text(GTK_LABEL(c)))
            return gtk_label_get_text(GTK_LABEL(c));
        const char *t = find_title(c);
        if (t)
            return t;
    }
    return NULL;
}

static void
label(GtkWidget *widget, const char *text)
{
    gtk_accessible_update_property(GTK_ACCESSIBLE(widget), GTK_ACCESSIBLE_PROPERTY_LABEL, text, -1);
}

static void
name_unlabelled(GtkWidget *widget)
{
    for (GtkWidget *c = gtk_widget_get_first_child(widget); c; c = gtk_widget_get_next_sibling(c)) {
        if (GTK_IS_MENU_BUTTON(c) && !gtk_menu_button_get_label(GTK_MENU_BUTTON(c)) &&
            !gtk_menu_button_get_icon_name(GTK_MENU_BUTTON(c))) {
            /* The shortcuts window's section switcher (and its inner toggle). */
            label(c, _("Sections"));
            for (GtkWidget *t = gtk_widget_get_first_child(c); t; t = gtk_widget_get_next_sibling(t))
                if (GTK_IS_TOGGLE_BUTTON(t))
                    hearth_a11y_fix_mnemonic_button(t, _("Sections")); /* not also by its label */
        } else if (has_mnemonic_label(c)) {
            hearth_a11y_fix_mnemonic_button(c, NULL); /* the About window's "_Copy Text", "_Save as…" */
        } else if (GTK_IS_BUTTON(c)) {
            const char *icon = gtk_button_get_icon_name(GTK_BUTTON(c));
            GtkWidget *child = gtk_button_get_child(GTK_BUTTON(c));
            if (g_strcmp0(icon, "go-previous-symbolic") == 0)
                label(c, _("Back"));
            else if (icon && (strstr(icon, "find") || strstr(icon, "search")))
                label(c, _("Search"));
            else if (!icon && !gtk_button_get_label(GTK_BUTTON(c)) && GTK_IS_LABEL(child))
                label(c, gtk_label_get_text(GTK_LABEL(child)));
        } else if (GTK_IS_SEARCH_ENTRY(c)) {
            label(c, _("Search"));
        } else if (GTK_IS_TEXT_VIEW(c)) {
            /* Named for the page it shows, found in the nearest header. */
            for (GtkWidget *a = gtk_widget_get_parent(c); a; a = gtk_widget_get_parent(a)) {
                const char *title = find_title(a);
                if (title) {
                    label(c, title);
                    break;
                }
            }
        }
        name_unlabelled(c);
    }
}

void
hearth_a11y_name_unlabelled(GtkWidget *root)
{
    name_unlabelled(root);
}
