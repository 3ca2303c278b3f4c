#!/usr/bin/python3
"""Preferences say in words what this computer can run models on (issue
21): the Devices group has a row per backend ("Processor", "Graphics Cards
(Vulkan)", "NVIDIA Graphics Cards (CUDA)", "Automatic Backend") whose text
is a plain sentence ("Graphics card: NAME", "Not available: …"); developer
text (HEARTH_VULKAN_ALLOW_CPU=1, capability lists such as "subgroup" or
"fp16 arithmetic", CUDA error codes) is only inside the "Technical Details"
expander row. Screenshots: devices, devices-details.

Usage: test_devices.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import fail, finish, shot, start, stop, toplevel, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

DEVELOPER_TEXT = re.compile(r"HEARTH_|subgroup|fp16|storage buffer|SMs\b|CUDA error|compute capability|"
                            r"\[\d\]|-Dvulkan|-Dcuda|cudaGetDeviceCount|device-local")
binary = sys.argv[1]
os.environ["HEARTH_DB"] = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")


proc, app = start([binary])
try:
    main = app.child(roleName="frame")
    wait_for(lambda: main.child(name="Main menu"), 30, "the main window")
    rawinput.keyCombo("<Control>comma")
    prefs = toplevel(app, "Preferences")
    if prefs is None:
        sys.exit(1)
    prefs.child(name="Models", roleName="page tab").doActionNamed("click")
    rows = wait_for(lambda: prefs.child(name="Technical Details", retry=False), 30, "the device rows")
    time.sleep(0.5)
    texts = [n.name for n in prefs.findChildren(lambda n: n.roleName == "label" and n.name)]
    report = [t for t in texts if t.startswith("CPU backend")]
    shown = [t for t in texts if not t.startswith("CPU backend")]
    print("labels:", shown)
    for title in ("Processor", "Automatic Backend"):
        if title not in shown:
            fail(f"no {title!r} row")
    for t in shown:
        if DEVELOPER_TEXT.search(t):
            fail(f"developer text outside Technical Details: {t!r}")
    if not any(t.startswith("Always available:") for t in shown):
        fail("the Processor row does not say it is always available")
    if not any(t.startswith("Replies run on") for t in shown):
        fail("the Automatic Backend row does not say where replies run")
    if len(report) != 1:
        fail(f"Technical Details does not hold the backends' report once: {report}")
    # Scroll the page down (mouse wheel) to the devices, then open the expander.
    (px, py), (pw, ph) = prefs.position, prefs.size
    for _ in range(15):
        rawinput.click(px + pw // 2, py + ph // 2, button=5)
    time.sleep(0.5)
    shot("devices")
    prefs.child(name="Technical Details", roleName="list item").click()
    time.sleep(1)
    for _ in range(15):
        rawinput.click(px + pw // 2, py + ph // 2, button=5)
    time.sleep(0.5)
    shot("devices-details")
finally:
    stop(proc)
finish("Preferences name the devices in words; the report is behind Technical Details")
