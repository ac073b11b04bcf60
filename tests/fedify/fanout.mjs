// Fedify's own fan-out, the peer of newsbot's ActivityPub benchmark.
//
// usage: node fanout.mjs PORT RECIPIENTS.json
// Serves an actor at http://127.0.0.1:PORT/users/news (so that inboxes can
// fetch its key), then sends one Create{Note} with one sendActivity() call
// to every recipient ({id, inbox} objects), without a message queue (Fedify
// then sends at once, all inboxes concurrently), signed with draft-cavage
// like newsbot. Prints where its key is, waits for a line on stdin, sends,
// then prints one JSON line: seconds, peak memory, errors.
import "./node20.mjs";
import http from "node:http";
import readline from "node:readline";
import { readFileSync } from "node:fs";
import {
  Create, MemoryKvStore, Note, PUBLIC_COLLECTION, Service, createFederation,
  generateCryptoKeyPair,
} from "@fedify/fedify";

const port = Number(process.argv[2]);
const recipients = JSON.parse(readFileSync(process.argv[3], "utf8")).map((r) => ({
  id: new URL(r.id),
  inboxId: new URL(r.inbox),
}));
const origin = `http://127.0.0.1:${port}`;
const federation = createFederation({
  kv: new MemoryKvStore(),
  allowPrivateAddress: true,
  firstKnock: "draft-cavage-http-signatures-12",
});
const keys = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");
federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    const pairs = await ctx.getActorKeyPairs(identifier);
    return new Service({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      inbox: ctx.getInboxUri(identifier),
      publicKey: pairs[0].cryptographicKey,
    });
  })
  .setKeyPairsDispatcher(async () => [keys]);
federation.setInboxListeners("/users/{identifier}/inbox", "/inbox");

const server = http.createServer(async (req, res) => {
  const request = new Request(new URL(req.url, origin), { method: req.method, headers: req.headers });
  const response = await federation.fetch(request, { contextData: undefined });
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
});
await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
// Tell the benchmark where the key is, and wait for its go: the inboxes fetch the
// key first, as they would have it cached from earlier deliveries.
process.stdout.write(JSON.stringify({ key: `${origin}/users/news` }) + "\n");
for await (const _line of readline.createInterface({ input: process.stdin })) break;

const ctx = federation.createContext(new URL(origin), undefined);
const actor = ctx.getActorUri("news");
const note = new Note({
  id: new URL(`${origin}/notes/1`),
  attribution: actor,
  to: PUBLIC_COLLECTION,
  content: "<p><strong>Ferry strike ends</strong></p><p>Boats sail again.</p>",
});
const started = performance.now();
let errors = 0;
try {
  await ctx.sendActivity({ identifier: "news" }, recipients,
    new Create({ id: new URL(`${origin}/activities/1`), actor, to: PUBLIC_COLLECTION, object: note }));
} catch (error) {
  errors += 1;
  process.stderr.write(String(error) + "\n");
}
const seconds = (performance.now() - started) / 1000;
process.stdout.write(JSON.stringify({
  seconds, errors, peak_mb: process.resourceUsage().maxRSS / 1024,
}) + "\n");
server.close();
process.exit(0);
