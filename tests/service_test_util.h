// Helpers shared by the in-process service tests: wire tensors from values,
// and what the reference backend computes for a request.
#pragma once

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "convserve/v1/convserve.pb.h"
#include "core/element_types.h"
#include "core/reference/reference_backend.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/wire.h"

namespace convserve::server::service_test {

// A tensor of `dtype` holding `values` converted to that type.
inline v1::Tensor MakeTensor(DataType dtype, const Shape& shape,
                             const std::vector<double>& values) {
  v1::Tensor tensor;
  tensor.set_dtype(ToProto(dtype));
  tensor.mutable_shape()->Assign(shape.begin(), shape.end());
  DispatchDataType(dtype, [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> typed;
    for (double v : values) typed.push_back(static_cast<T>(v));
    tensor.set_data(
        std::string(reinterpret_cast<const char*>(typed.data()), typed.size() * sizeof(T)));
  });
  return tensor;
}

// Random values on a grid that every dtype holds exactly, so sums are exact.
inline v1::Tensor RandomTensor(DataType dtype, const Shape& shape, std::mt19937& rng) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  std::uniform_int_distribution<int> dist(-4, 4);
  std::vector<double> values(count);
  for (double& v : values) v = dist(rng) * (dtype == DataType::kInt32 ? 1 : 0.25);
  return MakeTensor(dtype, shape, values);
}

inline std::vector<float> AsFloats(const v1::Tensor& tensor) {
  EXPECT_EQ(tensor.dtype(), v1::DATA_TYPE_FLOAT32);
  std::vector<float> values(tensor.data().size() / sizeof(float));
  std::memcpy(values.data(), tensor.data().data(), tensor.data().size());
  return values;
}

// A channel to a server on 127.0.0.1:`port` that takes messages up to 64 MiB.
inline std::shared_ptr<grpc::Channel> LoopbackChannel(int port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

// What the reference backend computes in-process for `request`.
inline v1::Tensor ComputeInProcess(const v1::ConvRequest& request) {
  const FilterStore no_filters(0);
  absl::StatusOr<ParsedRequest> parsed = ParseConvRequest(request, SpecLimits{}, no_filters);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  v1::ConvResponse response;
  ReferenceBackend backend;
  EXPECT_TRUE(
      backend.Run(parsed->spec, parsed->operands, AllocateOutput(parsed->spec, &response)).ok());
  return response.output();
}

}  // namespace convserve::server::service_test
