#!/usr/bin/python3
"""hearth-cli chat with the graphics card lost during a reply: hearth-cli built with
tests/vk-fault.c (hearth-cli-vk-fault), stories260K on lavapipe (--backend vulkan). A first
message is answered; then the file HR_VK_FAULT_LOSE_WHEN names is made, so the next reply's
first submit loses the device: that message fails and says why, the model loads again by
itself (a new device), and the third message is answered; the exit status is 1 (one message
went unanswered).

Usage: test-cli-chat-device-lost.py HEARTH_CLI_VK_FAULT"""
import os
import queue
import subprocess
import sys
import tempfile
import threading

cli = sys.argv[1]
model = os.path.join(os.environ.get("HEARTH_ASSETS", ""), "models", "stories260K", "hf_f32")
if not os.path.isfile(os.path.join(model, "config.json")):
    print(f"SKIP: {model} is absent")
    sys.exit(77)
tmp = tempfile.mkdtemp()
trigger = os.path.join(tmp, "lose-the-device")
env = dict(os.environ, HR_VK_FAULT_LOSE_WHEN=trigger, HEARTH_VULKAN_ALLOW_CPU="1")
p = subprocess.Popen([cli, "chat", "-m", model, "--backend", "vulkan", "-n", "8", "--temp", "0", "--stats"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
failures = []
errs = queue.Queue()   # stderr's lines, read beside (a line that never comes fails after 30 s, not at the timeout)
threading.Thread(target=lambda: [errs.put(line) for line in p.stderr] + [errs.put(None)], daemon=True).start()


def turn(text, until):
    """Send one line; the stderr lines up to one holding until (or EOF, or 30 s without a line)."""
    p.stdin.write(text + "\n")
    p.stdin.flush()
    lines = []
    while True:
        try:
            line = errs.get(timeout=30)
        except queue.Empty:
            lines.append(f"(nothing for 30 s after {lines[-1:]})")
            break
        if line is None:
            break
        lines.append(line.rstrip("\n"))
        if until in line:
            break
    return lines


first = turn("Once upon a time", "turn 1:")
if not any(line.startswith("turn 1:") for line in first):
    failures.append(f"the first message was not answered: {first}")
open(trigger, "w").close()
lost = turn("The cat", "the model runs on")
print("\n".join(lost))
if not any("VK_ERROR_DEVICE_LOST" in line for line in lost):
    failures.append("the lost device's error was not shown")
if not any("loading the model again" in line for line in lost):
    failures.append("the model was not loaded again")
if not any(line.endswith("the model runs on vulkan now") for line in lost):
    failures.append("the model is not back on Vulkan (a new device works)")
if os.path.exists(trigger):
    failures.append("no submit took the trigger: the device was never lost")
third = turn("The dog", "turn 3:")
if not any(line.startswith("turn 3:") for line in third):
    failures.append(f"the message after the reload was not answered: {third}")
p.stdin.close()
out = p.stdout.read()
rc = p.wait(timeout=30)
rest = []
while not errs.empty():
    rest.append(errs.get())
print(f"replies: {out!r}; exit {rc}")
if rc != 1:
    failures.append(f"exit status {rc}, not 1 (one message went unanswered): {rest}")
if len([r for r in out.split("\n") if r.strip()]) < 2:
    failures.append(f"fewer than two replies on stdout: {out!r}")
os.rmdir(tmp)
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
