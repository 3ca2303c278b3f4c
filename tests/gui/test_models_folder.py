#!/usr/bin/python3
"""A models folder chosen in Preferences on a drive that is not connected: the window says the folder is
not there (the banner), and nothing makes it (a download or an import there would fill the disk the
drive's mount point is on); a download asked for from the Models window fails with that reason. The same
when the drive's mount point is there, empty, and the file system table names it (an fstab drive that is
not mounted; the table is the test's own, $LIBMOUNT_FSTAB). Once the folder is back with a model in it
(the drive connected; here the table no longer names it), the Models window's closing scans it again and
the model loads.

Usage: test_models_folder.py HEARTH_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import fail, finish, labels, models_download, shot, start, stop, stories_model, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

binary = sys.argv[1]
src = stories_model()
os.environ["HEARTH_DB"] = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
drive = os.path.join(os.environ["XDG_DATA_HOME"], "usb-drive")
folder = os.path.join(drive, "models")
keyfile = os.path.join(os.environ["XDG_CONFIG_HOME"], "glib-2.0", "settings", "keyfile")
os.makedirs(os.path.dirname(keyfile), exist_ok=True)
with open(keyfile, "w") as f:
    f.write(f"[io/github/hearthchat/Hearth]\nmodels-folder='{folder}'\n")
# no network: the download must fail on the folder before it asks the hub anything
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
fstab = os.path.join(os.environ["XDG_CONFIG_HOME"], "fstab")
with open(fstab, "w") as f:
    f.write(f"UUID=0a1b2c3d {drive} ext4 defaults,nofail 0 2\n")
os.environ["LIBMOUNT_FSTAB"] = fstab

proc, app = start([binary])
try:
    main = app.child(roleName="frame")
    said = wait_for(lambda: [t for t in labels(main) if "is not there" in t and folder in t], 20,
                    "the banner saying the models folder is not there")
    shot("models-folder-missing")
    win = models_download(app, main, "owner/model")
    why = wait_for(lambda: [t for t in labels(win) if "not there" in t], 20,
                   "the download's error naming the missing folder")
    if why and folder not in " ".join(why):
        fail(f"the download's error does not name the folder: {why}")
    time.sleep(1)
    if os.path.exists(drive):
        fail(f"{drive} was made: {list(os.walk(drive))}")

    # The mount point is there, empty: the drive is still not mounted, and a download still fails.
    os.makedirs(drive)
    entry = win.findChild(lambda n: n.roleName == "text" and "Repository" in (n.name or ""), retry=False)
    entry.click()
    time.sleep(0.3)
    rawinput.keyCombo("<Control>a")
    rawinput.typeText("owner/other")
    wait_for(lambda: win.findChild(lambda n: n.roleName == "push button" and n.name == "Download", retry=False),
             10, "the Download button").click()
    why = wait_for(lambda: [t for t in labels(win) if "not mounted" in t], 20,
                   "the download's error saying the drive is not mounted")
    shot("models-folder-unmounted")
    time.sleep(1)
    if os.listdir(drive):
        fail(f"something was made on the empty mount point: {list(os.walk(drive))}")

    # The drive is connected, with a model on it; closing the Models window scans the folder again.
    with open(fstab, "w") as f:
        f.write("")
    later = os.stat(fstab).st_mtime + 5  # GLib reads the table again when its mtime changes
    os.utime(fstab, (later, later))
    os.makedirs(folder)
    shutil.copytree(src, os.path.join(folder, "stories260K"))
    win.findChild(lambda n: n.roleName == "push button" and n.name == "Close", retry=False).click()
    send = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
    wait_for(lambda: send.sensitive, 60, "the model on the connected drive to load")
    shot("models-folder-back")
finally:
    stop(proc)

finish("models folder on a drive that is not connected")
