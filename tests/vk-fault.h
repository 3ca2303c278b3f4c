/* Out-of-memory fault injection for the Vulkan backend (tests/vk-fault.c,
 * linked into a test executable in front of the Vulkan loader). The calls
 * that can fail for want of memory: creating or allocating any object,
 * binding or mapping memory, beginning or ending a command buffer,
 * submitting. A call's site is its name and the return addresses above it
 * (the same line of the engine, reached the same way). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t site;
    const char *name;   /* the Vulkan function */
    int calls;          /* made at this site while counting */
} HrVkFaultSite;

/* Count from now: every call's site is listed, none fails. */
void hr_vk_fault_count(void);
/* Stop counting: the sites seen, in the order of their first call (g_free). */
HrVkFaultSite *hr_vk_fault_sites(int *n);
/* From now on the k-th call at site fails (k >= 1). */
void hr_vk_fault_arm(uint64_t site, int k);
/* Nothing fails from now on; the name of the call that failed since
 * hr_vk_fault_arm, NULL if that call was not reached. */
const char *hr_vk_fault_disarm(void);

/* Vulkan objects alive (instances, devices, buffers, memory, pipelines...);
 * what, when not NULL, gets them by kind ("2 buffer, 2 memory"). */
int hr_vk_fault_live(char *what, size_t len);

/* Validation-layer warnings and errors so far, from every context (also
 * those an error path freed). */
int hr_vk_fault_messages(void);
