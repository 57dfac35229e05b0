// ConvServe from Node.js: TensorFlow 2's transposed convolutions over gRPC,
// each checked against a direct scatter loop:
//   tf.nn.conv2d_transpose(dy, w, output_shape=[H, W], strides=2,
//       padding=[[0, 0], [1, 2], [0, 1], [0, 0]])      (and its NCHW form)
//   tf.nn.conv1d_transpose(dy, w, output_shape=[1, 2, 7], strides=2,
//       padding="VALID", data_format="NCW")
// then a list padding given to a 1-D conv_transpose, which TF refuses.
// Usage: node transposed.js [host:port]   (default localhost:50051); TLS and
// tokens as conv2d.js (see convserve.js).
'use strict';
const { connect, tensor, floats, conv: call, expectInvalid, run } = require('./convserve');

const address = process.argv[2] || 'localhost:50051';
const client = connect(address);
const conv = (request) => call(client, request);

// Row-major offset of `index` in a tensor of `shape`.
function offset(shape, index) {
  return index.reduce((acc, i, d) => acc * shape[d] + i, 0);
}
// Small integers, so that every sum is exact in float32.
function values(count, seed) {
  return Array.from({ length: count }, (_, i) => ((i * 7 + seed) % 5) - 2);
}

// dx of a 2-D transposed convolution by scatter: dy[b][i][j][o] * w[p][q][c][o]
// lands on dx[b][i*s + p - top][j*s + q - left][c] when inside; `first`
// says whether dy and dx are channels first.
function transpose2d({ dy, dyShape, w, wShape, outH, outW, stride, top, left, first }) {
  const [K, L, C, O] = wShape;
  const [B, Hy, Wy] = first ? [dyShape[0], dyShape[2], dyShape[3]] : dyShape;
  const xShape = first ? [B, C, outH, outW] : [B, outH, outW, C];
  const dx = new Array(B * outH * outW * C).fill(0);
  const at = (shape, b, r, c, ch) => offset(shape, first ? [b, ch, r, c] : [b, r, c, ch]);
  for (let b = 0; b < B; b++) for (let i = 0; i < Hy; i++) for (let j = 0; j < Wy; j++) {
    for (let p = 0; p < K; p++) for (let q = 0; q < L; q++) {
      const r = i * stride + p - top, c = j * stride + q - left;
      if (r < 0 || r >= outH || c < 0 || c >= outW) continue;
      for (let ch = 0; ch < C; ch++) for (let o = 0; o < O; o++) {
        dx[at(xShape, b, r, c, ch)] += dy[at(dyShape, b, i, j, o)] * w[offset(wShape, [p, q, ch, o])];
      }
    }
  }
  return { dx, xShape };
}

function same(label, reply, shape, expected) {
  const got = floats(reply.output);
  const ok = JSON.stringify(reply.output.shape) === JSON.stringify(shape) &&
    JSON.stringify(got) === JSON.stringify(expected);
  console.log(`${label}: output shape [${reply.output.shape}] ${ok ? 'matches the direct loop' : 'MISMATCH'}`);
  if (!ok) console.log('  expected', JSON.stringify(expected), '\n  got     ', JSON.stringify(got));
  return ok;
}

async function main() {
  let ok = true;

  // conv2d_transpose: output_shape (H, W) only, explicit pads (1, 2) and (0, 1).
  const [outH, outW, stride, K, C, O] = [6, 5, 2, 3, 2, 3];
  const [top, bottom, left, right] = [1, 2, 0, 1];
  // The forward conv2d of dx gives dy's size (TF's explicit padding rule).
  const Hy = Math.floor((outH + top + bottom - K) / stride) + 1;
  const Wy = Math.floor((outW + left + right - K) / stride) + 1;
  const wShape = [K, K, C, O];
  const w = values(K * K * C * O, 1);
  for (const first of [false, true]) {
    const dyShape = first ? [1, O, Hy, Wy] : [1, Hy, Wy, O];
    const dy = values(Hy * Wy * O, 3);
    const pads = first ? [0, 0, 0, 0, top, bottom, left, right] : [0, 0, top, bottom, left, right, 0, 0];
    const reply = await conv({
      conv2d_transpose: {
        output_shape: [outH, outW], strides: [stride], padding: 'PADDING_EXPLICIT',
        explicit_paddings: pads, data_format: first ? 'NCHW' : 'NHWC',
      },
      input: tensor(dyShape, dy),
      filter: { tensor: tensor(wShape, w) },
    });
    const { dx, xShape } = transpose2d({ dy, dyShape, w, wShape, outH, outW, stride, top, left, first });
    ok = same(`conv2d_transpose ${first ? 'NCHW' : 'NHWC'}`, reply, xShape, dx) && ok;
  }

  // conv1d_transpose, NCW: TF runs it as conv2d_transpose with a height of 1.
  const [outW1, k1, c1, o1] = [7, 3, 2, 2];
  const Wy1 = Math.floor((outW1 - k1) / stride) + 1; // VALID
  const dy1 = values(o1 * Wy1, 2), w1 = values(k1 * c1 * o1, 4);
  const reply1 = await conv({
    conv1d_transpose: { output_shape: [1, c1, outW1], strides: [stride], padding: 'PADDING_VALID', data_format: 'NCW' },
    input: tensor([1, o1, Wy1], dy1),
    filter: { tensor: tensor([k1, c1, o1], w1) },
  });
  const { dx: dx1 } = transpose2d({
    dy: dy1, dyShape: [1, o1, 1, Wy1], w: w1, wShape: [1, k1, c1, o1],
    outH: 1, outW: outW1, stride, top: 0, left: 0, first: true,
  });
  ok = same('conv1d_transpose NCW', reply1, [1, c1, outW1], dx1) && ok;

  // A list padding for a 1-D conv_transpose: TF's conv1d_transpose takes a string.
  const listPadding = {
    conv_transpose: {
      output_shape: [1, outW1, c1], padding: 'PADDING_EXPLICIT', explicit_paddings: [0, 0, 1, 1, 0, 0],
    },
    input: tensor([1, Wy1, o1], dy1),
    filter: { tensor: tensor([k1, c1, o1], w1) },
  };
  const message = "Expected string for argument 'padding' not [[0, 0], [1, 1], [0, 0]].";
  return (await expectInvalid(client, listPadding, message)) && ok;
}

run(client, main);
