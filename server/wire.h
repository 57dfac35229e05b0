// Conversion between the wire contract and core types: the one place where
// protobuf meets core. Tensor views borrow the request's bytes (no copies).
#pragma once

#include "absl/status/statusor.h"
#include "convserve/v1/convserve.pb.h"
#include "core/backend.h"
#include "core/backend_registry.h"
#include "core/conv_spec.h"
#include "core/make_spec.h"
#include "server/filter_store.h"

namespace convserve::server {

namespace v1 = ::convserve::v1;

absl::StatusOr<DataType> FromProto(v1::DataType dtype);
v1::DataType ToProto(DataType dtype);

// A validated request: its canonical spec and views of its tensors. Valid only
// while the request it was parsed from is alive and unchanged.
struct ParsedRequest {
  ConvSpec spec;
  Operands operands;
  // The backend the request asks for; empty: any.
  std::string backend;
  // Registered filters the operands point into, kept alive for the request.
  std::vector<std::shared_ptr<const v1::Tensor>> registered;
};

// Validates `request` with TensorFlow's rules, resolving filter ids in
// `filters`. INVALID_ARGUMENT for a malformed or invalid request, NOT_FOUND for
// an unknown filter_id, RESOURCE_EXHAUSTED when the result would exceed `limits`.
absl::StatusOr<ParsedRequest> ParseConvRequest(const v1::ConvRequest& request,
                                               const SpecLimits& limits,
                                               const FilterStore& filters);

// A view of an inline tensor; INVALID_ARGUMENT (naming `field`) unless its
// dtype is set and its data matches its shape.
absl::StatusOr<ConstTensorView> ViewTensor(const v1::Tensor& tensor, absl::string_view field);

// What GetServerInfo says of a backend.
void ToProto(const BackendInfo& info, v1::BackendInfo* proto);
// What GetServerInfo says of a GPU: every field but in_service and
// out_of_service_reason, which come from its worker pool.
void ToProto(const DeviceInfo& info, v1::GpuInfo* proto);

// Sizes response->output for the spec's result and returns a view of its bytes,
// valid until `response` is changed.
TensorView AllocateOutput(const ConvSpec& spec, v1::ConvResponse* response);

}  // namespace convserve::server
