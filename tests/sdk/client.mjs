// tests/sdk/client.mjs - the official SDKs as clients of rota's dispatch pool.
//
//   ROTA_SDK_BASE=http://127.0.0.1:PORT ROTA_SDK_KEY=... node client.mjs CASE
//
// Runs one CASE (the names in `cases` below) against the pool at ROTA_SDK_BASE and
// prints, as one JSON line, what the SDK gave its caller: content, usage, the class and
// status of an error. The key comes in the environment, never on a command line.
// tests/integration/test_sdk.c sets up the pool and the faults, runs the cases and
// judges what they print; nothing here asserts. Exit status 0 whenever a line was
// printed, 2 for an unknown case or a missing variable.
//
// Every client is made with maxRetries 0 (the SDK never retries: a retry that shows is
// the pool's) and a 30 s timeout.
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';

const base = process.env.ROTA_SDK_BASE;
const apiKey = process.env.ROTA_SDK_KEY;
const opts = { apiKey, maxRetries: 0, timeout: 30000 };
const openai = () => new OpenAI({ ...opts, baseURL: `${base}/v1` });
const anthropic = () => new Anthropic({ ...opts, baseURL: base });
const gemini = () => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: base, timeout: 30000 } });
const chat = { model: 'chat-model', messages: [{ role: 'user', content: 'hi' }] };
const claude = { model: 'claude-model', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };

// What an error thrown by an SDK says about itself: its class, the SDK's API error
// classes it is an instance of, its status and the headers a client would look at.
function failure(e) {
  const out = { error: e?.constructor?.name ?? typeof e, message: String(e?.message ?? e) };
  for (const [sdk, mod] of [['openai', OpenAI], ['anthropic', Anthropic]]) {
    out[`${sdk}_api_error`] = e instanceof mod.APIError;
    for (const cls of ['RateLimitError', 'BadRequestError', 'NotFoundError',
      'InternalServerError', 'AuthenticationError', 'APIConnectionError'])
      if (e instanceof mod[cls]) out[`${sdk}_class`] = cls;
  }
  if (typeof e?.status === 'number') out.status = e.status;
  // @google/genai's ClientError and ServerError say their status only in the message
  const m = /^got status: (\d{3})/.exec(out.message);
  if (out.status === undefined && m) out.status = Number(m[1]);
  const h = e?.headers;
  if (h && typeof h.get === 'function') out.retry_after = h.get('retry-after');
  if (e?.error !== undefined) out.body = e.error;
  return out;
}

// Read an OpenAI chat stream to its end or its error.
async function openaiStream(body) {
  const out = { chunks: 0, text: '', usage_chunks: 0, usage: null, ended: false };
  try {
    const stream = await openai().chat.completions.create({ ...body, stream: true });
    for await (const chunk of stream) {
      out.chunks++;
      out.text += chunk.choices?.[0]?.delta?.content ?? '';
      if (chunk.usage) {
        out.usage_chunks++;
        out.usage = chunk.usage;
      }
    }
    out.ended = true;
  } catch (e) {
    Object.assign(out, failure(e));
  }
  return out;
}

// Read an Anthropic messages stream: its events, then its final message.
async function anthropicStream() {
  const out = { events: {}, text: '', ended: false };
  try {
    const stream = anthropic().messages.stream(claude);
    stream.on('streamEvent', (ev) => { out.events[ev.type] = (out.events[ev.type] ?? 0) + 1; });
    stream.on('text', (t) => { out.text += t; });
    const m = await stream.finalMessage();
    out.final = { text: m.content.map((b) => b.text ?? '').join(''), usage: m.usage,
      model: m.model, stop_reason: m.stop_reason };
    out.ended = true;
  } catch (e) {
    Object.assign(out, failure(e));
  }
  return out;
}

const cases = {
  // OpenAI
  async openai_chat() {
    const { data, response, request_id } = await openai().chat.completions.create(chat)
      .withResponse();
    return { content: data.choices[0].message.content, usage: data.usage, model: data.model,
      request_id, status: response.status };
  },
  openai_stream: () => openaiStream(chat),
  openai_stream_usage: () => openaiStream({ ...chat, stream_options: { include_usage: true } }),
  async openai_embed() {
    const input = ['one', 'two'];
    // the SDK asks for base64 unless told otherwise, and decodes it
    const b = await openai().embeddings.create({ model: 'embed-model', input });
    const f = await openai().embeddings.create({ model: 'embed-model', input: 'one',
      encoding_format: 'float' });
    return { base64: b.data.map((d) => d.embedding), float: f.data.map((d) => d.embedding),
      usage: b.usage, model: b.model };
  },
  async openai_unknown_model() {
    return openai().chat.completions.create({ ...chat, model: 'no-such-model' });
  },
  // Anthropic
  async anthropic_message() {
    const m = await anthropic().messages.create(claude);
    return { content: m.content.map((b) => b.text).join(''), usage: m.usage, model: m.model,
      type: m.type, stop_reason: m.stop_reason };
  },
  anthropic_stream: () => anthropicStream(),
  // Gemini
  async gemini_generate() {
    const r = await gemini().models.generateContent({ model: 'gem-model', contents: 'hi' });
    return { text: r.text, usage: r.usageMetadata, model: r.modelVersion };
  },
  async gemini_stream() {
    const out = { chunks: 0, text: '', usage: null, ended: false };
    const stream = await gemini().models.generateContentStream({ model: 'gem-model',
      contents: 'hi' });
    for await (const r of stream) {
      out.chunks++;
      out.text += r.text ?? '';
      if (r.usageMetadata) out.usage = r.usageMetadata;
    }
    out.ended = true;
    return out;
  },
};

const name = process.argv[2];
if (!cases[name] || !base || !apiKey) {
  console.error(`usage: ROTA_SDK_BASE=URL ROTA_SDK_KEY=KEY node client.mjs ` +
    `${Object.keys(cases).join('|')}`);
  process.exit(2);
}
let out;
try {
  out = await cases[name]();
} catch (e) {
  out = failure(e);
}
out = { node: process.version, ...out };
// Exit once the line is out: a timer an SDK left (@google/genai's request timeout
// outlives a failed call) must not hold the process.
process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
