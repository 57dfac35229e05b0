// What the Node.js examples share: the ConvService client, loaded from the
// .proto at run time, with plaintext or TLS (+ bearer token) credentials from
// the environment, and float32 tensors in the wire format.
// TLS: CONVSERVE_TLS_CA=ca.pem (the CA that verifies the server); a bearer
// token for a server run with --auth-tokens-file: CONVSERVE_TOKEN_FILE=file
// (sent only over TLS).
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const definition = protoLoader.loadSync(
  path.join(__dirname, '..', '..', 'proto', 'convserve', 'v1', 'convserve.proto'),
  { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
const { ConvService } = grpc.loadPackageDefinition(definition).convserve.v1;
const maxBytes = 256 * 1024 * 1024; // the server's default --max-message-mb

function credentials() {
  const caFile = process.env.CONVSERVE_TLS_CA, tokenFile = process.env.CONVSERVE_TOKEN_FILE;
  if (!caFile) {
    if (tokenFile) throw new Error('CONVSERVE_TOKEN_FILE needs CONVSERVE_TLS_CA: a token is never sent in plaintext');
    return grpc.credentials.createInsecure();
  }
  const tls = grpc.credentials.createSsl(fs.readFileSync(caFile));
  if (!tokenFile) return tls;
  const token = fs.readFileSync(tokenFile, 'utf8').trim();
  const bearer = grpc.credentials.createFromMetadataGenerator((_, callback) => {
    const metadata = new grpc.Metadata();
    metadata.add('authorization', `Bearer ${token}`);
    callback(null, metadata);
  });
  return grpc.credentials.combineChannelCredentials(tls, bearer);
}

// A ConvService client for host:port.
function connect(address) {
  return new ConvService(address, credentials(), {
    'grpc.max_send_message_length': maxBytes,
    'grpc.max_receive_message_length': maxBytes,
  });
}

// A float32 tensor: the wire format is little-endian, row-major bytes.
function tensor(shape, values) {
  const data = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => data.writeFloatLE(v, 4 * i));
  return { dtype: 'DATA_TYPE_FLOAT32', shape, data };
}
function floats(t) {
  const out = [];
  for (let i = 0; i < t.data.length; i += 4) out.push(t.data.readFloatLE(i));
  return out;
}

// One Conv call with a 30 s deadline: the reply, or the gRPC error.
function conv(client, request) {
  return new Promise((resolve, reject) =>
    client.Conv(request, { deadline: Date.now() + 30000 },
      (err, reply) => (err ? reject(err) : resolve(reply))));
}

// Sends `request`, which must be refused with INVALID_ARGUMENT and a message
// containing `message`; prints what came back and returns whether it was so.
async function expectInvalid(client, request, message) {
  try {
    await conv(client, request);
    console.log('MISMATCH: the invalid request succeeded');
    return false;
  } catch (err) {
    console.log(`invalid request: ${grpc.status[err.code]}: ${err.details}`);
    if (err.code !== grpc.status.INVALID_ARGUMENT || !String(err.details).includes(message)) {
      console.log(`MISMATCH: expected INVALID_ARGUMENT: ${message}`);
      return false;
    }
    return true;
  }
}

// Runs an example's async `main` (resolving to whether every check held),
// closes `client` and sets the exit code: 0 only if main resolved true.
function run(client, main) {
  main()
    .then((ok) => { client.close(); process.exitCode = ok ? 0 : 1; })
    .catch((err) => {
      console.error(`gRPC error ${grpc.status[err.code] || err.code}: ${err.details || err.message}`);
      client.close();
      process.exitCode = 1;
    });
}

module.exports = { grpc, connect, tensor, floats, conv, expectInvalid, run };
