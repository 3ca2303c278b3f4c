#include <glib/gi18n.h>
#include <locale.h>

#include "hearth-application.h"
#include "hearth-config.h"

int
main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    /* HEARTH_LOCALEDIR=BUILD/po shows an uninstalled build's translations. */
    const char *localedir = g_getenv("HEARTH_LOCALEDIR");
    bindtextdomain(HEARTH_GETTEXT_PACKAGE, localedir && *localedir ? localedir : HEARTH_LOCALEDIR);
    bind_textdomain_codeset(HEARTH_GETTEXT_PACKAGE, "UTF-8");
    textdomain(HEARTH_GETTEXT_PACKAGE);

    g_autoptr(HearthApplication) app = hearth_application_new();
    return g_application_run(G_APPLICATION(app), argc, argv);
}
