/* Out-of-memory fault injection for the Vulkan backend (tests/vk-fault.c,
 * linked into a test executable in front of the Vulkan loader). The calls
 * that can fail for want of memory: creating or allocating any object,
 * binding or mapping memory, beginning or ending a command buffer,
 * submitting. A call's site is its name and the line of the engine that
 * made it (and the line that called that function: hr_vk_fault_count). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t site;
    const char *name;   /* the Vulkan function */
    int calls;          /* made at this site while counting */
} HrVkFaultSite;

/* Count from now: every call's site is listed, none fails. A site is known
 * by levels (1 or 2) lines of the engine: the line that made the call, and
 * at 2 the line that called that function too. */
void hr_vk_fault_count(int levels);
/* Stop counting: the sites seen, in the order of their first call (g_free). */
HrVkFaultSite *hr_vk_fault_sites(int *n);
/* From now on the k-th call at site fails (k >= 1). */
void hr_vk_fault_arm(uint64_t site, int k);
/* The same, and the device is lost at that call: every fallible call fails
 * from then on (submits and waits with VK_ERROR_DEVICE_LOST), until
 * hr_vk_fault_disarm. */
void hr_vk_fault_arm_lost(uint64_t site, int k);
/* The same, until a device is destroyed (a GPU reset): the devices made after that work (and
 * hr_vk_fault_disarm still names the call that failed). */
void hr_vk_fault_arm_lost_until_reset(uint64_t site, int k);
/* Nothing fails from now on; the name of the call that failed since
 * hr_vk_fault_arm, NULL if that call was not reached. */
const char *hr_vk_fault_disarm(void);

/* Vulkan objects alive (instances, devices, buffers, memory, pipelines...);
 * what, when not NULL, gets them by kind ("2 buffer, 2 memory"). */
int hr_vk_fault_live(char *what, size_t len);

/* Validation-layer warnings and errors so far, from every context (also
 * those an error path freed). */
int hr_vk_fault_messages(void);
