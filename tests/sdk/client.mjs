// tests/sdk/client.mjs - the official SDKs as clients of rota's dispatch pool.
//
//   ROTA_SDK_BASE=http://127.0.0.1:PORT ROTA_SDK_KEY=... node client.mjs CASE
//
// Runs one CASE (the names in `cases` below) against the pool at ROTA_SDK_BASE and
// prints, as one JSON line, what the SDK gave its caller: content, usage, the class and
// status of an error; the *_tools cases hold a tool-use conversation (ROTA_SDK_MODEL
// picks their model; tests/integration/test_sdk_tools.c runs them). The key comes in the environment, never on a command line.
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

// ---- tool use: a three-turn conversation with the scripted model of rota-mockprovider ----
//
// Turn 1: the user asks and declares one tool, get_weather; the model calls it. Turn 2:
// the result goes back (with the call's id; Gemini's by the function's name); the model
// answers text. Turn 3: the user asks for "parallel" calls; the model calls twice; both
// results go back and the model answers text (request 4). Each request's history is
// the previous one's and the answer exactly as the SDK returned it, which is how
// thinking signatures travel. The model comes from ROTA_SDK_MODEL (default: each SDK's
// route of the cases above). Printed: per request the calls seen (name, arguments
// parsed), the text, the usage as {in, out, thoughts} (out counts thoughts, as the mock
// does) and the SDK's own; then an error, if one ended the conversation.
const model = (fallback) => process.env.ROTA_SDK_MODEL || fallback;
const weather = {
  name: 'get_weather',
  description: 'The weather forecast for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } },
    required: ['city'], additionalProperties: false },
};
const ask1 = 'What is the weather in Paris?';
const ask3 = 'And now Paris and Rome, in parallel please.';
// What the tool answers: the test looks for it in the model's text.
const forecast = (args) => `sunny in ${args?.city} for ${args?.days} days`;

// Run "turn" (which sends the history and returns the calls the model made) four
// times, answering calls with "answer" and asking turn 3 with "say".
async function conversation(out, turn, answer, say) {
  try {
    answer(await turn());
    await turn();
    say(ask3);
    answer(await turn());
    await turn();
    out.ended = true;
  } catch (e) {
    Object.assign(out, failure(e));
  }
  return out;
}

async function openaiTools(stream) {
  const client = openai();
  const messages = [{ role: 'user', content: ask1 }];
  const body = () => ({ model: model('chat-model'), messages,
    tools: [{ type: 'function', function: weather }] });
  const out = { turns: [] };
  const turn = async () => {
    let msg, usage, finish;
    if (!stream) {
      const r = await client.chat.completions.create(body());
      ({ message: msg, finish_reason: finish } = r.choices[0]);
      usage = r.usage;
    } else {
      const s = await client.chat.completions.create({ ...body(), stream: true,
        stream_options: { include_usage: true } });
      msg = { role: 'assistant', content: null };
      const calls = [];
      for await (const chunk of s) {
        if (chunk.usage) usage = chunk.usage;
        const ch = chunk.choices?.[0];
        if (!ch) continue;
        if (ch.delta?.content) msg.content = (msg.content ?? '') + ch.delta.content;
        for (const tc of ch.delta?.tool_calls ?? []) {
          const c = (calls[tc.index] ??= { id: '', type: 'function',
            function: { name: '', arguments: '' } });
          if (tc.id) c.id = tc.id;
          c.function.name += tc.function?.name ?? '';
          c.function.arguments += tc.function?.arguments ?? '';
        }
        if (ch.finish_reason) finish = ch.finish_reason;
      }
      if (calls.length) msg.tool_calls = calls;
    }
    messages.push(msg);
    const calls = (msg.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name,
      args: JSON.parse(c.function.arguments) }));
    out.turns.push({ calls: calls.map(({ name, args }) => ({ name, args })),
      ids: calls.map((c) => c.id), text: msg.content ?? '', finish, usage: usage && {
        in: usage.prompt_tokens, out: usage.completion_tokens,
        thoughts: usage.completion_tokens_details?.reasoning_tokens ?? 0 }, sdk_usage: usage });
    return calls;
  };
  const answer = (calls) => calls.forEach((c) => messages.push({ role: 'tool',
    tool_call_id: c.id, content: forecast(c.args) }));
  return conversation(out, turn, answer, (t) => messages.push({ role: 'user', content: t }));
}

// OpenAI's Responses API. The output items go back as input as they came, but for the
// fields the SDK's parser adds to them (parsed_arguments, a part's parsed), which are
// not the API's and which it refuses.
async function responsesTools(stream) {
  const client = openai();
  const input = [{ role: 'user', content: ask1 }];
  const tools = [{ type: 'function', strict: false, ...weather }];
  const out = { turns: [] };
  const turn = async () => {
    const body = { model: model('chat-model'), input, tools };
    const r = stream ? await client.responses.stream(body).finalResponse()
      : await client.responses.create(body);
    for (const { parsed_arguments: _a, ...item } of r.output)
      input.push(item.type !== 'message' ? item
        : { ...item, content: item.content.map(({ parsed: _p, ...c }) => c) });
    const calls = r.output.filter((i) => i.type === 'function_call')
      .map((i) => ({ id: i.call_id, name: i.name, args: JSON.parse(i.arguments) }));
    out.turns.push({ calls: calls.map(({ name, args }) => ({ name, args })),
      ids: calls.map((c) => c.id), finish: r.status,
      // the stream's final response has no output_text: the items say it
      text: r.output.filter((i) => i.type === 'message').flatMap((i) => i.content)
        .filter((c) => c.type === 'output_text').map((c) => c.text).join(''),
      usage: { in: r.usage.input_tokens, out: r.usage.output_tokens,
        thoughts: r.usage.output_tokens_details?.reasoning_tokens ?? 0 }, sdk_usage: r.usage });
    return calls;
  };
  const answer = (calls) => calls.forEach((c) => input.push({ type: 'function_call_output',
    call_id: c.id, output: forecast(c.args) }));
  return conversation(out, turn, answer, (t) => input.push({ role: 'user', content: t }));
}

async function anthropicTools(stream, thinking) {
  const client = anthropic();
  const messages = [{ role: 'user', content: ask1 }];
  const extra = thinking ? { max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 } }
    : { max_tokens: 256 };
  const out = { turns: [] };
  const turn = async () => {
    const body = { model: model('claude-model'), messages, ...extra,
      tools: [{ name: weather.name, description: weather.description,
        input_schema: weather.parameters }] };
    const m = stream ? await client.messages.stream(body).finalMessage()
      : await client.messages.create(body);
    messages.push({ role: 'assistant', content: m.content });
    const calls = m.content.filter((b) => b.type === 'tool_use')
      .map((b) => ({ id: b.id, name: b.name, args: b.input }));
    out.turns.push({ calls: calls.map(({ name, args }) => ({ name, args })),
      ids: calls.map((c) => c.id),
      text: m.content.filter((b) => b.type === 'text').map((b) => b.text).join(''),
      thoughts: m.content.filter((b) => b.type === 'thinking').length, finish: m.stop_reason,
      usage: { in: m.usage.input_tokens, out: m.usage.output_tokens, thoughts: 0 },
      sdk_usage: m.usage });
    return calls;
  };
  const answer = (calls) => messages.push({ role: 'user', content: calls.map((c) => ({
    type: 'tool_result', tool_use_id: c.id, content: forecast(c.args) })) });
  return conversation(out, turn, answer, (t) => messages.push({ role: 'user', content: t }));
}

async function geminiTools(stream, thinking) {
  const client = gemini();
  const contents = [{ role: 'user', parts: [{ text: ask1 }] }];
  const config = { tools: [{ functionDeclarations: [{ ...weather }] }] };
  if (thinking) config.thinkingConfig = { includeThoughts: true };
  const out = { turns: [] };
  const turn = async () => {
    const req = { model: model('gem-model'), contents: [...contents], config };
    let content, usage, finish;
    if (!stream) {
      const r = await client.models.generateContent(req);
      ({ content, finishReason: finish } = r.candidates[0]);
      usage = r.usageMetadata;
    } else {
      content = { role: 'model', parts: [] };
      for await (const r of await client.models.generateContentStream(req)) {
        content.parts.push(...(r.candidates?.[0]?.content?.parts ?? []));
        finish = r.candidates?.[0]?.finishReason ?? finish;
        if (r.usageMetadata) usage = r.usageMetadata;
      }
    }
    contents.push(content);
    const calls = content.parts.filter((p) => p.functionCall)
      .map((p) => ({ name: p.functionCall.name, args: p.functionCall.args }));
    out.turns.push({ calls, text: content.parts.filter((p) => p.text && !p.thought)
      .map((p) => p.text).join(''), thoughts: content.parts.filter((p) => p.thought).length,
      signatures: content.parts.filter((p) => p.thoughtSignature).length, finish,
      usage: usage && { in: usage.promptTokenCount,
        out: (usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0),
        thoughts: usage.thoughtsTokenCount ?? 0 }, sdk_usage: usage });
    return calls;
  };
  const answer = (calls) => contents.push({ role: 'user', parts: calls.map((c) => ({
    functionResponse: { name: c.name, response: { forecast: forecast(c.args) } } })) });
  return conversation(out, turn, answer,
    (t) => contents.push({ role: 'user', parts: [{ text: t }] }));
}

Object.assign(cases, {
  openai_tools: () => openaiTools(false),
  openai_tools_stream: () => openaiTools(true),
  responses_tools: () => responsesTools(false),
  responses_tools_stream: () => responsesTools(true),
  anthropic_tools: () => anthropicTools(false, false),
  anthropic_tools_stream: () => anthropicTools(true, false),
  anthropic_tools_thinking: () => anthropicTools(false, true),
  anthropic_tools_thinking_stream: () => anthropicTools(true, true),
  gemini_tools: () => geminiTools(false, false),
  gemini_tools_stream: () => geminiTools(true, false),
  gemini_tools_thinking: () => geminiTools(false, true),
  gemini_tools_thinking_stream: () => geminiTools(true, true),
});

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
