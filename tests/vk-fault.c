/* Fault injection for the Vulkan backend, in the test executable: these
 * definitions of the Vulkan calls that can fail for want of memory stand in
 * front of the loader's (the engine calls them by name; the executable's
 * symbols come first). Each call is known by its site: its name and the
 * return addresses of the two frames above it. While counting, they list the sites; armed,
 * the k-th call at one site fails (VK_ERROR_OUT_OF_DEVICE_MEMORY, or the
 * call's own out-of-memory result) without reaching the driver; every other
 * call goes on to the loader (dlsym RTLD_NEXT). They also count the objects
 * alive, by kind, so that a test can see that an error path destroyed what
 * it made. The app built with them (hearth-vk-fault, for a GUI test) loses
 * its device when told through a file (HR_VK_FAULT_LOSE_WHEN, below). */
#include <dlfcn.h>
#include <execinfo.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <vulkan/vulkan.h>

#include "vk-fault.h"

/* The armed fault: the k-th call from site fails. */
static GMutex lock;
static uint64_t armed_site;
static int armed_k, armed_seen;
static bool armed_hit;
static const char *hit_name;
static bool sticky, lost;   /* the device lost at the armed call: every fallible call fails from then on */
static bool reset_on_destroy;   /* ... until a device is destroyed (a GPU reset: a new device works) */
static bool counting;
static int site_levels = 2;   /* frames a site is known by (hr_vk_fault_count) */
static GArray *sites;   /* HrVkFaultSite, while counting */

enum { K_INSTANCE, K_DEVICE, K_BUFFER, K_MEMORY, K_MAPPED, K_DESC_POOL, K_DESC_LAYOUT, K_PIPE_LAYOUT,
       K_PIPELINE, K_PIPE_CACHE, K_SHADER, K_CMD_POOL, K_FENCE, K_QUERY_POOL, K_N };
static const char *const kind_names[K_N] = {
    "instance", "device", "buffer", "memory", "mapping", "descriptor pool", "descriptor set layout",
    "pipeline layout", "pipeline", "pipeline cache", "shader module", "command pool", "fence", "query pool",
};
static gint live[K_N];

void
hr_vk_fault_count(int levels)
{
    g_mutex_lock(&lock);
    site_levels = CLAMP(levels, 1, 2);
    if (!sites)
        sites = g_array_new(FALSE, FALSE, sizeof(HrVkFaultSite));
    g_array_set_size(sites, 0);
    counting = true;
    g_mutex_unlock(&lock);
}

HrVkFaultSite *
hr_vk_fault_sites(int *n)
{
    g_mutex_lock(&lock);
    counting = false;
    *n = sites ? (int)sites->len : 0;
    HrVkFaultSite *out = g_new0(HrVkFaultSite, *n ? *n : 1);
    if (*n)
        memcpy(out, sites->data, (size_t)*n * sizeof *out);
    g_mutex_unlock(&lock);
    return out;
}

void
hr_vk_fault_arm(uint64_t site, int k)
{
    g_mutex_lock(&lock);
    armed_site = site;
    armed_k = k;
    armed_seen = 0;
    armed_hit = false;
    hit_name = NULL;
    sticky = lost = reset_on_destroy = false;
    g_mutex_unlock(&lock);
}

void
hr_vk_fault_arm_lost(uint64_t site, int k)
{
    hr_vk_fault_arm(site, k);
    g_mutex_lock(&lock);
    sticky = true;
    g_mutex_unlock(&lock);
}

void
hr_vk_fault_arm_lost_until_reset(uint64_t site, int k)
{
    hr_vk_fault_arm_lost(site, k);
    g_mutex_lock(&lock);
    reset_on_destroy = true;
    g_mutex_unlock(&lock);
}

/* true: the device is lost (a sticky fault was hit) */
static bool
is_lost(void)
{
    g_mutex_lock(&lock);
    const bool l = lost;
    g_mutex_unlock(&lock);
    return l;
}

const char *
hr_vk_fault_disarm(void)
{
    g_mutex_lock(&lock);
    const char *name = armed_hit ? hit_name : NULL;
    armed_k = 0;
    armed_hit = false;
    sticky = lost = reset_on_destroy = false;
    g_mutex_unlock(&lock);
    return name;
}

int
hr_vk_fault_live(char *what, size_t len)
{
    int total = 0;
    if (what && len)
        what[0] = '\0';
    for (int k = 0; k < K_N; k++) {
        const int n = g_atomic_int_get(&live[k]);
        total += n;
        if (n && what && len) {
            const size_t used = strlen(what);
            snprintf(what + used, len - used, "%s%d %s", used ? ", " : "", n, kind_names[k]);
        }
    }
    return total;
}

/* The call's site: its name, the engine's line that called it (caller: the
 * stand-in's return address) and, at two levels, the line that called that
 * function (the frame after caller in a backtrace, which may begin inside a
 * sanitizer's interceptor). Not more: a parallel loop's body is called from
 * the pool's workers and from the calling thread, by different frames. */
static uint64_t
site_of(const char *name, void *caller, int levels)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ (uint64_t)(uintptr_t)caller) * 1099511628211ull;
    if (levels < 2)
        return h;
    void *frames[10];
    const int n = backtrace(frames, G_N_ELEMENTS(frames));
    for (int i = 0; i + 1 < n; i++)
        if (frames[i] == caller) {
            h = (h ^ (uint64_t)(uintptr_t)frames[i + 1]) * 1099511628211ull;
            break;
        }
    return h;
}

/* true: this call fails */
static bool
fault_now(const char *name, void *caller)
{
    g_mutex_lock(&lock);
    const bool want = counting || armed_k > 0, gone = lost;
    const int levels = site_levels;
    g_mutex_unlock(&lock);
    if (gone)
        return true;
    if (!want)
        return false;
    const uint64_t site = site_of(name, caller, levels);
    bool fail = false;
    g_mutex_lock(&lock);
    if (counting) {
        guint i = 0;
        while (i < sites->len && g_array_index(sites, HrVkFaultSite, i).site != site)
            i++;
        if (i == sites->len) {
            HrVkFaultSite s = { .site = site, .name = name };
            g_array_append_val(sites, s);
        }
        g_array_index(sites, HrVkFaultSite, i).calls++;
    }
    if (armed_k > 0 && site == armed_site && ++armed_seen == armed_k) {
        fail = true;
        armed_hit = true;
        hit_name = name;
        lost = sticky;
    }
    g_mutex_unlock(&lock);
    return fail;
}

/* In a stand-in: whether this call fails (its caller: the engine's line) */
#define FAULT(name) fault_now(name, __builtin_return_address(0))

static void *
real(const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);
    if (!fn)
        g_error("vk-fault: %s is not in the Vulkan loader", name);
    return fn;
}

/* The loader's function of that name, looked up once. */
#define REAL(name)                                                                                           \
    static PFN_##name real_fn;                                                                                \
    if (!real_fn) {                                                                                           \
        void *p = real(#name);                                                                                \
        memcpy(&real_fn, &p, sizeof p);                                                                       \
    }

#define COUNTED(kind, r) \
    do {                                          \
        if ((r) == VK_SUCCESS)                    \
            g_atomic_int_inc(&live[kind]);        \
    } while (0)

VKAPI_ATTR VkResult VKAPI_CALL
vkCreateInstance(const VkInstanceCreateInfo *ci, const VkAllocationCallbacks *a, VkInstance *out)
{
    REAL(vkCreateInstance);
    if (FAULT("vkCreateInstance"))
        return VK_ERROR_OUT_OF_HOST_MEMORY;
    VkResult r = real_fn(ci, a, out);
    COUNTED(K_INSTANCE, r);
    return r;
}

VKAPI_ATTR void VKAPI_CALL
vkDestroyInstance(VkInstance h, const VkAllocationCallbacks *a)
{
    REAL(vkDestroyInstance);
    if (h)
        g_atomic_int_add(&live[K_INSTANCE], -1);
    real_fn(h, a);
}

VKAPI_ATTR VkResult VKAPI_CALL
vkCreateDevice(VkPhysicalDevice pd, const VkDeviceCreateInfo *ci, const VkAllocationCallbacks *a, VkDevice *out)
{
    REAL(vkCreateDevice);
    if (FAULT("vkCreateDevice"))
        return VK_ERROR_OUT_OF_DEVICE_MEMORY;
    VkResult r = real_fn(pd, ci, a, out);
    COUNTED(K_DEVICE, r);
    return r;
}

VKAPI_ATTR void VKAPI_CALL
vkDestroyDevice(VkDevice h, const VkAllocationCallbacks *a)
{
    REAL(vkDestroyDevice);
    if (h)
        g_atomic_int_add(&live[K_DEVICE], -1);
    real_fn(h, a);
    g_mutex_lock(&lock);
    if (lost && reset_on_destroy) {   /* the lost device is gone: the next one works */
        lost = false;
        armed_k = 0;
    }
    g_mutex_unlock(&lock);
}

/* create/destroy pairs of the form vkCreateX(device, info, alloc, out) */
#define PAIR(kind, Type, Info)                                                                               \
    VKAPI_ATTR VkResult VKAPI_CALL vkCreate##Type(VkDevice d, const Info *ci, const VkAllocationCallbacks *a, \
                                                  Vk##Type *out)                                             \
    {                                                                                                         \
        REAL(vkCreate##Type);                                                                                 \
        if (FAULT("vkCreate" #Type))                                                                          \
            return VK_ERROR_OUT_OF_DEVICE_MEMORY;                                                             \
        VkResult r = real_fn(d, ci, a, out);                                                                  \
        COUNTED(kind, r);                                                                                     \
        return r;                                                                                             \
    }                                                                                                         \
    VKAPI_ATTR void VKAPI_CALL vkDestroy##Type(VkDevice d, Vk##Type h, const VkAllocationCallbacks *a)       \
    {                                                                                                         \
        REAL(vkDestroy##Type);                                                                                \
        if (h)                                                                                                \
            g_atomic_int_add(&live[kind], -1);                                                                \
        real_fn(d, h, a);                                                                                     \
    }

PAIR(K_BUFFER, Buffer, VkBufferCreateInfo)
PAIR(K_DESC_POOL, DescriptorPool, VkDescriptorPoolCreateInfo)
PAIR(K_DESC_LAYOUT, DescriptorSetLayout, VkDescriptorSetLayoutCreateInfo)
PAIR(K_PIPE_LAYOUT, PipelineLayout, VkPipelineLayoutCreateInfo)
PAIR(K_PIPE_CACHE, PipelineCache, VkPipelineCacheCreateInfo)
PAIR(K_SHADER, ShaderModule, VkShaderModuleCreateInfo)
PAIR(K_CMD_POOL, CommandPool, VkCommandPoolCreateInfo)
PAIR(K_FENCE, Fence, VkFenceCreateInfo)
PAIR(K_QUERY_POOL, QueryPool, VkQueryPoolCreateInfo)

VKAPI_ATTR VkResult VKAPI_CALL
vkAllocateMemory(VkDevice d, const VkMemoryAllocateInfo *ai, const VkAllocationCallbacks *a, VkDeviceMemory *out)
{
    REAL(vkAllocateMemory);
    if (FAULT("vkAllocateMemory"))
        return VK_ERROR_OUT_OF_DEVICE_MEMORY;
    VkResult r = real_fn(d, ai, a, out);
    COUNTED(K_MEMORY, r);
    return r;
}

VKAPI_ATTR void VKAPI_CALL
vkFreeMemory(VkDevice d, VkDeviceMemory h, const VkAllocationCallbacks *a)
{
    REAL(vkFreeMemory);
    if (h)
        g_atomic_int_add(&live[K_MEMORY], -1);
    real_fn(d, h, a);
}

VKAPI_ATTR VkResult VKAPI_CALL
vkMapMemory(VkDevice d, VkDeviceMemory m, VkDeviceSize off, VkDeviceSize size, VkMemoryMapFlags f, void **out)
{
    REAL(vkMapMemory);
    if (FAULT("vkMapMemory"))
        return VK_ERROR_MEMORY_MAP_FAILED;
    VkResult r = real_fn(d, m, off, size, f, out);
    COUNTED(K_MAPPED, r);
    return r;
}

VKAPI_ATTR void VKAPI_CALL
vkUnmapMemory(VkDevice d, VkDeviceMemory m)
{
    REAL(vkUnmapMemory);
    g_atomic_int_add(&live[K_MAPPED], -1);
    real_fn(d, m);
}

VKAPI_ATTR VkResult VKAPI_CALL
vkBindBufferMemory(VkDevice d, VkBuffer b, VkDeviceMemory m, VkDeviceSize off)
{
    REAL(vkBindBufferMemory);
    if (FAULT("vkBindBufferMemory"))
        return VK_ERROR_OUT_OF_DEVICE_MEMORY;
    return real_fn(d, b, m, off);
}

VKAPI_ATTR VkResult VKAPI_CALL
vkCreateComputePipelines(VkDevice d, VkPipelineCache cache, uint32_t n, const VkComputePipelineCreateInfo *ci,
                         const VkAllocationCallbacks *a, VkPipeline *out)
{
    REAL(vkCreateComputePipelines);
    if (FAULT("vkCreateComputePipelines")) {
        for (uint32_t i = 0; i < n; i++)
            out[i] = VK_NULL_HANDLE;
        return VK_ERROR_OUT_OF_DEVICE_MEMORY;
    }
    VkResult r = real_fn(d, cache, n, ci, a, out);
    for (uint32_t i = 0; i < n; i++)
        if (out[i])
            g_atomic_int_inc(&live[K_PIPELINE]);
    return r;
}

VKAPI_ATTR void VKAPI_CALL
vkDestroyPipeline(VkDevice d, VkPipeline h, const VkAllocationCallbacks *a)
{
    REAL(vkDestroyPipeline);
    if (h)
        g_atomic_int_add(&live[K_PIPELINE], -1);
    real_fn(d, h, a);
}

VKAPI_ATTR VkResult VKAPI_CALL
vkAllocateDescriptorSets(VkDevice d, const VkDescriptorSetAllocateInfo *ai, VkDescriptorSet *out)
{
    REAL(vkAllocateDescriptorSets);
    if (FAULT("vkAllocateDescriptorSets")) {
        for (uint32_t i = 0; i < ai->descriptorSetCount; i++)
            out[i] = VK_NULL_HANDLE;
        return VK_ERROR_OUT_OF_POOL_MEMORY;
    }
    return real_fn(d, ai, out);
}

VKAPI_ATTR VkResult VKAPI_CALL
vkAllocateCommandBuffers(VkDevice d, const VkCommandBufferAllocateInfo *ai, VkCommandBuffer *out)
{
    REAL(vkAllocateCommandBuffers);
    if (FAULT("vkAllocateCommandBuffers")) {
        for (uint32_t i = 0; i < ai->commandBufferCount; i++)
            out[i] = VK_NULL_HANDLE;
        return VK_ERROR_OUT_OF_DEVICE_MEMORY;
    }
    return real_fn(d, ai, out);
}

VKAPI_ATTR VkResult VKAPI_CALL
vkBeginCommandBuffer(VkCommandBuffer cb, const VkCommandBufferBeginInfo *bi)
{
    REAL(vkBeginCommandBuffer);
    if (FAULT("vkBeginCommandBuffer"))
        return VK_ERROR_OUT_OF_DEVICE_MEMORY;
    return real_fn(cb, bi);
}

VKAPI_ATTR VkResult VKAPI_CALL
vkEndCommandBuffer(VkCommandBuffer cb)
{
    REAL(vkEndCommandBuffer);
    /* the recording goes on to the end; only the result says it failed */
    VkResult r = real_fn(cb);
    return FAULT("vkEndCommandBuffer") && r == VK_SUCCESS ? VK_ERROR_OUT_OF_DEVICE_MEMORY : r;
}

/* HR_VK_FAULT_LOSE_WHEN=FILE: the first submit after FILE appears loses the device (and removes FILE),
 * until that device is destroyed (hr_vk_fault_arm_lost_until_reset): a process that cannot be armed
 * through this API, the app, armed from outside. */
static bool
lose_when_file_appears(void)
{
    static const char *path;
    static gsize once;
    if (g_once_init_enter(&once)) {
        path = g_getenv("HR_VK_FAULT_LOSE_WHEN");
        g_once_init_leave(&once, 1);
    }
    if (!path || unlink(path) != 0)   /* the file is taken by one submit */
        return false;
    g_mutex_lock(&lock);
    lost = sticky = reset_on_destroy = armed_hit = true;
    hit_name = "vkQueueSubmit";
    g_mutex_unlock(&lock);
    return true;
}

VKAPI_ATTR VkResult VKAPI_CALL
vkQueueSubmit(VkQueue q, uint32_t n, const VkSubmitInfo *si, VkFence fence)
{
    REAL(vkQueueSubmit);
    if (lose_when_file_appears())
        return VK_ERROR_DEVICE_LOST;
    if (FAULT("vkQueueSubmit"))   /* nothing submitted: the fence stays unsignalled */
        return is_lost() ? VK_ERROR_DEVICE_LOST : VK_ERROR_OUT_OF_DEVICE_MEMORY;
    return real_fn(q, n, si, fence);
}

/* Waits: not sites of their own; once the device is lost, they say so (a
 * fence whose submit failed would never signal). */
VKAPI_ATTR VkResult VKAPI_CALL
vkWaitForFences(VkDevice d, uint32_t n, const VkFence *f, VkBool32 all, uint64_t timeout)
{
    REAL(vkWaitForFences);
    return is_lost() ? VK_ERROR_DEVICE_LOST : real_fn(d, n, f, all, timeout);
}

VKAPI_ATTR VkResult VKAPI_CALL
vkDeviceWaitIdle(VkDevice d)
{
    REAL(vkDeviceWaitIdle);
    return is_lost() ? VK_ERROR_DEVICE_LOST : real_fn(d);
}

/* Validation messages, counted here too: the backend's messenger is wrapped
 * (its callback then ours), so that the messages of a context that an
 * error destroyed are still counted. */
static gint messages;

typedef struct {
    PFN_vkDebugUtilsMessengerCallbackEXT cb;
    void *user;
} Messenger;

static VKAPI_ATTR VkBool32 VKAPI_CALL
count_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
              const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    const Messenger *m = user;
    if (severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT)
        g_atomic_int_inc(&messages);
    return m->cb(severity, types, data, m->user);
}

static PFN_vkCreateDebugUtilsMessengerEXT real_create_messenger;

static VKAPI_ATTR VkResult VKAPI_CALL
create_messenger(VkInstance inst, const VkDebugUtilsMessengerCreateInfoEXT *ci, const VkAllocationCallbacks *a,
                 VkDebugUtilsMessengerEXT *out)
{
    /* one small allocation per messenger, kept (leak detection is off where a Vulkan driver loads) */
    Messenger *m = g_new(Messenger, 1);
    m->cb = ci->pfnUserCallback;
    m->user = ci->pUserData;
    VkDebugUtilsMessengerCreateInfoEXT wrapped = *ci;
    wrapped.pfnUserCallback = count_message;
    wrapped.pUserData = m;
    return real_create_messenger(inst, &wrapped, a, out);
}

VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL
vkGetInstanceProcAddr(VkInstance inst, const char *name)
{
    REAL(vkGetInstanceProcAddr);
    PFN_vkVoidFunction fn = real_fn(inst, name);
    if (fn && strcmp(name, "vkCreateDebugUtilsMessengerEXT") == 0) {
        real_create_messenger = (PFN_vkCreateDebugUtilsMessengerEXT)fn;
        return (PFN_vkVoidFunction)create_messenger;
    }
    return fn;
}

int
hr_vk_fault_messages(void)
{
    return g_atomic_int_get(&messages);
}
