#version 450
// col_ops.comp — the AWQ search's inputs kept on the device (ops.h
// col_abs_sum, scale_cols). OP 0: sum[k] = the sum over the rows, in order,
// of |t[r, k]|, an invocation per column (FP32). OP 1: t[r, k] /= s[k], an
// invocation per (column, row): the fold.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint OP = 0;

layout(std430, set = 0, binding = 0) buffer T { float t[]; };
layout(std430, set = 0, binding = 1) buffer S { float s[]; };   // OP 0: the sums out; OP 1: s in

layout(push_constant) uniform Push { uint rows, width; } pc;

void main()
{
    const uint k = gl_GlobalInvocationID.x;
    if (k >= pc.width)
        return;
    if (OP == 0u) {
        float acc = 0.0;
        for (uint r = 0; r < pc.rows; r++)
            acc += abs(t[r * pc.width + k]);
        s[k] = acc;
    } else {
        const uint r = gl_WorkGroupID.y + gl_WorkGroupID.z * 65535u;
        if (r < pc.rows)
            t[r * pc.width + k] = t[r * pc.width + k] / s[k];
    }
}
