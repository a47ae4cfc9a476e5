#pragma once
// CM_HD marks inline math that compiles for the GPU under nvcc and for the CPU everywhere else,
// so the CPU twin and its unit tests exercise exactly the code the kernels run.
#if defined(__CUDACC__)
#define CM_HD __host__ __device__ __forceinline__
#else
#define CM_HD inline
#endif
