/* Stand-in for PyTorch's libtorch_cuda.so on a CPU-only torch.
 *
 * torchvision 0.28.0's native modules list libtorch_cuda.so as NEEDED but use
 * none of its symbols (the ones they do use live in libc10_cuda.so, see
 * cuda_stub.cc), so an empty library satisfies the dynamic loader.
 * Built by tools/vllm_cpu/setup.sh:  cc -shared -fPIC torch_cuda_empty.c -o libtorch_cuda.so
 */
typedef int tracr_torch_cuda_stand_in;
