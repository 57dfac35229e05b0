// The ResNet-50 layers the benchmarks measure (convserve-bench on the CPU,
// convserve-cuda-bench on a GPU): tf.nn.conv2d, NHWC, SAME, stride 1; one 3x3
// layer per stage and two 1x1 bottleneck layers. Each benchmark picks its own
// batch sizes.
#pragma once

#include <cstdint>

namespace convserve::bench {

struct ResNet50Layer {
  const char* name;
  int64_t size;  // input height and width
  int64_t in_channels;
  int64_t kernel;  // height and width
  int64_t out_channels;
};

inline constexpr ResNet50Layer kResNet50Layers[] = {
    {"resnet50_3x3_56x56x64_64", 56, 64, 3, 64},
    {"resnet50_3x3_28x28x128_128", 28, 128, 3, 128},
    {"resnet50_3x3_14x14x256_256", 14, 256, 3, 256},
    {"resnet50_3x3_7x7x512_512", 7, 512, 3, 512},
    {"resnet50_1x1_56x56x256_64", 56, 256, 1, 64},
    {"resnet50_1x1_14x14x1024_256", 14, 1024, 1, 256},
};

}  // namespace convserve::bench
