// pool-openai.mjs - the official openai SDK (npm "openai") as a client of rota's dispatch
// pool; tools/demo runs it:
//
//   OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=CLIENT_KEY \
//       node pool-openai.mjs MODEL [stream]
//
// Nothing here knows rota: the SDK takes the pool for OpenAI. It reads the base URL and
// the key from the environment, as it always does; the key is a client key of the
// pool's (its SHA-256 is in workers.keys), never a provider's. maxRetries 0: the SDK
// does not retry on its own, so a call that failed upstream and still succeeds here was
// retried by the pool. Prints the answer, the model that gave it and the request id the
// pool gave the call (also in its access log line); on failure, the status and error,
// with exit status 1.
import OpenAI from 'openai';

const [model, mode] = process.argv.slice(2);
if (!model) {
  console.error('usage: node pool-openai.mjs MODEL [stream]');
  process.exit(2);
}
const client = new OpenAI({ maxRetries: 0, timeout: 30000 });
const messages = [{ role: 'user', content: 'Say hello.' }];

try {
  if (mode === 'stream') {
    // the answer as it is written: server-sent events, one chunk at a time
    const { data: stream, request_id: id } = await client.chat.completions
      .create({ model, messages, stream: true })
      .withResponse();
    let text = '';
    let chunks = 0;
    let from = '';
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? '';
      from = chunk.model || from;
    }
    console.log(`streamed ${chunks} chunks: "${text}" from model ${from} (request id ${id})`);
  } else {
    const { data, request_id: id } = await client.chat.completions
      .create({ model, messages })
      .withResponse();
    console.log(`answer: "${data.choices[0].message.content}" from model ${data.model}` +
      ` (request id ${id})`);
  }
} catch (e) {
  console.log(`failed: ${e.status ?? ''} ${e.message}`);
  process.exit(1);
}
