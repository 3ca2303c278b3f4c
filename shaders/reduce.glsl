// reduce.glsl — workgroup reductions shared by the compute shaders.
//
// Include after declaring the specialization constant WG (the workgroup
// size, a power of two). With USE_SUBGROUP=1 the shader needs subgroup
// arithmetic (the host picks that variant only when the device reports
// VK_SUBGROUP_FEATURE_ARITHMETIC_BIT for compute): subgroupAdd/Max, then
// one shared slot per subgroup. Otherwise a shared-memory tree over WG.
#if USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

shared float red_sh[WG];

float wg_sum(float v)
{
#if USE_SUBGROUP
    v = subgroupAdd(v);
    if (subgroupElect())
        red_sh[gl_SubgroupID] = v;
    barrier();
    float r = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; i++)
        r += red_sh[i];
    barrier();
    return r;
#else
    uint tid = gl_LocalInvocationID.x;
    red_sh[tid] = v;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s)
            red_sh[tid] += red_sh[tid + s];
        barrier();
    }
    float r = red_sh[0];
    barrier();
    return r;
#endif
}

float wg_max(float v)
{
#if USE_SUBGROUP
    v = subgroupMax(v);
    if (subgroupElect())
        red_sh[gl_SubgroupID] = v;
    barrier();
    float r = red_sh[0];
    for (uint i = 1; i < gl_NumSubgroups; i++)
        r = max(r, red_sh[i]);
    barrier();
    return r;
#else
    uint tid = gl_LocalInvocationID.x;
    red_sh[tid] = v;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s)
            red_sh[tid] = max(red_sh[tid], red_sh[tid + s]);
        barrier();
    }
    float r = red_sh[0];
    barrier();
    return r;
#endif
}
