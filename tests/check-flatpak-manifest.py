#!/usr/bin/python3
"""The Flatpak manifest parses and says what flatpak/README.md promises:
GNOME runtime 48 or newer, the app built with meson from this tree, every
-D option it passes declared in meson_options.txt (or a meson built-in) with
a value that option accepts, every downloaded source pinned (git: a commit;
archive/file: a sha256), and a sandbox with the GPU, the network (model
downloads), Wayland with an X11 fallback, and no access to the home folder (only the
folders where other apps keep models, read-only).
Standard library only. Usage: check-flatpak-manifest.py MANIFEST MESON_OPTIONS APP_ID"""
import json
import re
import sys

manifest_path, options_path, app_id = sys.argv[1:4]
problems = []


def fail(msg):
    problems.append(msg)
    print("FAIL:", msg)


def parse_options(text):
    """meson_options.txt -> {name: {"type": ..., "choices": [...], "min": n, "max": n}}"""
    text = re.sub(r"#[^\n]*", "", text)
    opts = {}
    for m in re.finditer(r"\boption\s*\(", text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        body = text[m.end():i - 1]
        name = re.match(r"\s*'([^']+)'", body)
        kind = re.search(r"\btype\s*:\s*'([^']+)'", body)
        if not name or not kind:
            fail(f"cannot read option declaration: {body.strip()[:60]}")
            continue
        o = {"type": kind.group(1)}
        ch = re.search(r"\bchoices\s*:\s*\[([^\]]*)\]", body)
        if ch:
            o["choices"] = re.findall(r"'([^']*)'", ch.group(1))
        for bound in ("min", "max"):
            b = re.search(r"\b%s\s*:\s*(-?\d+)" % bound, body)
            if b:
                o[bound] = int(b.group(1))
        opts[name.group(1)] = o
    return opts


BOOL = {"true", "false"}
BUILTIN = {
    "buildtype": {"type": "combo", "choices": ["plain", "debug", "debugoptimized", "release", "minsize", "custom"]},
    "optimization": {"type": "combo", "choices": ["plain", "0", "g", "1", "2", "3", "s"]},
    "debug": {"type": "boolean"},
    "werror": {"type": "boolean"},
    "warning_level": {"type": "combo", "choices": ["0", "1", "2", "3", "everything"]},
    "default_library": {"type": "combo", "choices": ["shared", "static", "both"]},
    "b_ndebug": {"type": "combo", "choices": ["true", "false", "if-release"]},
    "b_lto": {"type": "boolean"},
    "b_pie": {"type": "boolean"},
    "b_sanitize": {"type": "string"},
    "prefix": {"type": "string"}, "libdir": {"type": "string"}, "bindir": {"type": "string"},
    "datadir": {"type": "string"}, "localedir": {"type": "string"}, "sysconfdir": {"type": "string"},
    "auto_features": {"type": "feature"},
}


def check_value(name, value, o):
    t = o["type"]
    ok = True
    if t == "feature":
        ok = value in ("enabled", "disabled", "auto")
    elif t == "boolean":
        ok = value in BOOL
    elif t == "combo":
        ok = value in o.get("choices", [])
    elif t == "integer":
        ok = re.fullmatch(r"-?\d+", value) is not None and o.get("min", -2**63) <= int(value) <= o.get("max", 2**63)
    elif t == "array":
        ok = all(v.strip() in o["choices"] for v in value.split(",")) if "choices" in o else True
    if not ok:
        fail(f"option {name}={value!r} is not a valid {t}" + (f" (choices {o['choices']})" if "choices" in o else ""))


try:
    with open(manifest_path, encoding="utf-8") as f:
        m = json.load(f)
except (OSError, ValueError) as e:
    print(f"FAIL: {manifest_path} does not parse: {e}")
    sys.exit(1)
with open(options_path, encoding="utf-8") as f:
    options = parse_options(f.read())
print(f"meson_options.txt declares {sorted(options)}")

if m.get("id", m.get("app-id")) != app_id:
    fail(f"id is {m.get('id')!r}, not {app_id!r}")
if m.get("runtime") != "org.gnome.Platform" or m.get("sdk") != "org.gnome.Sdk":
    fail("runtime/sdk are not org.gnome.Platform/org.gnome.Sdk")
rv = str(m.get("runtime-version", ""))
if not re.fullmatch(r"\d+", rv) or int(rv) < 48:
    fail(f"runtime-version {rv!r} is not GNOME 48 or newer")
if m.get("command") != "hearth":
    fail(f"command is {m.get('command')!r}")

args = m.get("finish-args", [])
for need in ("--device=dri", "--share=network", "--socket=wayland", "--socket=fallback-x11"):
    if need not in args:
        fail(f"finish-args lack {need}")
for a in args:
    if re.fullmatch(r"--filesystem=(home|host|host-os|~|~/|xdg-data|xdg-cache|xdg-config)(?::\w+)?", a):
        fail(f"finish-args give the whole home/host file system: {a} (use the file chooser portal)")
    elif a.startswith("--filesystem=") and not a.endswith(":ro"):
        fail(f"finish-args give write access to {a[13:]} (only other apps' model folders, read-only)")
    if a in ("--socket=x11", "--device=all", "--socket=session-bus", "--socket=system-bus"):
        fail(f"finish-args are broader than needed: {a}")

modules = m.get("modules", [])
if not modules or not isinstance(modules[-1], dict) or modules[-1].get("name") != "hearth":
    fail("the last module is not 'hearth'")
else:
    hearth = modules[-1]
    if hearth.get("buildsystem") != "meson":
        fail(f"hearth's buildsystem is {hearth.get('buildsystem')!r}, not meson")
    if not any(s.get("type") == "dir" and s.get("path") == ".." for s in hearth.get("sources", [])):
        fail("hearth is not built from this tree (a 'dir' source with path '..')")
    for opt in hearth.get("config-opts", []):
        mm = re.fullmatch(r"(?:-D|--)([A-Za-z0-9_.-]+)=(.*)", opt)
        if not mm:
            fail(f"config-opt {opt!r} is not -Dname=value or --name=value")
            continue
        name, value = mm.group(1), mm.group(2)
        o = options.get(name) or BUILTIN.get(name)
        if o is None:
            fail(f"config-opt {opt!r}: no option {name!r} in meson_options.txt (or meson's built-ins)")
            continue
        check_value(name, value, o)
        print(f"ok: {opt}")

for mod in modules:
    if not isinstance(mod, dict):
        continue
    for s in mod.get("sources", []):
        t = s.get("type")
        if t == "git" and not re.fullmatch(r"[0-9a-f]{40}", s.get("commit", "")):
            fail(f"module {mod.get('name')}: git source {s.get('url')} is not pinned to a commit")
        if t in ("archive", "file") and "url" in s and not re.fullmatch(r"[0-9a-f]{64}", s.get("sha256", "")):
            fail(f"module {mod.get('name')}: {s.get('url')} has no sha256")

print(f"{len(problems)} problem(s) in {manifest_path}")
sys.exit(1 if problems else 0)
