#include "vk-context.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct HrVkContext {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice physical;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool cmd_pool;
    VkFence fence;
    VkPhysicalDeviceMemoryProperties mem_props;
    HrVkCaps caps;
    GString *report;
    gint validation_messages;   /* atomic: pipelines are created from several threads */
    VkPipelineCache pipeline_cache;
    char *pipeline_cache_path;
    uint8_t pipeline_cache_uuid[VK_UUID_SIZE];
    uint32_t vendor_id, device_id;
};

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

static const char *
vk_result_name(VkResult r)
{
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    default: return "VkResult error";
    }
}

static HrStatus
vk_fail(HrError *err, VkResult r, const char *what)
{
    HrStatus st = (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
                      ? HR_ERR_NOMEM : HR_ERR_DEVICE;
    return hr_error_set(err, st, "Vulkan: %s failed: %s (%d)", what, vk_result_name(r), (int)r);
}

void
hr_vk_options_init(HrVkOptions *opt)
{
    opt->allow_cpu = false;
    opt->device_index = -1;
    opt->validation = false;
    const char *allow = g_getenv("HEARTH_VULKAN_ALLOW_CPU");
    if (allow && allow[0] == '1')
        opt->allow_cpu = true;
    const char *idx = g_getenv("HEARTH_VULKAN_DEVICE");
    if (idx && *idx)
        opt->device_index = atoi(idx);
}

static const char *
device_type_name(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU (software)";
    default: return "other";
    }
}

static int
device_type_rank(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_OTHER: return 1;
    default: return 0;
    }
}

static bool
has_device_extension(VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS)
        return false;
    VkExtensionProperties *props = g_new0(VkExtensionProperties, n ? n : 1);
    bool found = false;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, props) == VK_SUCCESS) {
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(props[i].extensionName, name) == 0;
    }
    g_free(props);
    return found;
}

static bool
find_compute_queue(VkPhysicalDevice pd, uint32_t *family)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties *q = g_new0(VkQueueFamilyProperties, n ? n : 1);
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    bool found = false;
    /* Prefer a compute-only family (async compute), else any with compute. */
    for (int pass = 0; pass < 2 && !found; pass++) {
        for (uint32_t i = 0; i < n && !found; i++) {
            bool compute = q[i].queueFlags & VK_QUEUE_COMPUTE_BIT;
            bool graphics = q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT;
            if (compute && (pass == 1 || !graphics)) {
                *family = i;
                found = true;
            }
        }
    }
    g_free(q);
    return found;
}

/* VK_NV_cooperative_matrix with FP16 x FP16 + FP32 fragments at subgroup
 * scope in compute shaders, in a shape gemm_coop.comp takes (16x16x16, else
 * 16x8x16); caps->coop_m stays 0 without one. Its shaders declare the
 * Vulkan memory model (the extension's scopes), so that feature is needed too. */
static void
query_coop(VkInstance inst, VkPhysicalDevice pd, HrVkCaps *caps)
{
    if (caps->api_version < VK_API_VERSION_1_2 || !caps->shader_float16 || !caps->vulkan_memory_model ||
        !has_device_extension(pd, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME))
        return;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV feat = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
    };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &feat };
    vkGetPhysicalDeviceFeatures2(pd, &f2);
    VkPhysicalDeviceCooperativeMatrixPropertiesNV cp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_NV,
    };
    VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &cp };
    vkGetPhysicalDeviceProperties2(pd, &p2);
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)
        vkGetInstanceProcAddr(inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    uint32_t n = 0;
    if (!feat.cooperativeMatrix || !(cp.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) || !get ||
        get(pd, &n, NULL) != VK_SUCCESS || n == 0)
        return;
    VkCooperativeMatrixPropertiesNV *props = g_new0(VkCooperativeMatrixPropertiesNV, n);
    for (uint32_t i = 0; i < n; i++)
        props[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    if (get(pd, &n, props) == VK_SUCCESS) {
        for (uint32_t i = 0; i < n; i++) {
            const VkCooperativeMatrixPropertiesNV *q = &props[i];
            if (q->AType == VK_COMPONENT_TYPE_FLOAT16_NV && q->BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                q->CType == VK_COMPONENT_TYPE_FLOAT32_NV && q->DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                q->scope == VK_SCOPE_SUBGROUP_NV && q->MSize == 16 && q->KSize == 16 &&
                (q->NSize == 16 || (q->NSize == 8 && caps->coop_n != 16))) {
                caps->coop_m = q->MSize;
                caps->coop_n = q->NSize;
                caps->coop_k = q->KSize;
            }
        }
    }
    g_free(props);
}

static void
query_caps(VkInstance inst, VkPhysicalDevice pd, HrVkCaps *caps)
{
    memset(caps, 0, sizeof *caps);

    VkPhysicalDeviceSubgroupProperties subgroup = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
    };
    VkPhysicalDeviceProperties2 props2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
        .pNext = &subgroup,
    };
    vkGetPhysicalDeviceProperties2(pd, &props2);
    const VkPhysicalDeviceProperties *p = &props2.properties;
    g_strlcpy(caps->name, p->deviceName, sizeof caps->name);
    caps->type = p->deviceType;
    caps->api_version = p->apiVersion;
    caps->subgroup_size = subgroup.subgroupSize;
    caps->subgroup_arithmetic =
        (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
        (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
    caps->max_shared_memory = p->limits.maxComputeSharedMemorySize;
    caps->max_workgroup_invocations = p->limits.maxComputeWorkGroupInvocations;
    caps->max_storage_buffer_range = p->limits.maxStorageBufferRange;
    caps->timestamp_period = p->limits.timestampPeriod;

    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
    };
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
        .pNext = &f12,
    };
    VkPhysicalDeviceFeatures2 feats = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
        .pNext = &f11,
    };
    if (p->apiVersion >= VK_API_VERSION_1_2) {
        vkGetPhysicalDeviceFeatures2(pd, &feats);
        caps->shader_float16 = f12.shaderFloat16;
        caps->shader_int8 = f12.shaderInt8;
        caps->storage_8bit = f12.storageBuffer8BitAccess;
        caps->storage_16bit = f11.storageBuffer16BitAccess;
        caps->vulkan_memory_model = f12.vulkanMemoryModel;
    }
    /* packed int8 dot products (gemv.comp's Q8 build, OpSDot) */
    if (has_device_extension(pd, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME)) {
        VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR df = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR,
        };
        VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &df };
        vkGetPhysicalDeviceFeatures2(pd, &f2);
        VkPhysicalDeviceShaderIntegerDotProductPropertiesKHR dp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES_KHR,
        };
        VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &dp };
        vkGetPhysicalDeviceProperties2(pd, &p2);
        caps->integer_dot_product = df.shaderIntegerDotProduct;
        caps->integer_dot_fast = df.shaderIntegerDotProduct && dp.integerDotProduct4x8BitPackedSignedAccelerated;
    }
    caps->memory_budget = has_device_extension(pd, "VK_EXT_memory_budget");
    query_coop(inst, pd, caps);

    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(pd, &mem);
    for (uint32_t i = 0; i < mem.memoryHeapCount; i++) {
        if (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            caps->device_local_bytes += mem.memoryHeaps[i].size;
    }
}

static void
append_caps(GString *out, const HrVkCaps *c)
{
    g_string_append_printf(out,
        "      %s, Vulkan %u.%u.%u, %.1f GiB device-local, subgroup %u%s\n"
        "      fp16 arithmetic %s, 16-bit storage %s, 8-bit storage %s, int8 %s, "
        "integer dot product %s%s, memory budget %s\n"
        "      shared memory %u KiB, max storage buffer range %" G_GUINT64_FORMAT " MiB, "
        "cooperative matrix (FP16, NV) %s\n",
        device_type_name(c->type),
        VK_API_VERSION_MAJOR(c->api_version), VK_API_VERSION_MINOR(c->api_version),
        VK_API_VERSION_PATCH(c->api_version),
        (double)c->device_local_bytes / (1024.0 * 1024.0 * 1024.0),
        c->subgroup_size, c->subgroup_arithmetic ? " (arithmetic)" : "",
        c->shader_float16 ? "yes" : "no", c->storage_16bit ? "yes" : "no",
        c->storage_8bit ? "yes" : "no", c->shader_int8 ? "yes" : "no",
        c->integer_dot_product ? "yes" : "no", c->integer_dot_fast ? " (accelerated)" : "",
        c->memory_budget ? "yes" : "no",
        c->max_shared_memory / 1024, c->max_storage_buffer_range / (1024 * 1024),
        c->coop_m ? (c->coop_n == 16 ? "16x16x16" : "16x8x16") : "no");
}

/* Why a device can't be used at all (NULL when it can). */
static const char *
device_unusable_reason(VkPhysicalDevice pd, const HrVkCaps *caps, uint32_t *family)
{
    if (caps->api_version < VK_API_VERSION_1_2)
        return "Vulkan 1.2 is required";
    if (!find_compute_queue(pd, family))
        return "no compute queue";
    return NULL;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
debug_callback(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
               VkDebugUtilsMessageTypeFlagsEXT types,
               const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)types;
    HrVkContext *ctx = user;
    if (severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
        g_atomic_int_inc(&ctx->validation_messages);
        fprintf(stderr, "Vulkan validation: %s\n", data && data->pMessage ? data->pMessage : "(no text)");
    }
    return VK_FALSE;
}

static bool
instance_has_layer(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS)
        return false;
    VkLayerProperties *props = g_new0(VkLayerProperties, n ? n : 1);
    bool found = false;
    if (vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS) {
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(props[i].layerName, name) == 0;
    }
    g_free(props);
    return found;
}

static bool
layer_has_extension(const char *layer, const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS)
        return false;
    VkExtensionProperties *props = g_new0(VkExtensionProperties, n ? n : 1);
    bool found = false;
    if (vkEnumerateInstanceExtensionProperties(layer, &n, props) == VK_SUCCESS) {
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(props[i].extensionName, name) == 0;
    }
    g_free(props);
    return found;
}

static HrStatus
create_instance(HrVkContext *ctx, bool validation, HrError *err)
{
    uint32_t api = VK_API_VERSION_1_0;
    if (vkEnumerateInstanceVersion(&api) != VK_SUCCESS || api < VK_API_VERSION_1_2)
        return hr_error_set(err, HR_ERR_DEVICE,
                            "Vulkan: the loader supports only Vulkan %u.%u; 1.2 is required",
                            VK_API_VERSION_MAJOR(api), VK_API_VERSION_MINOR(api));

    const char *layers[1] = { VALIDATION_LAYER };
    const char *exts[2] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME };
    if (validation && !instance_has_layer(VALIDATION_LAYER))
        return hr_error_set(err, HR_ERR_DEVICE,
                            "Vulkan: validation was requested but %s is not installed "
                            "(Debian: vulkan-validationlayers)", VALIDATION_LAYER);
    /* With validation, the layer's synchronization validation too: a missing
     * or too narrow barrier between two dispatches is a race on a GPU, which
     * runs them at once, but not on lavapipe, which runs them one after the
     * other; the layer reports it as a hazard, on any driver.
     * HEARTH_VULKAN_SYNC_VALIDATION=0 leaves it off (it slows every command). */
    const char *sv = g_getenv("HEARTH_VULKAN_SYNC_VALIDATION");
    const bool sync_validation = validation && !(sv && strcmp(sv, "0") == 0) &&
                                 layer_has_extension(VALIDATION_LAYER, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
    const VkValidationFeatureEnableEXT sync_enable = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;

    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "Hearth",
        .pEngineName = "hearth-engine",
        .apiVersion = VK_API_VERSION_1_2,
    };
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = debug_callback,
        .pUserData = ctx,
    };
    /* the instance's chain: features (with sync validation), then dbg; dbg
     * itself also creates the messenger below, so its own pNext stays NULL */
    VkValidationFeaturesEXT features = {
        .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
        .pNext = &dbg,
        .enabledValidationFeatureCount = 1,
        .pEnabledValidationFeatures = &sync_enable,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = sync_validation ? (const void *)&features : validation ? (const void *)&dbg : NULL,
        .pApplicationInfo = &app,
        .enabledLayerCount = validation ? 1 : 0,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = validation ? (sync_validation ? 2 : 1) : 0,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = vkCreateInstance(&ci, NULL, &ctx->instance);
    if (r != VK_SUCCESS)
        return vk_fail(err, r, "vkCreateInstance");

    if (validation) {
        PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(ctx->instance, "vkCreateDebugUtilsMessengerEXT");
        if (!create)
            return hr_error_set(err, HR_ERR_DEVICE, "Vulkan: vkCreateDebugUtilsMessengerEXT is missing");
        r = create(ctx->instance, &dbg, NULL, &ctx->messenger);
        if (r != VK_SUCCESS)
            return vk_fail(err, r, "vkCreateDebugUtilsMessengerEXT");
    }
    return HR_OK;
}

/* Choose a device and write the reasoning into ctx->report. */
static HrStatus
select_device(HrVkContext *ctx, const HrVkOptions *opt, HrError *err)
{
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(ctx->instance, &n, NULL);
    if (r != VK_SUCCESS)
        return vk_fail(err, r, "vkEnumeratePhysicalDevices");
    if (n == 0)
        return hr_error_set(err, HR_ERR_DEVICE, "Vulkan: no devices (is a Vulkan driver installed?)");
    VkPhysicalDevice *pds = g_new0(VkPhysicalDevice, n);
    r = vkEnumeratePhysicalDevices(ctx->instance, &n, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        g_free(pds);
        return vk_fail(err, r, "vkEnumeratePhysicalDevices");
    }

    int best = -1, best_rank = -1;
    uint64_t best_mem = 0;
    uint32_t best_family = 0;
    const char **verdict = g_new0(const char *, n);
    HrVkCaps *caps = g_new0(HrVkCaps, n);

    for (uint32_t i = 0; i < n; i++) {
        uint32_t family = 0;
        query_caps(ctx->instance, pds[i], &caps[i]);
        const char *why = device_unusable_reason(pds[i], &caps[i], &family);
        if (!why && opt->device_index >= 0 && (uint32_t)opt->device_index != i)
            why = "another device was requested by index";
        if (!why && opt->device_index < 0 && caps[i].type == VK_PHYSICAL_DEVICE_TYPE_CPU && !opt->allow_cpu)
            why = "software (CPU) implementation; the CPU backend is faster "
                  "(use it anyway with HEARTH_VULKAN_ALLOW_CPU=1 or an explicit device index)";
        verdict[i] = why;
        if (why)
            continue;
        int rank = device_type_rank(caps[i].type);
        if (rank > best_rank || (rank == best_rank && caps[i].device_local_bytes > best_mem)) {
            best = (int)i;
            best_rank = rank;
            best_mem = caps[i].device_local_bytes;
            best_family = family;
        }
    }

    for (uint32_t i = 0; i < n; i++) {
        g_string_append_printf(ctx->report, "  [%u] %s: %s\n", i, caps[i].name,
                               (int)i == best ? "chosen" :
                               verdict[i] ? verdict[i] : "usable, ranked lower than the chosen device");
        append_caps(ctx->report, &caps[i]);
    }

    HrStatus st = HR_OK;
    if (opt->device_index >= 0 && (uint32_t)opt->device_index >= n) {
        st = hr_error_set(err, HR_ERR_DEVICE, "Vulkan: device index %d requested but only %u device(s) exist",
                          opt->device_index, n);
    } else if (best < 0) {
        st = hr_error_set(err, HR_ERR_DEVICE, "Vulkan: no usable device:\n%s", ctx->report->str);
    } else {
        ctx->physical = pds[best];
        ctx->queue_family = best_family;
        ctx->caps = caps[best];
        uint32_t nq = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical, &nq, NULL);
        VkQueueFamilyProperties *qf = g_new0(VkQueueFamilyProperties, nq ? nq : 1);
        vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical, &nq, qf);
        ctx->caps.timestamp_bits = best_family < nq ? qf[best_family].timestampValidBits : 0;
        g_free(qf);
        vkGetPhysicalDeviceMemoryProperties(ctx->physical, &ctx->mem_props);
        VkPhysicalDeviceProperties props;
        vkGetPhysicalDeviceProperties(ctx->physical, &props);
        memcpy(ctx->pipeline_cache_uuid, props.pipelineCacheUUID, VK_UUID_SIZE);
        ctx->vendor_id = props.vendorID;
        ctx->device_id = props.deviceID;
    }
    g_free(caps);
    g_free(verdict);
    g_free(pds);
    return st;
}

static HrStatus
create_device(HrVkContext *ctx, HrError *err)
{
    float prio = 1.0f;
    VkDeviceQueueCreateInfo q = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = ctx->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .shaderFloat16 = ctx->caps.shader_float16,
        .shaderInt8 = ctx->caps.shader_int8,
        .storageBuffer8BitAccess = ctx->caps.storage_8bit,
        .vulkanMemoryModel = ctx->caps.coop_m ? VK_TRUE : VK_FALSE,   /* gemm_coop.comp's memory model */
    };
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
        .pNext = &f12,
        .storageBuffer16BitAccess = ctx->caps.storage_16bit,
    };
    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR dot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR,
        .pNext = &f11,
        .shaderIntegerDotProduct = VK_TRUE,
    };
    const void *chain = ctx->caps.integer_dot_product ? (const void *)&dot : (const void *)&f11;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coop = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
        .pNext = (void *)chain,
        .cooperativeMatrix = VK_TRUE,
    };
    const char *exts[3];
    uint32_t n_ext = 0;
    if (ctx->caps.memory_budget)
        exts[n_ext++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    if (ctx->caps.coop_m)
        exts[n_ext++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
    if (ctx->caps.integer_dot_product)
        exts[n_ext++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    VkDeviceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = ctx->caps.coop_m ? (const void *)&coop : chain,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &q,
        .enabledExtensionCount = n_ext,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = vkCreateDevice(ctx->physical, &ci, NULL, &ctx->device);
    if (r != VK_SUCCESS)
        return vk_fail(err, r, "vkCreateDevice");
    vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);

    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = ctx->queue_family,
    };
    r = vkCreateCommandPool(ctx->device, &pci, NULL, &ctx->cmd_pool);
    if (r != VK_SUCCESS)
        return vk_fail(err, r, "vkCreateCommandPool");
    VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    r = vkCreateFence(ctx->device, &fci, NULL, &ctx->fence);
    if (r != VK_SUCCESS)
        return vk_fail(err, r, "vkCreateFence");
    return HR_OK;
}

HrStatus
hr_vk_context_new(const HrVkOptions *opt, HrVkContext **out, HrError *err)
{
    HrVkOptions defaults;
    if (!opt) {
        hr_vk_options_init(&defaults);
        opt = &defaults;
    }
    *out = NULL;
    HrVkContext *ctx = g_new0(HrVkContext, 1);
    ctx->report = g_string_new(NULL);
    HrStatus st = create_instance(ctx, opt->validation, err);
    if (st == HR_OK)
        st = select_device(ctx, opt, err);
    if (st == HR_OK)
        st = create_device(ctx, err);
    if (st != HR_OK) {
        hr_vk_context_free(ctx);
        return st;
    }
    *out = ctx;
    return HR_OK;
}

void
hr_vk_context_free(HrVkContext *ctx)
{
    if (!ctx)
        return;
    if (ctx->device) {
        vkDeviceWaitIdle(ctx->device);
        if (ctx->pipeline_cache)
            vkDestroyPipelineCache(ctx->device, ctx->pipeline_cache, NULL);
        if (ctx->fence)
            vkDestroyFence(ctx->device, ctx->fence, NULL);
        if (ctx->cmd_pool)
            vkDestroyCommandPool(ctx->device, ctx->cmd_pool, NULL);
        vkDestroyDevice(ctx->device, NULL);
    }
    if (ctx->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(ctx->instance, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy)
            destroy(ctx->instance, ctx->messenger, NULL);
    }
    if (ctx->instance)
        vkDestroyInstance(ctx->instance, NULL);
    g_string_free(ctx->report, TRUE);
    g_free(ctx->pipeline_cache_path);
    g_free(ctx);
}

const HrVkCaps *
hr_vk_context_caps(const HrVkContext *ctx)
{
    return &ctx->caps;
}

const char *
hr_vk_context_selection_report(const HrVkContext *ctx)
{
    return ctx->report->str;
}

uint32_t
hr_vk_context_validation_messages(const HrVkContext *ctx)
{
    return (uint32_t)g_atomic_int_get(&ctx->validation_messages);
}

void
hr_vk_describe_devices(GString *out)
{
    HrVkOptions opt;
    hr_vk_options_init(&opt);
    HrError err = { 0 };
    /* Build the report through the same selection code the engine uses. */
    HrVkContext probe = { 0 };
    probe.report = g_string_new(NULL);
    HrStatus st = create_instance(&probe, false, &err);
    if (st == HR_OK)
        st = select_device(&probe, &opt, &err);
    if (probe.report->len)
        g_string_append(out, probe.report->str);
    if (st != HR_OK && probe.report->len == 0)
        g_string_append_printf(out, "  %s\n", err.message);
    else if (st != HR_OK)
        g_string_append(out, "  no device would be chosen automatically\n");
    if (probe.instance)
        vkDestroyInstance(probe.instance, NULL);
    g_string_free(probe.report, TRUE);
}

static int
find_memory_type(const HrVkContext *ctx, uint32_t type_bits, VkMemoryPropertyFlags want,
                 VkMemoryPropertyFlags prefer)
{
    int fallback = -1;
    for (uint32_t i = 0; i < ctx->mem_props.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = ctx->mem_props.memoryTypes[i].propertyFlags;
        if (!(type_bits & (1u << i)) || (f & want) != want)
            continue;
        if ((f & prefer) == prefer)
            return (int)i;
        if (fallback < 0)
            fallback = (int)i;
    }
    return fallback;
}

/* A mapped buffer of a coherent host-visible memory type, the first with
 * the flags in prefer if there is one. */
static HrStatus
buffer_new_mapped(HrVkContext *ctx, VkDeviceSize size, VkMemoryPropertyFlags prefer, HrVkBuffer *buf, HrError *err)
{
    memset(buf, 0, sizeof *buf);
    if (size == 0 || size > ctx->caps.max_storage_buffer_range)
        return hr_error_set(err, HR_ERR_INVALID_ARG,
                            "Vulkan: buffer of %" G_GUINT64_FORMAT " bytes exceeds the device's storage "
                            "buffer range (%" G_GUINT64_FORMAT ")", (guint64)size,
                            ctx->caps.max_storage_buffer_range);
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = vkCreateBuffer(ctx->device, &bci, NULL, &buf->buffer);
    if (r != VK_SUCCESS)
        return vk_fail(err, r, "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, buf->buffer, &req);
    int type = find_memory_type(ctx, req.memoryTypeBits,
                                VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, prefer);
    if (type < 0) {
        hr_vk_buffer_free(ctx, buf);
        return hr_error_set(err, HR_ERR_DEVICE, "Vulkan: no host-visible coherent memory type");
    }
    VkMemoryAllocateInfo mai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = (uint32_t)type,
    };
    r = vkAllocateMemory(ctx->device, &mai, NULL, &buf->memory);
    if (r != VK_SUCCESS) {
        hr_vk_buffer_free(ctx, buf);
        return vk_fail(err, r, "vkAllocateMemory");
    }
    r = vkBindBufferMemory(ctx->device, buf->buffer, buf->memory, 0);
    if (r == VK_SUCCESS)
        r = vkMapMemory(ctx->device, buf->memory, 0, VK_WHOLE_SIZE, 0, &buf->mapped);
    if (r != VK_SUCCESS) {
        hr_vk_buffer_free(ctx, buf);
        return vk_fail(err, r, "binding/mapping buffer memory");
    }
    buf->size = size;
    return HR_OK;
}

HrStatus
hr_vk_buffer_new_host(HrVkContext *ctx, VkDeviceSize size, HrVkBuffer *buf, HrError *err)
{
    /* written by the host, read by the device: device-local when the
     * device has host-visible VRAM (resizable BAR), written combined */
    return buffer_new_mapped(ctx, size, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, buf, err);
}

HrStatus
hr_vk_buffer_new_readback(HrVkContext *ctx, VkDeviceSize size, HrVkBuffer *buf, HrError *err)
{
    /* written by the device, read by the host: host-cached system memory,
     * so the host's reads are cached loads rather than uncached reads
     * across PCIe from VRAM (0.5 MB of logits a token at 128K vocab) */
    return buffer_new_mapped(ctx, size, VK_MEMORY_PROPERTY_HOST_CACHED_BIT, buf, err);
}

void
hr_vk_buffer_free(HrVkContext *ctx, HrVkBuffer *buf)
{
    if (buf->mapped)
        vkUnmapMemory(ctx->device, buf->memory);
    if (buf->buffer)
        vkDestroyBuffer(ctx->device, buf->buffer, NULL);
    if (buf->memory)
        vkFreeMemory(ctx->device, buf->memory, NULL);
    memset(buf, 0, sizeof *buf);
}

static VkResult
set_layout_new(VkDevice dev, uint32_t n_bindings, VkDescriptorSetLayout *out)
{
    VkDescriptorSetLayoutBinding *b = g_new0(VkDescriptorSetLayoutBinding, n_bindings ? n_bindings : 1);
    for (uint32_t i = 0; i < n_bindings; i++) {
        b[i].binding = i;
        b[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        b[i].descriptorCount = 1;
        b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    }
    VkDescriptorSetLayoutCreateInfo dl = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = n_bindings,
        .pBindings = b,
    };
    VkResult r = vkCreateDescriptorSetLayout(dev, &dl, NULL, out);
    g_free(b);
    return r;
}

HrStatus
hr_vk_set_layout_new(HrVkContext *ctx, uint32_t n_bindings, VkDescriptorSetLayout *out, HrError *err)
{
    VkResult r = set_layout_new(ctx->device, n_bindings, out);
    return r == VK_SUCCESS ? HR_OK : vk_fail(err, r, "vkCreateDescriptorSetLayout");
}

HrStatus
hr_vk_pipeline_new(HrVkContext *ctx, const uint32_t *spirv, size_t spirv_bytes,
                   uint32_t n_bindings, uint32_t push_size,
                   const uint32_t *spec, uint32_t n_spec,
                   HrVkPipeline *pipe, HrError *err)
{
    memset(pipe, 0, sizeof *pipe);
    pipe->n_bindings = n_bindings;
    pipe->push_size = push_size;
    VkResult r;

    r = set_layout_new(ctx->device, n_bindings, &pipe->set_layout);
    if (r != VK_SUCCESS)
        goto fail_r;

    VkPushConstantRange pcr = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        .offset = 0,
        .size = push_size,
    };
    VkPipelineLayoutCreateInfo pl = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &pipe->set_layout,
        .pushConstantRangeCount = push_size ? 1 : 0,
        .pPushConstantRanges = &pcr,
    };
    r = vkCreatePipelineLayout(ctx->device, &pl, NULL, &pipe->layout);
    if (r != VK_SUCCESS)
        goto fail_r;

    VkShaderModuleCreateInfo smci = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = spirv_bytes,
        .pCode = spirv,
    };
    VkShaderModule module;
    r = vkCreateShaderModule(ctx->device, &smci, NULL, &module);
    if (r != VK_SUCCESS)
        goto fail_r;

    VkSpecializationMapEntry *entries = g_new0(VkSpecializationMapEntry, n_spec ? n_spec : 1);
    for (uint32_t i = 0; i < n_spec; i++) {
        entries[i].constantID = i;
        entries[i].offset = i * sizeof(uint32_t);
        entries[i].size = sizeof(uint32_t);
    }
    VkSpecializationInfo si = {
        .mapEntryCount = n_spec,
        .pMapEntries = entries,
        .dataSize = n_spec * sizeof(uint32_t),
        .pData = spec,
    };
    VkComputePipelineCreateInfo cpci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = module,
            .pName = "main",
            .pSpecializationInfo = n_spec ? &si : NULL,
        },
        .layout = pipe->layout,
    };
    r = vkCreateComputePipelines(ctx->device, ctx->pipeline_cache, 1, &cpci, NULL, &pipe->pipeline);
    vkDestroyShaderModule(ctx->device, module, NULL);
    g_free(entries);
    if (r != VK_SUCCESS)
        goto fail_r;

    VkDescriptorPoolSize ps = {
        .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        .descriptorCount = n_bindings ? n_bindings : 1,
    };
    VkDescriptorPoolCreateInfo dpci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = 1,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    r = vkCreateDescriptorPool(ctx->device, &dpci, NULL, &pipe->pool);
    if (r != VK_SUCCESS)
        goto fail_r;
    VkDescriptorSetAllocateInfo dsai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = pipe->pool,
        .descriptorSetCount = 1,
        .pSetLayouts = &pipe->set_layout,
    };
    r = vkAllocateDescriptorSets(ctx->device, &dsai, &pipe->set);
    if (r != VK_SUCCESS)
        goto fail_r;
    return HR_OK;

fail_r:
    hr_vk_pipeline_free(ctx, pipe);
    return vk_fail(err, r, "creating a compute pipeline");
}

void
hr_vk_pipeline_free(HrVkContext *ctx, HrVkPipeline *pipe)
{
    if (pipe->pool)
        vkDestroyDescriptorPool(ctx->device, pipe->pool, NULL);
    if (pipe->pipeline)
        vkDestroyPipeline(ctx->device, pipe->pipeline, NULL);
    if (pipe->layout)
        vkDestroyPipelineLayout(ctx->device, pipe->layout, NULL);
    if (pipe->set_layout)
        vkDestroyDescriptorSetLayout(ctx->device, pipe->set_layout, NULL);
    memset(pipe, 0, sizeof *pipe);
}

HrStatus
hr_vk_dispatch_sync(HrVkContext *ctx, HrVkPipeline *pipe,
                    HrVkBuffer *const *buffers, const void *push,
                    uint32_t groups_x, uint32_t groups_y, uint32_t groups_z,
                    HrError *err)
{
    uint32_t n = pipe->n_bindings;
    VkDescriptorBufferInfo *infos = g_new0(VkDescriptorBufferInfo, n ? n : 1);
    VkWriteDescriptorSet *writes = g_new0(VkWriteDescriptorSet, n ? n : 1);
    for (uint32_t i = 0; i < n; i++) {
        infos[i].buffer = buffers[i]->buffer;
        infos[i].range = VK_WHOLE_SIZE;
        writes[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
        writes[i].dstSet = pipe->set;
        writes[i].dstBinding = i;
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[i].pBufferInfo = &infos[i];
    }
    vkUpdateDescriptorSets(ctx->device, n, writes, 0, NULL);
    g_free(writes);
    g_free(infos);

    VkCommandBuffer cb;
    HrStatus st = hr_vk_context_command_buffers(ctx, 1, &cb, err);
    if (st != HR_OK)
        return st;
    st = hr_vk_begin(cb, VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, err);
    if (st != HR_OK) {
        vkFreeCommandBuffers(ctx->device, ctx->cmd_pool, 1, &cb);
        return st;
    }
    vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->pipeline);
    vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->layout, 0, 1, &pipe->set, 0, NULL);
    if (pipe->push_size)
        vkCmdPushConstants(cb, pipe->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, pipe->push_size, push);
    vkCmdDispatch(cb, groups_x, groups_y, groups_z);
    /* Make shader writes visible to the host before we read mapped memory. */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
    };
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT,
                         0, 1, &mb, 0, NULL, 0, NULL);
    VkResult r = vkEndCommandBuffer(cb);
    if (r == VK_SUCCESS) {
        VkSubmitInfo si = {
            .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
            .commandBufferCount = 1,
            .pCommandBuffers = &cb,
        };
        r = vkQueueSubmit(ctx->queue, 1, &si, ctx->fence);
        if (r == VK_SUCCESS)
            r = vkWaitForFences(ctx->device, 1, &ctx->fence, VK_TRUE, UINT64_MAX);
        vkResetFences(ctx->device, 1, &ctx->fence);
    }
    vkFreeCommandBuffers(ctx->device, ctx->cmd_pool, 1, &cb);
    if (r != VK_SUCCESS)
        return vk_fail(err, r, "submitting a compute dispatch");
    return HR_OK;
}

/* ---- used by the backend (vk-backend.c, vk-kernels.c) ----------------------------- */

VkDevice
hr_vk_context_device(const HrVkContext *ctx)
{
    return ctx->device;
}

VkCommandPool
hr_vk_context_command_pool(const HrVkContext *ctx)
{
    return ctx->cmd_pool;
}

HrStatus
hr_vk_context_command_buffers(const HrVkContext *ctx, uint32_t n, VkCommandBuffer *cbs, HrError *err)
{
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = ctx->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = n,
    };
    VkResult r = vkAllocateCommandBuffers(ctx->device, &ai, cbs);
    return r == VK_SUCCESS ? HR_OK : vk_fail(err, r, "vkAllocateCommandBuffers");
}

HrStatus
hr_vk_begin(VkCommandBuffer cb, VkCommandBufferUsageFlags flags, HrError *err)
{
    VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, .flags = flags };
    VkResult r = vkBeginCommandBuffer(cb, &bi);
    return r == VK_SUCCESS ? HR_OK : vk_fail(err, r, "vkBeginCommandBuffer");
}

HrStatus
hr_vk_context_vk_fail(HrError *err, VkResult r, const char *what)
{
    return vk_fail(err, r, what);
}

uint64_t
hr_vk_context_memory_available(const HrVkContext *ctx, bool *from_budget)
{
    *from_budget = false;
    uint64_t total = 0;
    if (ctx->caps.memory_budget) {
        VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT,
        };
        VkPhysicalDeviceMemoryProperties2 mp2 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
            .pNext = &budget,
        };
        vkGetPhysicalDeviceMemoryProperties2(ctx->physical, &mp2);
        for (uint32_t i = 0; i < mp2.memoryProperties.memoryHeapCount; i++) {
            if (!(mp2.memoryProperties.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT))
                continue;
            if (budget.heapBudget[i] > budget.heapUsage[i])
                total += budget.heapBudget[i] - budget.heapUsage[i];
        }
        *from_budget = true;
        return total;
    }
    return ctx->caps.device_local_bytes;
}

HrStatus
hr_vk_buffer_new_device(HrVkContext *ctx, VkDeviceSize size, HrVkBuffer *buf, HrError *err)
{
    memset(buf, 0, sizeof *buf);
    if (size == 0 || size > ctx->caps.max_storage_buffer_range)
        return hr_error_set(err, HR_ERR_INVALID_ARG,
                            "Vulkan: buffer of %" G_GUINT64_FORMAT " bytes exceeds the device's storage "
                            "buffer range (%" G_GUINT64_FORMAT ")", (guint64)size,
                            ctx->caps.max_storage_buffer_range);
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = vkCreateBuffer(ctx->device, &bci, NULL, &buf->buffer);
    if (r != VK_SUCCESS)
        return vk_fail(err, r, "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, buf->buffer, &req);
    int type = find_memory_type(ctx, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (type < 0)
        type = find_memory_type(ctx, req.memoryTypeBits, 0, 0);
    if (type < 0) {
        hr_vk_buffer_free(ctx, buf);
        return hr_error_set(err, HR_ERR_DEVICE, "Vulkan: no memory type for a storage buffer");
    }
    VkMemoryAllocateInfo mai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = (uint32_t)type,
    };
    r = vkAllocateMemory(ctx->device, &mai, NULL, &buf->memory);
    if (r == VK_SUCCESS)
        r = vkBindBufferMemory(ctx->device, buf->buffer, buf->memory, 0);
    if (r != VK_SUCCESS) {
        hr_vk_buffer_free(ctx, buf);
        return vk_fail(err, r, "allocating device memory");
    }
    buf->size = size;
    return HR_OK;
}

HrStatus
hr_vk_submit_wait(HrVkContext *ctx, VkCommandBuffer cb, HrError *err)
{
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &cb,
    };
    VkResult r = vkQueueSubmit(ctx->queue, 1, &si, ctx->fence);
    if (r == VK_SUCCESS)
        r = vkWaitForFences(ctx->device, 1, &ctx->fence, VK_TRUE, UINT64_MAX);
    vkResetFences(ctx->device, 1, &ctx->fence);
    if (r != VK_SUCCESS)
        return vk_fail(err, r, "vkQueueSubmit/vkWaitForFences");
    return HR_OK;
}

HrStatus
hr_vk_submit(HrVkContext *ctx, VkCommandBuffer cb, VkFence fence, HrError *err)
{
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &cb,
    };
    VkResult r = vkQueueSubmit(ctx->queue, 1, &si, fence);
    if (r != VK_SUCCESS)
        return vk_fail(err, r, "vkQueueSubmit");
    return HR_OK;
}

/* The on-disk pipeline cache: Vulkan's own header (length, version, vendor,
 * device, pipelineCacheUUID) is checked before the data is handed back to
 * the driver, so a file from another driver or GPU is simply ignored. */
void
hr_vk_context_open_pipeline_cache(HrVkContext *ctx)
{
    if (ctx->pipeline_cache)
        return;
    g_autofree char *dir = g_build_filename(g_get_user_cache_dir(), "hearth", NULL);
    g_autofree char *name = g_strdup_printf("vulkan-pipelines-%04x-%04x.bin", ctx->vendor_id, ctx->device_id);
    ctx->pipeline_cache_path = g_build_filename(dir, name, NULL);
    gchar *data = NULL;
    gsize len = 0;
    bool usable = false;
    if (g_file_get_contents(ctx->pipeline_cache_path, &data, &len, NULL) && len >= 16 + VK_UUID_SIZE) {
        uint32_t hdr[4];
        memcpy(hdr, data, sizeof hdr);
        usable = hdr[0] >= 16 + VK_UUID_SIZE && hdr[0] <= len &&
                 hdr[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE && hdr[2] == ctx->vendor_id &&
                 hdr[3] == ctx->device_id && memcmp(data + 16, ctx->pipeline_cache_uuid, VK_UUID_SIZE) == 0;
    }
    VkPipelineCacheCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = usable ? len : 0,
        .pInitialData = usable ? data : NULL,
    };
    if (vkCreatePipelineCache(ctx->device, &ci, NULL, &ctx->pipeline_cache) != VK_SUCCESS)
        ctx->pipeline_cache = VK_NULL_HANDLE;   /* pipelines are then built without a cache */
    g_free(data);
}

bool
hr_vk_context_save_pipeline_cache(HrVkContext *ctx)
{
    if (!ctx->pipeline_cache || !ctx->pipeline_cache_path)
        return false;
    size_t len = 0;
    if (vkGetPipelineCacheData(ctx->device, ctx->pipeline_cache, &len, NULL) != VK_SUCCESS || len == 0)
        return false;
    void *data = g_malloc(len);
    bool ok = vkGetPipelineCacheData(ctx->device, ctx->pipeline_cache, &len, data) == VK_SUCCESS;
    if (ok) {
        g_autofree char *dir = g_path_get_dirname(ctx->pipeline_cache_path);
        ok = g_mkdir_with_parents(dir, 0700) == 0 &&
             g_file_set_contents(ctx->pipeline_cache_path, data, (gssize)len, NULL);
    }
    g_free(data);
    return ok;
}

const char *
hr_vk_context_pipeline_cache_path(const HrVkContext *ctx)
{
    return ctx->pipeline_cache_path;
}
