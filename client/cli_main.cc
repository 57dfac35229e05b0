// convserve-cli: runs one op on a ConvServe server with .npy inputs and output.
//
//   convserve-cli conv2d --input x.npy --filter w.npy --strides 1,2,2,1
//       --padding SAME --output y.npy
//   convserve-cli info
//   convserve-cli health
//
// The op subcommands and their options are generated from the wire contract:
// one subcommand per op of ConvRequest, one option per field of its message.
// The request itself comes from the client library's BuildRequest.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/npy.h"
#include "client/request_builder.h"
#include "client/status_code_name.h"
#include "client/transport_flags.h"
#include "convserve/v1/convserve.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

namespace v1 = ::convserve::v1;
using convserve::client::NpyArray;
using convserve::client::OpArgs;
using convserve::client::RequestTensors;
using convserve::client::Tensor;
using google::protobuf::FieldDescriptor;

// Values given for the fields of one op message, keyed by field name.
struct OpOptions {
  std::map<std::string, std::vector<int64_t>> lists;
  std::map<std::string, std::string> strings;
  std::map<std::string, int64_t> ints;
};

struct TensorFiles {
  std::string input, filter, pointwise_filter, bias, output, activation = "none";
  bool bfloat16 = false;
  bool allow_reduced_precision = false;
  std::string backend;
};

std::string OptionName(const std::string& field) {
  return "--" + absl::StrReplaceAll(field, {{"_", "-"}});
}

// Adds one option per field of `op` (repeated int64, Padding, string, int64).
void AddOpOptions(CLI::App* command, const google::protobuf::Descriptor* op, OpOptions* values) {
  for (int i = 0; i < op->field_count(); ++i) {
    const FieldDescriptor* field = op->field(i);
    const std::string name = OptionName(field->name());
    if (field->is_repeated()) {
      command->add_option(name, values->lists[field->name()], "comma-separated integers")
          ->delimiter(',');
    } else if (field->type() == FieldDescriptor::TYPE_ENUM) {
      command->add_option(name, values->strings[field->name()], "SAME, VALID or EXPLICIT")
          ->check(CLI::IsMember({"SAME", "VALID", "EXPLICIT"}));
    } else if (field->type() == FieldDescriptor::TYPE_STRING) {
      command->add_option(name, values->strings[field->name()]);
    } else {
      command->add_option(name, values->ints[field->name()]);
    }
  }
}

// The op's arguments from the values given for its message's fields.
absl::StatusOr<OpArgs> ToOpArgs(const OpOptions& values) {
  OpArgs args;
  auto unknown = [](const std::string& name) {
    return absl::InternalError(absl::StrCat("no TensorFlow argument for field ", name));
  };
  for (const auto& [name, list] : values.lists) {
    if (name == "strides" || name == "stride") {
      args.strides = list;
    } else if (name == "explicit_paddings") {
      args.explicit_paddings = list;
    } else if (name == "dilations") {
      args.dilations = list;
    } else if (name == "output_shape") {
      args.output_shape = list;
    } else {
      return unknown(name);
    }
  }
  for (const auto& [name, text] : values.strings) {
    if (name == "padding") {
      args.padding = text;  // empty: unspecified
    } else if (name == "data_format") {
      args.data_format = text;
    } else {
      return unknown(name);
    }
  }
  for (const auto& [name, v] : values.ints) {
    if (name != "rate") return unknown(name);
    args.rate = v;
  }
  return args;
}

int Fail(const std::string& message) {
  std::cerr << "error: " << message << "\n";
  return EXIT_FAILURE;
}

// .npy dtype strings and the wire's data types; the array's bytes are moved.
bool ToTensor(NpyArray array, bool bfloat16, Tensor* tensor, std::string* error) {
  static const std::map<std::string, v1::DataType> kTypes = {{"<f4", v1::DATA_TYPE_FLOAT32},
                                                             {"<f8", v1::DATA_TYPE_FLOAT64},
                                                             {"<f2", v1::DATA_TYPE_FLOAT16},
                                                             {"<i4", v1::DATA_TYPE_INT32}};
  if (bfloat16 && array.descr == "<u2") {
    tensor->dtype = v1::DATA_TYPE_BFLOAT16;
  } else if (auto it = kTypes.find(array.descr); it != kTypes.end()) {
    tensor->dtype = it->second;
  } else {
    *error = absl::StrCat("unsupported .npy dtype ", array.descr,
                          " (use float32, float64, float16, int32, or uint16 bit patterns "
                          "with --bfloat16)");
    return false;
  }
  tensor->shape.assign(array.shape.begin(), array.shape.end());
  tensor->data = std::move(array.data);
  return true;
}

NpyArray FromTensor(const v1::Tensor& tensor) {
  static const std::map<v1::DataType, std::string> kDescr = {{v1::DATA_TYPE_FLOAT32, "<f4"},
                                                             {v1::DATA_TYPE_FLOAT64, "<f8"},
                                                             {v1::DATA_TYPE_FLOAT16, "<f2"},
                                                             {v1::DATA_TYPE_BFLOAT16, "<u2"},
                                                             {v1::DATA_TYPE_INT32, "<i4"}};
  return {kDescr.at(tensor.dtype()), {tensor.shape().begin(), tensor.shape().end()}, tensor.data()};
}

// Reads `path` into `tensor`; false (with `error`) on failure.
bool LoadTensor(const std::string& path, bool bfloat16, Tensor* tensor, std::string* error) {
  absl::StatusOr<NpyArray> array = convserve::client::ReadNpyFile(path);
  if (!array.ok()) {
    *error = array.status().ToString();
    return false;
  }
  return ToTensor(*std::move(array), bfloat16, tensor, error);
}

std::string StatusText(const grpc::Status& status) {
  return absl::StrCat(convserve::client::StatusCodeName(status.error_code()), ": ",
                      status.error_message());
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "localhost:50051";
  int64_t max_message_mb = 256;
  double timeout_s = 300;
  CLI::App app{"convserve-cli: run TensorFlow convolution ops on a ConvServe server"};
  app.add_option("--address", address, "server host:port")
      ->envname("CONVSERVE_ADDRESS")
      ->capture_default_str();
  app.add_option("--max-message-mb", max_message_mb, "largest request or reply, in MiB")
      ->check(CLI::Range(1, 2047))
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "deadline in seconds")->capture_default_str();
  convserve::client::TransportOptions transport;
  convserve::client::AddTransportFlags(app, &transport);
  app.require_subcommand(1);

  CLI::App* info = app.add_subcommand("info", "print the server's version, ops and limits");
  std::string health_service;
  CLI::App* health = app.add_subcommand(
      "health", "print the server's health (grpc.health.v1); exit 0 only if SERVING");
  health->add_option("--service", health_service, "service to ask about; empty: the server");

  TensorFiles files;
  std::map<std::string, OpOptions> op_options;
  std::map<CLI::App*, const FieldDescriptor*> op_commands;
  const google::protobuf::OneofDescriptor* ops =
      v1::ConvRequest::descriptor()->FindOneofByName("op");
  for (int i = 0; i < ops->field_count(); ++i) {
    const FieldDescriptor* op = ops->field(i);
    CLI::App* command = app.add_subcommand(op->name(), absl::StrCat("tf.nn.", op->name()));
    op_commands[command] = op;
    command->add_option("--input", files.input, ".npy input")->required();
    command->add_option("--filter", files.filter, ".npy filter")->required();
    if (op->name() == "separable_conv2d") {
      command->add_option("--pointwise-filter", files.pointwise_filter, ".npy pointwise filter")
          ->required();
    }
    command->add_option("--bias", files.bias, ".npy 1-D bias (fused epilogue)");
    command->add_option("--activation", files.activation, "fused activation")
        ->check(CLI::IsMember({"none", "relu", "relu6", "elu", "leaky_relu", "sigmoid", "tanh"}));
    command->add_option("--output", files.output, ".npy file to write the result to")->required();
    command->add_flag("--bfloat16", files.bfloat16,
                      "read uint16 .npy arrays as bfloat16 bit patterns (and write the result so)");
    command->add_flag("--allow-reduced-precision", files.allow_reduced_precision,
                      "float32: let the server compute in a reduced precision (TF32 on a GPU), "
                      "faster but with a larger rounding error");
    command->add_option(
        "--backend", files.backend,
        "compute on this backend (as `info` lists them); default: the server routes");
    AddOpOptions(command, op->message_type(), &op_options[op->name()]);
  }
  CLI11_PARSE(app, argc, argv);

  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(static_cast<int>(max_message_mb << 20));
  channel_args.SetMaxSendMessageSize(static_cast<int>(max_message_mb << 20));
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      convserve::client::MakeChannelCredentials(transport);
  if (!credentials.ok()) {
    std::cerr << "error: " << credentials.status().message() << "\n";
    return 2;
  }
  auto stub_channel = grpc::CreateCustomChannel(address, *credentials, channel_args);
  auto stub = v1::ConvService::NewStub(stub_channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));

  if (health->parsed()) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(health_service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status =
        grpc::health::v1::Health::NewStub(stub_channel)->Check(&context, request, &response);
    if (!status.ok()) return Fail(StatusText(status));
    std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
              << "\n";
    return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? EXIT_SUCCESS
                                                                               : EXIT_FAILURE;
  }

  if (info->parsed()) {
    v1::ServerInfo server_info;
    grpc::Status status = stub->GetServerInfo(&context, v1::GetServerInfoRequest(), &server_info);
    if (!status.ok()) return Fail(StatusText(status));
    std::cout << server_info.DebugString();
    return EXIT_SUCCESS;
  }

  const FieldDescriptor* op = nullptr;
  for (const auto& [command, field] : op_commands) {
    if (command->parsed()) op = field;
  }
  RequestTensors tensors;
  Tensor filter, pointwise_filter, bias;
  std::string error;
  if (!LoadTensor(files.input, files.bfloat16, &tensors.input, &error) ||
      !LoadTensor(files.filter, files.bfloat16, &filter, &error) ||
      (!files.pointwise_filter.empty() &&
       !LoadTensor(files.pointwise_filter, files.bfloat16, &pointwise_filter, &error)) ||
      (!files.bias.empty() && !LoadTensor(files.bias, files.bfloat16, &bias, &error))) {
    return Fail(error);
  }
  tensors.filter = std::move(filter);
  if (!files.pointwise_filter.empty()) tensors.pointwise_filter = std::move(pointwise_filter);
  if (!files.bias.empty()) tensors.epilogue.bias = std::move(bias);
  tensors.epilogue.activation = static_cast<v1::Activation>(
      v1::Activation_descriptor()
          ->FindValueByName(absl::StrCat("ACTIVATION_", absl::AsciiStrToUpper(files.activation)))
          ->number());
  absl::StatusOr<OpArgs> args = ToOpArgs(op_options[op->name()]);
  if (!args.ok()) return Fail(args.status().ToString());
  absl::StatusOr<v1::ConvRequest> request = convserve::client::BuildRequest(
      op->name(), *args, std::move(tensors),
      {.allow_reduced_precision = files.allow_reduced_precision, .backend = files.backend});
  if (!request.ok()) return Fail(request.status().ToString());

  v1::ConvResponse response;
  grpc::Status status = stub->Conv(&context, *request, &response);
  if (!status.ok()) return Fail(StatusText(status));
  absl::Status written =
      convserve::client::WriteNpyFile(files.output, FromTensor(response.output()));
  if (!written.ok()) return Fail(written.ToString());
  std::cerr << "wrote " << files.output << ": shape [";
  for (int i = 0; i < response.output().shape_size(); ++i) {
    std::cerr << (i ? ", " : "") << response.output().shape(i);
  }
  std::cerr << "], compute " << response.timing().compute_us() << " us on "
            << response.timing().backend();
  if (!response.timing().device().empty()) std::cerr << " (" << response.timing().device() << ")";
  std::cerr << "\n";
  return EXIT_SUCCESS;
}
