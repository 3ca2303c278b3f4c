/* vk-context.h — Vulkan instance/device selection, buffers, compute pipelines.
 *
 * Device choice: discrete GPU, then integrated, then virtual; a CPU
 * implementation (Mesa lavapipe) only when asked for (allow_cpu, an explicit
 * device index, or HEARTH_VULKAN_ALLOW_CPU=1). The reasons every other device
 * was passed over are kept and reported, never swallowed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <vulkan/vulkan.h>

#include "hr-status.h"

typedef struct {
    bool allow_cpu;     /* accept a CPU (software) Vulkan device */
    int device_index;   /* -1: choose automatically; else vkEnumeratePhysicalDevices index */
    bool validation;    /* enable VK_LAYER_KHRONOS_validation; fail if it is missing */
} HrVkOptions;

/* What the chosen device offers (queried, never assumed). */
typedef struct {
    char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
    VkPhysicalDeviceType type;
    uint32_t api_version;
    bool shader_float16;
    bool storage_16bit;
    bool storage_8bit;
    bool shader_int8;
    bool integer_dot_product;   /* VK_KHR_shader_integer_dot_product with shaderIntegerDotProduct, enabled */
    bool integer_dot_fast;      /* its 4x8-bit packed signed dot product is accelerated (one instruction) */
    bool vulkan_memory_model;   /* enabled only with the cooperative matrix (its shaders declare it) */
    bool memory_budget;
    uint32_t subgroup_size;
    bool subgroup_arithmetic;
    uint32_t max_shared_memory;
    uint32_t max_workgroup_invocations;
    uint64_t max_storage_buffer_range;
    uint64_t device_local_bytes;
    float timestamp_period;          /* ns per timestamp tick */
    uint32_t timestamp_bits;         /* valid bits of the chosen queue's timestamps (0: none) */
    uint32_t coop_m, coop_n, coop_k; /* VK_NV_cooperative_matrix fragment, FP16 x FP16 + FP32 at
                                        subgroup scope (16x16x16 or 16x8x16; 0: none), enabled */
} HrVkCaps;

typedef struct HrVkContext HrVkContext;

typedef struct {
    VkBuffer buffer;
    VkDeviceMemory memory;
    VkDeviceSize size;
    void *mapped;       /* non-NULL for host-visible buffers */
} HrVkBuffer;

typedef struct {
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipeline;
    VkDescriptorPool pool;
    VkDescriptorSet set;
    uint32_t n_bindings;
    uint32_t push_size;
} HrVkPipeline;

void hr_vk_options_init(HrVkOptions *opt);

HrStatus hr_vk_context_new(const HrVkOptions *opt, HrVkContext **out, HrError *err);
void hr_vk_context_free(HrVkContext *ctx);

const HrVkCaps *hr_vk_context_caps(const HrVkContext *ctx);
/* Why the chosen device was chosen and the others were not (multi-line). */
const char *hr_vk_context_selection_report(const HrVkContext *ctx);
/* Warnings and errors reported by the validation layer so far. */
uint32_t hr_vk_context_validation_messages(const HrVkContext *ctx);

/* Appends a human-readable list of every Vulkan device and the verdict on
 * each to out. Never fails: problems are described in the text. */
void hr_vk_describe_devices(GString *out);

/* Host-visible, host-coherent storage buffer (device-local when the device
 * has such memory, e.g. integrated GPUs and lavapipe). */
HrStatus hr_vk_buffer_new_host(HrVkContext *ctx, VkDeviceSize size, HrVkBuffer *buf, HrError *err);
/* The same for buffers the device writes and the host reads (logits):
 * host-cached memory where the device has it. */
HrStatus hr_vk_buffer_new_readback(HrVkContext *ctx, VkDeviceSize size, HrVkBuffer *buf, HrError *err);
void hr_vk_buffer_free(HrVkContext *ctx, HrVkBuffer *buf);

/* A compute pipeline with n_bindings storage buffers in set 0, push
 * constants of push_size bytes, and 32-bit specialization constants
 * 0..n_spec-1. */
HrStatus hr_vk_pipeline_new(HrVkContext *ctx, const uint32_t *spirv, size_t spirv_bytes,
                            uint32_t n_bindings, uint32_t push_size,
                            const uint32_t *spec, uint32_t n_spec,
                            HrVkPipeline *pipe, HrError *err);
void hr_vk_pipeline_free(HrVkContext *ctx, HrVkPipeline *pipe);
/* The set layout of n_bindings storage buffers in set 0, as hr_vk_pipeline_new
 * makes it (a set allocated with it binds to such a pipeline: identically
 * defined layouts are compatible). */
HrStatus hr_vk_set_layout_new(HrVkContext *ctx, uint32_t n_bindings, VkDescriptorSetLayout *out, HrError *err);

/* Bind buffers to the pipeline's set, record one dispatch, submit and wait. */
HrStatus hr_vk_dispatch_sync(HrVkContext *ctx, HrVkPipeline *pipe,
                             HrVkBuffer *const *buffers, const void *push,
                             uint32_t groups_x, uint32_t groups_y, uint32_t groups_z,
                             HrError *err);

/* ---- for the backend (vk-backend.c, vk-kernels.c) ---------------------------------- */
VkDevice hr_vk_context_device(const HrVkContext *ctx);
VkCommandPool hr_vk_context_command_pool(const HrVkContext *ctx);
/* n primary command buffers from the context's pool into cbs. */
HrStatus hr_vk_context_command_buffers(const HrVkContext *ctx, uint32_t n, VkCommandBuffer *cbs, HrError *err);
/* vkBeginCommandBuffer with these usage flags; out of memory is an error
 * (recording into a command buffer that did not begin is undefined). */
HrStatus hr_vk_begin(VkCommandBuffer cb, VkCommandBufferUsageFlags flags, HrError *err);
/* Sets err from a failed VkResult (NOMEM for out-of-memory results). */
HrStatus hr_vk_context_vk_fail(HrError *err, VkResult r, const char *what);
/* Device-local bytes still available: VK_EXT_memory_budget's budget minus
 * usage when the device has it (*from_budget = true), else the heap sizes. */
uint64_t hr_vk_context_memory_available(const HrVkContext *ctx, bool *from_budget);
/* Device-local storage buffer (not mapped), also a transfer source/target. */
HrStatus hr_vk_buffer_new_device(HrVkContext *ctx, VkDeviceSize size, HrVkBuffer *buf, HrError *err);
/* Submit one command buffer on the context's queue; _wait waits on the
 * context's own fence. */
HrStatus hr_vk_submit_wait(HrVkContext *ctx, VkCommandBuffer cb, HrError *err);
HrStatus hr_vk_submit(HrVkContext *ctx, VkCommandBuffer cb, VkFence fence, HrError *err);
/* A VkPipelineCache kept in g_get_user_cache_dir()/hearth/ (one file per
 * vendor/device id): opened before pipelines are built (they then use it),
 * saved by the owner when done. A missing or foreign file is ignored. */
void hr_vk_context_open_pipeline_cache(HrVkContext *ctx);
bool hr_vk_context_save_pipeline_cache(HrVkContext *ctx);
const char *hr_vk_context_pipeline_cache_path(const HrVkContext *ctx);
