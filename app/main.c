#include <glib/gi18n.h>
#include <locale.h>

#include "hearth-application.h"
#include "hearth-config.h"

int
main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    bindtextdomain(HEARTH_GETTEXT_PACKAGE, HEARTH_LOCALEDIR);
    bind_textdomain_codeset(HEARTH_GETTEXT_PACKAGE, "UTF-8");
    textdomain(HEARTH_GETTEXT_PACKAGE);

    g_autoptr(HearthApplication) app = hearth_application_new();
    return g_application_run(G_APPLICATION(app), argc, argv);
}
