/* vk-backend.h — the Vulkan backend (hr_vulkan_backend) and what tests may
 * ask it beyond the backend interface. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

extern const HrBackendOps hr_vulkan_backend;

/* Messages the validation layer reported (HEARTH_VULKAN_VALIDATION=1 turns
 * it on for the backend's device). */
uint32_t hr_vulkan_backend_validation_messages(void *ctx);
/* The GPU argmax of the last decode step's logits (single-token forward);
 * -1 after a multi-token forward. */
int hr_vulkan_backend_last_argmax(void *ctx);
/* Device name and why it was chosen (multi-line). */
const char *hr_vulkan_backend_device_report(void *ctx);
/* Whether the backend reads GGUF block type `type` (HrTensor.ggml_type of
 * an HR_DTYPE_GGML tensor): Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K, Q8_0. */
bool hr_vulkan_backend_takes_ggml(uint32_t type);
