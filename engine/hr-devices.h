/* hr-devices.h — what backends this build has and which devices each sees. */
#pragma once

#include <glib.h>

/* Appends a report, one section per backend compiled in (CPU always;
 * Vulkan and CUDA when built), listing each device and the verdict on it.
 * Says plainly when a backend sees no device. */
void hr_devices_report(GString *out);
