#!/usr/bin/python3
"""A small window whose label can be dragged as a list of files (argv[1:]), as a file manager offers them:
the tests' way to drop files on the Hearth window under Xvfb. With --copy first, it puts the list on the
clipboard instead (as a file manager's Copy), shows no window, and keeps the list there while it runs."""
import sys
import gi
gi.require_version("Gtk", "4.0")
gi.require_version("Gdk", "4.0")
from gi.repository import Gdk, Gio, GObject, Gtk  # noqa: E402

copy = len(sys.argv) > 1 and sys.argv[1] == "--copy"
paths = sys.argv[2:] if copy else sys.argv[1:]


def prepare(source, x, y):
    files = Gdk.FileList.new_from_list([Gio.File.new_for_commandline_arg(p) for p in paths])
    return Gdk.ContentProvider.new_for_value(GObject.Value(Gdk.FileList, files))


def activate(app):
    if copy:  # no window: it would take the keyboard from the window under test (Xvfb has no window manager)
        Gdk.Display.get_default().get_clipboard().set_content(prepare(None, 0, 0))
        app.hold()
        return
    win = Gtk.ApplicationWindow(application=app, title="Drag Source")
    win.set_default_size(120, 40)
    win.set_decorated(False)
    label = Gtk.Label(label="DRAG ME")
    src = Gtk.DragSource(actions=Gdk.DragAction.COPY)
    src.connect("prepare", prepare)
    label.add_controller(src)
    win.set_child(label)
    win.present()


app = Gtk.Application(application_id="io.github.hearthchat.DragSource", flags=Gio.ApplicationFlags.NON_UNIQUE)
app.connect("activate", activate)
app.run([sys.argv[0]])
